"""Reader of a djangopackages-compatible API v4 (the catalogue source), synchronous httpx.

Reads `/api/v4/categories/`, `/api/v4/grids/` and `/api/v4/packages/` under a base URL, asking for
large pages and following `next` links. Safety: every URL requested is on the base URL's scheme and
host:port (a `next` link or redirect elsewhere raises `CatalogueInvalid` and is not followed), a page
seen twice ends the walk with an error (no loops), and the number of pages is bounded.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried a bounded number of times
with jittered exponential backoff (tenacity); when the catalogue still cannot be read,
`CatalogueUnreachable` says so in one line naming the URL and the cause.

A read is all or nothing: a page that fails after the first one (a 500, an HTML maintenance page
instead of JSON, a broken link) raises `CatalogueIncomplete`, never a shorter list. The `count` each
list announces is kept (`read_counted`): the catalogue guard (assets/catalogue/guard.py) compares it
with the records read, and a count that changes between pages (the catalogue changed mid-read) is
incomplete too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from pipelines.sources.http.hosts import USER_AGENT, HostNotAllowed, netloc, same_host

PAGE_SIZE = 500
MAX_PAGES = 10_000
ENDPOINTS = ("categories", "grids", "packages")
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_ID_IN_URL = re.compile(r"/(\d+)/?$")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class CatalogueError(RuntimeError):
    """The catalogue cannot be used; `str(exc)` is one line fit for a CLI's last words."""


class CatalogueUnreachable(CatalogueError):
    """The catalogue could not be read (network, HTTP status, retries exhausted, missing file)."""


class CatalogueInvalid(CatalogueError):
    """The catalogue answered something unusable (not JSON, wrong shape, a link to another host)."""


class CatalogueIncomplete(CatalogueError):
    """A list was read only in part: a page after the first failed, or its `count` changed mid-read."""


class _Transient(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def id_from_url(value: Any) -> int | None:
    """The trailing integer id of a related URL (`.../api/v4/categories/3/` -> 3), whatever its host;
    an int (or all-digit string) is taken as the id itself. None when there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return int(text) or None
    text = text.split("#", 1)[0].split("?", 1)[0]
    if "://" in text:  # only the path counts (not a port or a numeric host)
        start = text.find("/", text.find("://") + 3)
        text = text[start:] if start >= 0 else ""
    match = _ID_IN_URL.search(text)
    return int(match.group(1)) if match else None


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class DjangoPackagesClient:
    """Reads the v4 lists of one djangopackages-compatible site.

    `client`: an `httpx.Client` to use (the caller closes it); by default one is created per read.
    `attempts`/`max_wait`: the retry budget per request (tests set `max_wait` small).
    """

    base_url: str
    client: httpx.Client | None = None
    page_size: int = PAGE_SIZE
    attempts: int = 4
    max_wait: float = 8.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CatalogueInvalid(f"catalogue base URL {self.base_url!r} is not an http(s) URL")
        self.base_url = self.base_url.rstrip("/")
        self._netloc = netloc(self.base_url)

    # -- public ------------------------------------------------------------------------------------

    def read_all(self) -> dict[str, list[dict[str, Any]]]:
        """{"categories": [...], "grids": [...], "packages": [...]}: every record of every list."""
        return self.read_counted()[0]

    def read_counted(self) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        """Every record of every list, and the `count` each list announced (when it did)."""
        counts: dict[str, int] = {}
        with self._session() as http:
            return {name: list(self._walk(http, name, counts)) for name in ENDPOINTS}, counts

    def probe(self, endpoint: str = "packages", limit: int = 20,
              offset: int = 0) -> tuple[int | None, list[dict[str, Any]]]:
        """One request: the list's `count` and `limit` records from `offset` (lists are ordered by -id, so
        offset 0 gives the newest ones). A cheap "did anything change?" look (the catalogue sensor),
        never a read."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        url = f"{self.base_url}/api/v4/{endpoint}/?limit={limit}&offset={max(0, int(offset))}"
        with self._session() as http:
            page = self._get_json(http, url)
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise CatalogueInvalid(f"GET {url}: not a v4 list page (no 'results' list)")
        count = page.get("count")
        records = [r for r in page["results"] if isinstance(r, dict)]
        return (count if isinstance(count, int) and not isinstance(count, bool) else None), records

    def read_list(self, endpoint: str) -> list[dict[str, Any]]:
        with self._session() as http:
            return list(self._walk(http, endpoint))

    def list_url(self, endpoint: str) -> str:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        return f"{self.base_url}/api/v4/{endpoint}/?limit={self.page_size}&offset=0"

    # -- internals ---------------------------------------------------------------------------------

    def _session(self) -> _Session:
        if self.client is not None:
            return _Session(self.client, owned=False)
        client = httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        return _Session(client, owned=True)

    def _check_allowed(self, url: str, referrer: str) -> None:
        try:
            netloc(url)
        except ValueError as exc:
            raise CatalogueInvalid(f"catalogue link {url!r} from {referrer} is not a URL ({exc})") from exc
        try:
            same_host(url, self.base_url)
        except HostNotAllowed:
            raise CatalogueInvalid(
                f"catalogue link {_one_line(url)} from {referrer} leaves {self._netloc}: not followed"
            ) from None

    def _walk(self, http: httpx.Client, endpoint: str,
              counts: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
        counts = {} if counts is None else counts
        url: str | None = self.list_url(endpoint)
        seen: set[str] = set()
        pages = read = 0
        while url is not None:
            if url in seen:
                raise CatalogueInvalid(f"catalogue pagination loops back to {url}")
            seen.add(url)
            pages += 1
            if pages > MAX_PAGES:
                raise CatalogueInvalid(f"catalogue {endpoint} has more than {MAX_PAGES} pages")
            try:
                page = self._get_json(http, url)
                if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                    raise CatalogueInvalid(f"GET {url}: not a v4 list page (no 'results' list)")
            except CatalogueError as exc:
                if pages == 1:  # the list's first page: unreachable or invalid as it is
                    raise
                announced = f" of {counts[endpoint]}" if endpoint in counts else ""
                raise CatalogueIncomplete(
                    f"catalogue {endpoint} read stopped after {read}{announced} records: {exc}") from exc
            count = page.get("count")
            if isinstance(count, int) and not isinstance(count, bool):
                if endpoint in counts and counts[endpoint] != count:
                    raise CatalogueIncomplete(
                        f"GET {url}: count changed from {counts[endpoint]} to {count} during the read")
                counts[endpoint] = count
            for record in page["results"]:
                if isinstance(record, dict):
                    read += 1
                    yield record
                else:
                    raise CatalogueInvalid(f"GET {url}: a result is not an object")
            following = page.get("next")
            if following is not None and not isinstance(following, str):
                raise CatalogueInvalid(f"GET {url}: 'next' is not a URL")
            if following:
                self._check_allowed(following, url)
                url = following
            else:
                url = None

    def _get_json(self, http: httpx.Client, url: str) -> Any:
        self._check_allowed(url, "the configured base URL")

        def attempt() -> httpx.Response:
            target = url
            for _ in range(5):  # redirects are followed only on the same host:port
                try:
                    response = http.get(target)
                except httpx.TransportError as exc:
                    raise _Transient(f"{type(exc).__name__}: {_one_line(str(exc)) or 'no detail'}") from exc
                if response.status_code in _TRANSIENT_STATUS:
                    raise _Transient(f"HTTP {response.status_code}")
                if not response.is_redirect:
                    return response
                target = str(response.url.join(response.headers.get("location", "")))
                self._check_allowed(target, f"a redirect from {url}")
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=0.25, max=self.max_wait),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Transient)),
            reraise=False,
        )
        try:
            response = retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            cause = last.message if isinstance(last, _Transient) else str(last)
            raise CatalogueUnreachable(
                f"catalogue unreachable: GET {url}: {cause} (after {self.attempts} attempts)"
            ) from last
        if response.is_redirect:
            raise CatalogueUnreachable(f"catalogue unreachable: GET {url}: too many redirects")
        if response.status_code != 200:
            raise CatalogueUnreachable(f"catalogue unreachable: GET {url}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            if "html" in response.headers.get("content-type", "").lower():
                title = _TITLE.search(response.text)
                what = f" {_one_line(title.group(1), 80)!r}" if title else ""
                raise CatalogueInvalid(f"GET {url}: an HTML page{what} instead of JSON") from exc
            raise CatalogueInvalid(f"GET {url}: response is not JSON ({_one_line(str(exc), 80)})") from exc


class _Session:
    def __init__(self, client: httpx.Client, owned: bool):
        self.client, self.owned = client, owned

    def __enter__(self) -> httpx.Client:
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.client.close()


def read_api(base_url: str, *, http_client_factory: Callable[[], httpx.Client] | None = None,
             **options: Any) -> dict[str, list[dict[str, Any]]]:
    """All categories, grids and packages of the v4 API under `base_url`."""
    return read_api_counted(base_url, http_client_factory=http_client_factory, **options)[0]


def read_api_counted(base_url: str, *, http_client_factory: Callable[[], httpx.Client] | None = None,
                     **options: Any) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """All categories, grids and packages of the v4 API under `base_url`, and each list's `count`."""
    if http_client_factory is None:
        return DjangoPackagesClient(base_url, **options).read_counted()
    with http_client_factory() as client:
        return DjangoPackagesClient(base_url, client=client, **options).read_counted()
