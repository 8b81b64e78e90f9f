"""What a request asks for, decided the way Django and DRF decide it (pure functions, no I/O).

- Host: Django's `HttpRequest.get_host()` validation (`django/http/request.py`, `host_validation_re`,
  `split_domain_port`): a bad `Host` / `X-Forwarded-Host` is `DisallowedHost`, which Django answers 400.
  Every syntactically valid host is allowed (ALLOWED_HOSTS = ["*"]): the links follow it.
- `X-Forwarded-Proto`: the left-most value (Django >= 4.1 reads `SECURE_PROXY_SSL_HEADER` that way);
  anything but http/https is a 400 here rather than silently "http".
- Path: Django's WSGI handler re-percent-encodes bytes that are not UTF-8 (`repercent_broken_unicode`),
  so such a path resolves nowhere: 404. No URL pattern matches `.`/`..` segments, empty segments,
  backslashes or control characters either: 404 before the documents are asked.
- Query: `QueryDict` decodes with errors="replace" and the last value of a repeated name wins
  (`QueryDict.__getitem__`); more than DATA_UPLOAD_MAX_NUMBER_FIELDS (1000) is `TooManyFieldsSent`: 400.
- APPEND_SLASH: `CommonMiddleware.get_full_path_with_slash` (the path + "/" and the query string as
  sent, `escape_leading_slashes` so no scheme-relative URL) in a 301 (`HttpResponsePermanentRedirect`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote_to_bytes

import orjson

HOST_RE = re.compile(r"^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]+))?$")  # django/http/request.py
MAX_QUERY_FIELDS = 1000  # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS
PROTOCOLS = ("http", "https")
FORBIDDEN_IN_PATH = re.compile(r"[\x00-\x1f\x7f\\]")


class BadRequest(ValueError):
    """The request cannot be answered (400); the message is safe to show (it never echoes input)."""


def valid_host(host: str) -> bool:
    """Django's `split_domain_port` + `validate_host` with ALLOWED_HOSTS = ["*"]: the domain part must
    match `host_validation_re` and not be empty."""
    match = HOST_RE.match(host.lower())
    return bool(match and match.group(1).removesuffix("."))


def _first(value: str) -> str:
    return value.split(",", 1)[0].strip()


def request_base(host: str | None, scheme: str, forwarded_host: str | None, forwarded_proto: str | None,
                 fallback_host: Callable[[], str]) -> str:
    """The scheme://host links are built for: the proxy's `X-Forwarded-*` when present, else the request's.

    Raises BadRequest for a host Django would refuse (DisallowedHost) or an unknown protocol."""
    chosen = _first(forwarded_host) if forwarded_host is not None else host
    if chosen is None or chosen == "":
        if forwarded_host is not None or host is not None:
            raise BadRequest("Invalid Host header.")
        chosen = fallback_host()  # HTTP/1.0 without Host: Django uses SERVER_NAME:SERVER_PORT
    if not valid_host(chosen):
        raise BadRequest("Invalid Host header." if forwarded_host is None else "Invalid X-Forwarded-Host header.")
    if forwarded_proto is not None:
        scheme = _first(forwarded_proto).lower()
        if scheme not in PROTOCOLS:
            raise BadRequest("Invalid X-Forwarded-Proto header.")
    return f"{scheme}://{chosen.lower()}"


def decode_path(raw: str) -> str | None:
    """The request path as the URL resolver sees it, or None when no route can match it (-> 404)."""
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    if not path.startswith("/") or FORBIDDEN_IN_PATH.search(path):
        return None
    segments = path[1:].split("/")
    if any(s in (".", "..") for s in segments) or "" in segments[:-1]:
        return None
    return path


def parse_query(raw: str) -> dict[str, str]:
    """`QueryDict` semantics: blank values kept, undecodable bytes replaced, the last value wins."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="replace",
                          max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise BadRequest("Too many query parameters.") from None
    return dict(pairs)


def split_target(target: str) -> tuple[str, str]:
    """(path, query string) of a request target; an absolute-form target keeps only its path."""
    if not target.startswith("/"):
        scheme_end = target.find("://")
        if scheme_end > 0:
            slash = target.find("/", scheme_end + 3)
            target = target[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    return path, query


def slash_location(path: str, raw_query: str) -> str:
    """Django's `get_full_path(force_append_slash=True)` after `escape_leading_slashes`."""
    location = quote(path + "/", safe="/:@&+$,;=~!*'()%")
    if location.startswith("//"):
        location = "/%2F" + location[2:]
    return location + ("?" + raw_query if raw_query else "")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (`Last-Modified`); a naive time is taken as UTC."""
    return format_datetime(_aware(moment).astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified_since(header: str, published_at: datetime) -> bool:
    """If-Modified-Since: unchanged when the snapshot is not newer (whole seconds, like HTTP dates)."""
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return _aware(published_at).replace(microsecond=0) <= since


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): `W/` is ignored, `*` matches."""
    opaque = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


def json_safe(base: str) -> bytes:
    """`base` as it may stand inside a JSON string (an operator's URL is escaped like any string)."""
    return orjson.dumps(base)[1:-1]


VIEW_MODELS = {"packages": "Package", "grids": "Grid", "categories": "Category"}


def view_name(path: str) -> str:
    """The name DRF's `get_view_name` gives the view at `path` (router suffixes " List" / " Instance")."""
    parts = path.strip("/").split("/")[2:]
    if parts in ([], [""]):
        return "Api Root"
    model = VIEW_MODELS.get(parts[0], parts[0].replace("_", " ").title())
    if parts[0] == "search":
        return "Search"
    if len(parts) == 1:
        return f"{model} List"
    if len(parts) == 2:
        return f"{model} Instance"
    return f"{model} {parts[-1].replace('_', ' ').title()}" if parts[-1] != "packages" else "Package List"


def options_metadata(path: str) -> dict:
    """DRF's `SimpleMetadata.determine_metadata` for a read-only view: no `actions` (only PUT/POST have them)."""
    return {
        "name": view_name(path),
        "description": "",
        "renders": ["application/json"],
        "parses": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
    }
