"""Parsing catalogue URLs into things the crawler may ask about: a repository or a PyPI name.

Catalogue URLs are user input. They are never fetched as given: `parse_repo_url` turns a repository
URL into a validated (host, owner, name) triple from which the API clients build their own request
paths against the *configured* API hosts, or explains precisely why it cannot. `parse_pypi` does
the same for the free-form `pypi_url` field.

Both functions are pure and never raise, whatever the input (a non-string gives a problem / None).

Repo problems carry a stable `code` (for counting) and a human `detail`; `str(problem)` is
`"<code>: <detail>"`, which is what `catalogue.packages.repo_url_problem` stores. Codes:

- `empty`: no URL at all ("" or whitespace);
- `malformed`: not parseable as a URL (whitespace, control characters or backslashes inside, bad port);
- `unsupported_scheme`: not http, https, git, ssh or scp-like `git@host:path` (e.g. `file:`, `ftp:`);
- `userinfo`: credentials in the URL (`https://user@github.com/...`); only `git@` for ssh is accepted;
- `port`: an explicit port other than the scheme's default;
- `ip_address`: a literal IPv4/IPv6 address instead of a host name;
- `localhost`: `localhost` or a `*.localhost` / `*.local` / `*.internal` name;
- `not_repository_host`: a service of a supported platform that hosts no repositories
  (gist.github.com, raw.githubusercontent.com, api.github.com, a platform's Pages sites);
- `lookalike_host`: a host that mentions a supported platform but is not it (github.com.evil.io,
  githubb.com, a self-hosted instance of a supported forge), or a non-ASCII host name;
- `dead_host`: a code host that is gone (Google Code, Gitorious, ...) or hosts nothing we can crawl
  (Launchpad, SourceForge, Savannah);
- `unknown_host`: any other host;
- `path_traversal`: a `.` or `..` path segment (also percent-encoded) or an encoded `/`;
- `missing_owner` / `missing_name`: the path stops before naming the owner / the repository;
- `reserved_owner`: a platform page rather than a user (github.com/orgs/..., github.com/settings);
- `invalid_owner` / `invalid_name`: characters or length the platform does not allow.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from packaging.utils import canonicalize_name

from pipelines.sources.base import Source
from pipelines.sources.registry import SOURCES
from pipelines.sources.webpaths import RepoProblem

_REPOSITORY_SOURCES = [source for source in SOURCES if source.kind == "repository"]
HOSTS: dict[str, Source] = {domain: source for source in _REPOSITORY_SOURCES for domain in source.web_hosts}
"""Supported code hosts by domain (a leading `www.` is accepted): each repository source's `web_hosts`."""

_PLATFORM_DOMAINS = tuple(domain for source in _REPOSITORY_SOURCES for domain in source.platform_domains)
_PLATFORM_STEMS = tuple(source.name for source in _REPOSITORY_SOURCES)

DEAD_HOSTS = (
    "code.google.com", "googlecode.com", "gitorious.org", "launchpad.net", "sourceforge.net", "sf.net",
    "codeplex.com", "fedorahosted.org", "berlios.de", "savannah.nongnu.org", "savannah.gnu.org",
    "git.gnome.org", "assembla.com", "repo.or.cz",
    *(domain for source in _REPOSITORY_SOURCES for domain in source.retired_domains),
)
"""Hosts that are gone or host nothing we can crawl; matched as the domain or any subdomain of it."""

_DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}

_SCP_FORM = re.compile(r"^(?P<user>[A-Za-z0-9_.-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
_FORBIDDEN_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")
_FAST_HTTP = re.compile(
    r"^https?://(?:www\.)?(?P<host>" + "|".join(re.escape(domain) for domain in HOSTS) + ")"
    r"(?P<path>/[^?#]*)?(?:[?#].*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A validated repository: `host` is its source's name; `owner` may be nested ("group/subgroup")."""

    host: str
    owner: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.host}:{self.owner}/{self.name}".lower()

    @property
    def path(self) -> str:
        return f"{self.owner}/{self.name}"


def _problem(code: str, detail: str) -> RepoProblem:
    return RepoProblem(code, detail)


def _classify_host(host: str) -> Source | RepoProblem:
    bare = host[4:] if host.startswith("www.") else host
    if bare in HOSTS:
        return HOSTS[bare]
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return _problem("ip_address", f"{host} is an IP address, not a code host")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".localdomain")):
        return _problem("localhost", f"{host} is a local host name")
    if not host.isascii():
        return _problem("lookalike_host", f"{host!r} has non-ASCII characters (possible look-alike)")
    for dead in DEAD_HOSTS:
        if host == dead or host.endswith("." + dead):
            return _problem("dead_host", f"{host} is a code host that is gone or not crawlable")
    for domain in _PLATFORM_DOMAINS:
        if host == domain or host.endswith("." + domain):
            return _problem("not_repository_host", f"{host} does not host repositories")
    if any(stem in host for stem in _PLATFORM_STEMS):
        return _problem("lookalike_host", f"{host} is not {', '.join(HOSTS)}")
    return _problem("unknown_host", f"{host} is not a supported code host")


def _split_location(url: str) -> tuple[str, str, str] | RepoProblem:
    """(scheme, host, path) of a URL or an scp-like `git@host:path`, with userinfo/port checks."""
    scp = _SCP_FORM.match(url)
    if scp and "://" not in url:
        if scp["user"] != "git":
            return _problem("userinfo", f"user {scp['user']!r} in an ssh URL (only git@ is accepted)")
        return "ssh", scp["host"].lower().rstrip("."), scp["path"]
    if "://" not in url:
        lowered = url.lower()
        if lowered.startswith(tuple(HOSTS)) or lowered.startswith(tuple("www." + h for h in HOSTS)):
            url = "https://" + url  # "github.com/owner/name" without a scheme
        elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
            return _problem("unsupported_scheme", f"scheme {url.split(':', 1)[0].lower()!r} is not http(s)/git")
        else:
            return _problem("malformed", "not a URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return _problem("malformed", f"unparseable URL ({exc})")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return _problem("unsupported_scheme", f"scheme {scheme!r} is not http(s)/git")
    netloc = parts.netloc
    if "@" in netloc:
        user = netloc.rsplit("@", 1)[0]
        if not (scheme == "ssh" and user == "git"):
            return _problem("userinfo", "credentials or a user name in the URL")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return _problem("malformed", "no host")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return _problem("port", f"explicit port {port}")
    return scheme, host, parts.path


def _segments(path: str) -> list[str] | RepoProblem:
    raw = [s for s in path.split("/") if s != ""]
    decoded = [unquote(s) for s in raw]
    for segment in decoded:
        if segment in (".", "..") or "/" in segment or "\\" in segment:
            return _problem("path_traversal", f"path segment {segment!r}")
    return decoded


def parse_repo_url(url: str) -> RepoRef | RepoProblem:
    """A repository reference from a catalogue `repo_url`, or the precise reason it is unusable.

    Accepted: http/https/git/ssh URLs, scp-like `git@host:owner/name.git`, no scheme when the URL
    starts with a supported host, `www.`, any case, surrounding whitespace, a trailing `.git` or
    slash, deeper pages (`/tree/<branch>/...`, `/wiki`, `/issues`, `/-/...`), `?query` and
    `#fragment`. Which path segments name the owner and the repository is the host's source's
    `parse_repo_path` (nested groups, reserved owner names, allowed characters).
    """
    if not isinstance(url, str) or not url.strip():
        return _problem("empty", "no repository URL")
    url = url.strip()
    if _FORBIDDEN_CHARS.search(url):
        return _problem("malformed", "whitespace, control character or backslash inside the URL")
    fast = _FAST_HTTP.match(url)  # the common case, without urlsplit (same result, 3x faster)
    if fast:
        host: Source | RepoProblem = HOSTS[fast["host"].lower()]
        path = fast["path"] or ""
    else:
        location = _split_location(url)
        if isinstance(location, RepoProblem):
            return location
        _scheme, hostname, path = location
        host = _classify_host(hostname)
        if isinstance(host, RepoProblem):
            return host
    segments = _segments(path)
    if isinstance(segments, RepoProblem):
        return segments
    found = host.parse_repo_path(segments)
    if isinstance(found, RepoProblem):
        return found
    return RepoRef(host.name, *found)


# --- PyPI names ---------------------------------------------------------------------------------

_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_PYPI_HOSTS = frozenset({"pypi.python.org", "pypi.org", "www.pypi.org", "pypi.io", "www.pypi.io"})
_PYPI_ROUTES = ("pypi", "project", "simple")
_FAST_PYPI = re.compile(
    r"^(?:https?://)?(?:www\.)?(?:pypi\.python\.org|pypi\.org)/(?:pypi|project|simple)/"
    r"(?P<name>[A-Za-z0-9._-]+)(?:/[A-Za-z0-9._+!-]*)*(?:#.*)?$",
    re.IGNORECASE,
)


def _valid_name(name: str | None) -> str | None:
    if name and _PEP508_NAME.match(name):
        return canonicalize_name(name)
    return None


class _NoName:
    """A PyPI URL that names no project (`http://pypi.python.org/pypi/`): the slug may stand in."""


_NO_NAME = _NoName()


def _name_from_pypi_url(value: str) -> str | _NoName | RepoProblem:
    if "://" not in value:
        value = "https://" + value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return _problem("malformed", f"not parseable as a URL ({exc})")
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme.lower() not in ("http", "https"):
        return _problem("unsupported_scheme", f"scheme {parts.scheme!r} is not http or https")
    if host not in _PYPI_HOSTS:
        return _problem("not_pypi_host", f"{host or 'no host'} is not PyPI (pypi.org, pypi.python.org)")
    if parts.username:
        return _problem("userinfo", "credentials in the URL")
    if port not in (None, 80, 443):
        return _problem("port", f"explicit port {port}")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments or segments[0] not in _PYPI_ROUTES:
        # legacy pypi.python.org/<name> links
        if len(segments) == 1:
            return _checked_name(segments[0])
        if not segments:
            return _NO_NAME
        return _problem("not_a_project_page", f"path {parts.path!r} names no PyPI project")
    if len(segments) == 1:
        # /pypi?:action=display&name=X (the 2010 PyPI UI)
        names = parse_qs(parts.query).get("name")
        if segments[0] == "pypi" and names:
            return _checked_name(names[0].strip())
        return _NO_NAME
    return _checked_name(segments[1])


def _checked_name(name: str | None) -> str | RepoProblem:
    valid = _valid_name(name)
    if valid is None:
        return _problem("invalid_name", f"{name!r} is not a valid PyPI project name (PEP 508)")
    return valid


def parse_pypi(pypi_url: str | None, fallback_slug: str | None = None) -> tuple[str | None, RepoProblem | None]:
    """(the PEP 503-normalised PyPI project name a catalogue `pypi_url` designates, why it is unusable).

    Forms (API_V4.md, plus what the 2011 site held): a bare name (`django-foo`), `pypi.python.org/pypi/X`
    with an optional `/version`, `pypi.org/project/X/`, `pypi.org/simple/X/`, `pypi.python.org/X`,
    `pypi.python.org/pypi?:action=display&name=X`, with or without scheme.

    Fallback rule (documented decision): `""` means "not on PyPI" and gives (None, None), whatever
    `fallback_slug` is. `fallback_slug` is used only when the source says nothing about PyPI
    (`pypi_url is None`, e.g. a CSV catalogue without the column) or when `pypi_url` is a PyPI URL
    that names no project (`http://pypi.python.org/pypi/`). A non-PyPI URL or an invalid name gives
    no name and a problem (codes as for repo URLs, plus `not_pypi_host`, `not_a_project_page`): it was
    a statement, just not a usable one, and the catalogue's maintainers should hear about it.
    """
    if pypi_url is None:
        return _valid_name(fallback_slug), None
    if not isinstance(pypi_url, str):
        return None, _problem("malformed", f"pypi_url is a {type(pypi_url).__name__}, not text")
    value = pypi_url.strip()
    if not value:
        return None, None
    if _FORBIDDEN_CHARS.search(value):
        return None, _problem("malformed", "whitespace, control character or backslash inside the pypi_url")
    if "/" not in value and ":" not in value and "?" not in value:
        found: str | _NoName | RepoProblem = _checked_name(value)
    elif fast := _FAST_PYPI.match(value):
        found = _checked_name(fast["name"])
    else:
        found = _name_from_pypi_url(value)
    if isinstance(found, _NoName):
        return _valid_name(fallback_slug), None
    if isinstance(found, RepoProblem):
        return None, found
    return found, None
