"""What a request comes back as: a `Fetched` value whose failure is classified, never raised.

Upstream answers are archived whatever they are, so the crawl needs one vocabulary of failure
(`ERROR_KINDS`) shared by the HTTP layer, the per-upstream clients and the core transform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# headers worth archiving (lower-case names)
KEEP_HEADERS = (
    "etag",
    "last-modified",
    "link",
    "content-type",
    "date",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-used",
    "x-ratelimit-resource",
    "x-pypi-last-serial",
    "x-total",
    "x-total-pages",
    "x-next-page",
    "x-total-count",
    "x-hasmore",
)

ERROR_KINDS = (
    "transient",
    "rate_limited",
    "gone",
    "renamed",
    "blocked",
    "malformed",
    "computing",
    "not_found",
    "bad_entry",
    "endpoint",  # an endpoint-level failure (pipelines.sources.http.health): never a package fact
)


@dataclass(slots=True)
class Fetched:
    """One logical request's outcome (after redirects, retries and pagination)."""

    url: str  # path + query below the upstream's base URL, as first asked
    status: int  # HTTP status of the final answer; 0 when there was none
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    data: Any = None  # parsed JSON (2xx with a body)
    etag: str | None = None
    attempts: int = 1
    error_kind: str | None = None
    error: str | None = None
    final_url: str | None = None  # where redirects led, when they did
    next_url: str | None = None  # the Link header's rel="next" target (httpx's parser), when there is one
    suspect: str | None = None  # set by a source: an answer no package can cause (`http.health`)

    @property
    def ok(self) -> bool:
        return self.error_kind is None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304 and self.error_kind is None


def keep_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in KEEP_HEADERS if name in headers}


def classify_status(status: int, text: str | None) -> tuple[str | None, str | None]:
    """Generic classification of a final (non-retried) answer; callers refine per endpoint."""
    if 200 <= status < 300 or status == 304:
        return None, None
    lowered = (text or "")[:2000].lower()
    if status in (404, 410):
        return "gone", f"HTTP {status}: not found or gone"
    if status == 451 or (status == 403 and "block" in lowered):
        return "blocked", f"HTTP {status}: access blocked"
    if status in (401, 403):
        return "blocked", f"HTTP {status}: forbidden"
    if status in (429,):
        return "rate_limited", f"HTTP {status}: rate limited"
    if status >= 500 or status == 0:
        return "transient", f"HTTP {status}: server error"
    if status in (400, 422):
        return "bad_entry", f"HTTP {status}: request rejected"
    return "malformed", f"HTTP {status}: unexpected status"


def require_body(fetched: Fetched, valid: Callable[[Any], bool], message: str) -> Fetched:
    """Mark a good answer `malformed` when its JSON is not the shape the endpoint promises.

    A 200 with the wrong shape would otherwise be archived as the newest good body and break the
    transforms downstream; as `malformed` it is kept for inspection and the previous body stays.
    """
    if fetched.ok and not valid(fetched.data):
        fetched.error_kind, fetched.error = "malformed", message
    return fetched
