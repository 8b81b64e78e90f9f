"""Shared async HTTP plumbing for the crawl: host allow-list, retries, redirects, rate limits.

One `httpx.AsyncClient` per network location (keep-alive pool), one `Upstream` per configured API
(GitHub REST, GitHub GraphQL, PyPI, GitLab, Bitbucket, Codeberg) with its own concurrency cap. Everything an
upstream answers is returned as a `Fetched` value, never raised: a failure is *classified*
(`error_kind`) so the caller can archive it and go on. The only exception that escapes is
`BudgetExceeded` (the time budget would be overrun by waiting for a quota reset), which stops the
crawl cleanly.

Libraries: httpx (async client with connection pooling, already the project's HTTP library),
tenacity (bounded retries with jittered exponential backoff), orjson (fast JSON validation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from pipelines.settings import netloc

USER_AGENT = "package-pulse-crawler/0.1 (+https://github.com/djangopackages)"

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
)


class HostNotAllowed(ValueError):
    """A URL points outside the configured API hosts; it is never requested."""


class BudgetExceeded(Exception):
    """Waiting (for a quota reset or a secondary limit) would overrun the crawl's time budget."""


@dataclass(frozen=True)
class Tuning:
    """Knobs of the crawl. Defaults suit the real upstreams; tests shrink the waits."""

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_attempts: int = 4  # transient failures (5xx, timeouts, resets, malformed JSON)
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    computing_attempts: int = 4  # 202 "stats being computed": polls in total
    computing_base_s: float = 2.0
    computing_max_s: float = 15.0
    secondary_base_s: float = 60.0  # secondary limit without retry-after: 60 s, 120 s, ...
    secondary_max_hits: int = 5
    quota_max_waits: int = 3  # primary quota exhausted: waits for reset per request
    max_redirects: int = 3
    max_pages: int = 50  # contributors / commits pages per request key
    github_concurrency: int = 64  # REST + GraphQL together stay <= 100 (GitHub's concurrency limit)
    github_rest_per_minute: int | None = 900  # per token; GitHub's secondary limit (None: off)
    pypi_concurrency: int = 48
    gitlab_concurrency: int = 16
    bitbucket_concurrency: int = 16
    codeberg_concurrency: int = 8  # Codeberg is a non-profit's service: be gentle
    graphql_batch: int = 50
    graphql_concurrency: int = 4
    jobs_in_flight: int = 512
    flush_interval_s: float = 2.0
    fetch_simple: bool = True  # PyPI Simple JSON (project-status)
    aiohttp_transport: bool = True  # httpx client API over aiohttp's faster pool (see AiohttpTransport)
    # skip stats/participation for repositories with no push in 52 weeks + margin: the answer is
    # known (all zeros) and archived as a derived row (`attempts` 0, header `x-pulse-derived`)
    derive_idle_participation: bool = True
    idle_margin_days: float = 56.0


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

    @property
    def ok(self) -> bool:
        return self.error_kind is None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304 and self.error_kind is None


class _Retry(Exception):
    def __init__(self, fetched: Fetched) -> None:
        super().__init__(fetched.error)
        self.fetched = fetched


def check_url(url: str, allowed: Iterable[str]) -> str:
    """Return `url` when its scheme is http(s) and its host:port is allowed; else raise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise HostNotAllowed("refusing a non-http(s) URL")
    if netloc(url) not in allowed:
        raise HostNotAllowed(f"refusing host {netloc(url)} (not a configured API host)")
    return url


def keep_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in KEEP_HEADERS if name in headers}


def next_link(link_header: str | None) -> str | None:
    """The `rel="next"` target of an RFC 8288 Link header."""
    if not link_header:
        return None
    for part in link_header.split(","):
        section = part.split(";")
        if len(section) < 2:
            continue
        target = section[0].strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in section[1:]:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
                return target[1:-1]
    return None


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


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Primary rate limits (GitHub): one state per token and resource ("core", "graphql")


@dataclass
class _Quota:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds
    in_flight: int = 0

    def available(self, now: float) -> float:
        if self.remaining is None or (self.reset_at is not None and now >= self.reset_at):
            # unknown (or a new window): assume a full quota, so ties spread over the tokens
            return (self.limit or 5000) - self.in_flight
        return self.remaining - self.in_flight


class TokenPool:
    """Chooses a token per request by remaining quota and waits (or stops) when all are spent.

    Requests in flight are reserved against `remaining`, so the crawl throttles *before* the
    quota runs out instead of provoking 403s. `tokens` may be empty (anonymous REST).
    """

    def __init__(
        self,
        tokens: Sequence[SecretStr] = (),
        *,
        deadline: float | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        per_minute: int | None = None,
    ) -> None:
        self._tokens: list[SecretStr | None] = list(tokens) or [None]
        # pacing below GitHub's secondary limit (REST: 900 points a minute per token)
        self.per_minute = per_minute
        self._sent: dict[int, deque[float]] = {}
        self._paced_logged = False
        self._quota: dict[tuple[int, str], _Quota] = {}
        self.deadline = deadline  # monotonic
        self.log = log or logging.getLogger(__name__)
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._logged_wait: float | None = None
        self.waits = 0
        self.used: Counter[int] = Counter()

    @property
    def authenticated(self) -> bool:
        return self._tokens[0] is not None

    def quota(self, index: int, resource: str) -> _Quota:
        return self._quota.setdefault((index, resource), _Quota())

    def auth_header(self, index: int) -> dict[str, str]:
        token = self._tokens[index]
        return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}

    def _pace_delay(self, index: int, now: float) -> float:
        """Seconds until token `index` may send another REST request under `per_minute`."""
        if not self.per_minute:
            return 0.0
        sent = self._sent.setdefault(index, deque())
        while sent and now - sent[0] >= 60.0:
            sent.popleft()
        return 0.0 if len(sent) < self.per_minute else 60.0 - (now - sent[0])

    async def acquire(self, resource: str) -> int:
        while True:
            now = self._clock()
            mono = self._monotonic()
            paced = self.per_minute and resource == "core"
            best, best_avail, best_delay = 0, float("-inf"), float("inf")
            for index in range(len(self._tokens)):
                avail = self.quota(index, resource).available(now)
                if avail <= 0:
                    continue
                delay = self._pace_delay(index, mono) if paced else 0.0
                if (delay, -avail) < (best_delay, -best_avail):
                    best, best_avail, best_delay = index, avail, delay
            if best_avail > 0 and best_delay <= 0:
                self.quota(best, resource).in_flight += 1
                self.used[best] += 1
                if paced:
                    self._sent[best].append(mono)
                return best
            if best_avail > 0:  # quota left, but sending now would trip the secondary limit
                if self.deadline is not None and mono + best_delay > self.deadline:
                    raise BudgetExceeded("pacing below the secondary rate limit would exceed the time budget")
                if not self._paced_logged:
                    self._paced_logged = True
                    self.log.info("GitHub: pacing REST requests at %d a minute per token", self.per_minute)
                await self._sleep(best_delay + 0.01)
                continue
            if any(q.in_flight for (_, res), q in self._quota.items() if res == resource):
                # the last requests are out: their answers (a free 304, a new window) may free quota
                await self._sleep(0.05)
                continue
            resets = [
                q.reset_at for (_, res), q in self._quota.items() if res == resource and q.reset_at is not None
            ]
            reset_at = min(resets) if resets else now + 60
            wait = max(0.0, reset_at - now) + 1.0
            who = (f"all {len(self._tokens)} token(s)" if self.authenticated
                   else "anonymous access (set GITHUB_TOKEN for 5,000 requests an hour per token)")
            await self.wait(wait, f"GitHub {resource} quota spent on {who}")

    async def wait(self, seconds: float, why: str) -> None:
        """Sleep `seconds`, or raise BudgetExceeded when that overruns the deadline."""
        if self.deadline is not None and self._monotonic() + seconds > self.deadline:
            raise BudgetExceeded(f"{why}; waiting {seconds:.0f} s would exceed the time budget")
        key = round(self._clock() + seconds)
        if self._logged_wait is None or abs(self._logged_wait - key) > 5:
            self._logged_wait = key
            self.log.warning("%s: waiting %.0f s for the reset", why, seconds)
        self.waits += 1
        await self._sleep(seconds)

    def release(self, index: int, resource: str, headers: Mapping[str, str] | None) -> None:
        quota = self.quota(index, resource)
        quota.in_flight = max(0, quota.in_flight - 1)
        if headers is None:
            return
        remaining = _int(headers.get("x-ratelimit-remaining"))
        reset = _int(headers.get("x-ratelimit-reset"))
        limit = _int(headers.get("x-ratelimit-limit"))
        if remaining is None:
            return
        if limit is not None:
            quota.limit = limit
        if reset is not None and (quota.reset_at is None or reset > quota.reset_at):
            quota.reset_at, quota.remaining = float(reset), remaining  # a new window
        elif quota.remaining is None or reset is None or reset == quota.reset_at:
            quota.remaining = remaining if quota.remaining is None else min(quota.remaining, remaining)

    def exhausted(self, index: int, resource: str, reset: int | None) -> None:
        quota = self.quota(index, resource)
        quota.remaining = 0
        now = self._clock()
        if reset is not None:
            quota.reset_at = max(float(reset), now + 1.0)  # clock skew: never a reset in the past
        elif quota.reset_at is None or quota.reset_at <= now:
            quota.reset_at = now + 60

    def exhausted_headers(self, resource: str, headers: Mapping[str, str]) -> None:
        """Mark every token's `resource` quota spent (GraphQL RATE_LIMITED names no token)."""
        reset = _int(headers.get("x-ratelimit-reset"))
        for index in range(len(self._tokens)):
            quota = self.quota(index, resource)
            if (quota.remaining is not None and quota.remaining < 5) or len(self._tokens) == 1:
                self.exhausted(index, resource, reset)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"token": index, "resource": res, "remaining": q.remaining, "reset_at": q.reset_at}
            for (index, res), q in sorted(self._quota.items())
        ]


# --------------------------------------------------------------------------------------------


class AdaptiveGate:
    """A semaphore whose size can shrink: halved on each secondary rate limit (not below 1)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.active = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify()

    def shrink(self) -> int:
        self.limit = max(1, self.limit // 2)
        return self.limit


@dataclass
class UpstreamStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    quota_spent: float = 0.0


class Upstream:
    """One configured API: base URL, allow-list, concurrency cap, retries, rate limits."""

    def __init__(
        self,
        name: str,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        allowed: Iterable[str],
        tuning: Tuning,
        concurrency: int,
        pool: TokenPool | None = None,
        resource: str = "core",
        headers: Mapping[str, str] | None = None,
        log: logging.Logger | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        deadline: float | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.allowed = frozenset(allowed)
        self.tuning = tuning
        self.semaphore = AdaptiveGate(concurrency)
        self.pool = pool
        self.resource = resource
        self.headers = dict(headers or {})
        self.log = log or logging.getLogger(__name__)
        self._sleep = sleep
        self.deadline = deadline  # monotonic; None = no time budget
        self.stats = UpstreamStats()
        self._paused_until = 0.0  # monotonic; a secondary rate limit pauses the whole upstream
        check_url(self.base_url, self.allowed)
        # an upstream only ever talks to its own host: redirects and Link pages included
        self.own_host = frozenset({netloc(self.base_url)})

    # urls -------------------------------------------------------------------------------
    def absolute(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not path:
            return self.base_url
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def relative(self, url: str) -> str:
        """Path and query below the base URL (what the archive stores); never carries a token."""
        if url.startswith(self.base_url + "/") or url == self.base_url:
            return url[len(self.base_url) :] or "/"
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # requests ---------------------------------------------------------------------------
    async def get(
        self,
        path: str,
        *,
        etag: str | None = None,
        headers: Mapping[str, str] | None = None,
        expect_json: bool = True,
    ) -> Fetched:
        return await self.request("GET", path, etag=etag, headers=headers, expect_json=expect_json)

    async def request(
        self,
        method: str,
        path: str,
        *,
        etag: str | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        expect_json: bool = True,
    ) -> Fetched:
        url = self.absolute(path)
        first = self.relative(url)
        try:
            check_url(url, self.allowed)
            check_url(url, self.own_host)
        except HostNotAllowed as exc:
            return Fetched(url=first, status=0, attempts=0, error_kind="blocked", error=str(exc))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.tuning.max_attempts),
            wait=wait_random_exponential(multiplier=self.tuning.retry_base_s, max=self.tuning.retry_max_s),
            retry=retry_if_exception_type(_Retry),
            reraise=True,
            sleep=self._sleep,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    fetched = await self._send(method, url, etag, headers, json_body, expect_json)
                    fetched.url = first
                    fetched.attempts = attempts
                    return fetched
        except _Retry as exc:
            fetched = exc.fetched
            fetched.url = first
            fetched.attempts = attempts
            return fetched
        raise AssertionError("unreachable")  # pragma: no cover

    async def _wait_paused(self) -> None:
        while True:
            delay = self._paused_until - time.monotonic()
            if delay <= 0:
                return
            await self._sleep(delay)

    async def _send(
        self,
        method: str,
        url: str,
        etag: str | None,
        extra: Mapping[str, str] | None,
        json_body: Any,
        expect_json: bool,
    ) -> Fetched:
        """One attempt: follows redirects (same allowed hosts, bounded) and waits out rate limits.

        Raises `_Retry` for what deserves another attempt; returns everything else.
        """
        redirects = 0
        secondary_hits = 0
        quota_waits = 0
        final_url: str | None = None
        while True:
            slot = await self.pool.acquire(self.resource) if self.pool is not None else None
            await self._wait_paused()
            send_headers = dict(self.headers)
            if extra:
                send_headers.update(extra)
            if etag:
                send_headers["If-None-Match"] = etag
            if slot is not None:
                send_headers.update(self.pool.auth_header(slot))
            response: httpx.Response | None = None
            try:
                async with self.semaphore:
                    self.stats.requests += 1
                    response = await self.client.request(
                        method,
                        url,
                        headers=send_headers,
                        content=orjson.dumps(json_body) if json_body is not None else None,
                    )
            except httpx.TransportError as exc:  # timeouts, resets, refused, protocol errors
                if slot is not None:
                    self.pool.release(slot, self.resource, None)
                self.stats.statuses[0] += 1
                raise _Retry(
                    Fetched(url=url, status=0, error_kind="transient", error=f"{type(exc).__name__}")
                ) from None
            status = response.status_code
            self.stats.statuses[status] += 1
            rheaders = response.headers
            if slot is not None:
                self.pool.release(slot, self.resource, rheaders)
            text = response.text
            kept = keep_headers(rheaders)

            # --- rate limits -------------------------------------------------------------------
            if status in (403, 429):
                remaining = _int(rheaders.get("x-ratelimit-remaining"))
                lowered = text[:2000].lower()
                if remaining == 0 and "secondary" not in lowered:
                    quota_waits += 1
                    if self.pool is not None and quota_waits <= self.tuning.quota_max_waits:
                        self.pool.exhausted(slot, self.resource, _int(rheaders.get("x-ratelimit-reset")))
                        continue
                    return Fetched(url=url, status=status, headers=kept, text=text,
                                   error_kind="rate_limited", error=f"HTTP {status}: quota exhausted")
                retry_after = _int(rheaders.get("retry-after"))
                if status == 429 or retry_after is not None or "secondary rate limit" in lowered:
                    secondary_hits += 1
                    if secondary_hits > self.tuning.secondary_max_hits:
                        return Fetched(url=url, status=status, headers=kept, text=text,
                                       error_kind="rate_limited",
                                       error=f"HTTP {status}: secondary rate limit persisted")
                    delay = (
                        float(retry_after)
                        if retry_after is not None
                        else self.tuning.secondary_base_s * 2 ** (secondary_hits - 1)
                    )
                    await self._pause(delay, f"{self.name}: secondary rate limit (HTTP {status})")
                    continue
            # an authorised 304 costs no quota; everything else that got past the limits does
            if self.pool is not None and self.resource != "graphql" and (
                status != 304 or not self.pool.authenticated
            ):
                self.stats.quota_spent += 1

            # --- redirects ---------------------------------------------------------------------
            if status in (301, 302, 303, 307, 308):
                location = rheaders.get("location")
                redirects += 1
                if not location or redirects > self.tuning.max_redirects:
                    return Fetched(url=url, status=status, headers=kept, error_kind="renamed",
                                   error=f"HTTP {status}: redirect without target or too many redirects")
                target = urljoin(url, location)
                try:
                    check_url(target, self.allowed)
                    check_url(target, self.own_host)
                except HostNotAllowed as exc:
                    return Fetched(url=url, status=status, headers=kept, error_kind="renamed",
                                   error=f"HTTP {status}: redirect not followed: {exc}")
                url = final_url = target
                if status == 303:
                    method, json_body = "GET", None
                continue

            # --- everything else ---------------------------------------------------------------
            etag_out = rheaders.get("etag")
            if final_url is not None:
                kept["location"] = self.relative(final_url)
            if status == 304:
                return Fetched(url=url, status=304, headers=kept, etag=etag_out or etag, final_url=final_url)
            if status >= 500:
                raise _Retry(Fetched(url=url, status=status, headers=kept, text=text, etag=etag_out,
                                     error_kind="transient", error=f"HTTP {status}: server error",
                                     final_url=final_url))
            data = None
            if expect_json and 200 <= status < 300 and status not in (202, 204) and text:
                try:
                    data = orjson.loads(text)
                except orjson.JSONDecodeError:
                    raise _Retry(Fetched(url=url, status=status, headers=kept, text=text, etag=etag_out,
                                         error_kind="malformed", error=f"HTTP {status}: body is not JSON",
                                         final_url=final_url)) from None
            elif expect_json and 200 <= status < 300 and status not in (202, 204) and not text:
                raise _Retry(Fetched(url=url, status=status, headers=kept, text=text, etag=etag_out,
                                     error_kind="malformed", error=f"HTTP {status}: empty body",
                                     final_url=final_url))
            kind, message = classify_status(status, text)
            return Fetched(url=url, status=status, headers=kept, text=text, data=data, etag=etag_out,
                           error_kind=kind, error=message, final_url=final_url)

    async def _pause(self, delay: float, why: str) -> None:
        now = time.monotonic()
        until = now + delay
        if self.deadline is not None and until > self.deadline:
            raise BudgetExceeded(f"{why}; waiting {delay:.0f} s would exceed the time budget")
        if self._paused_until <= now:  # a new episode (not one more answer from the same burst)
            limit = self.semaphore.shrink()
            self.log.warning("%s: backing off %.1f s; concurrency now %d", why, delay, limit)
        self._paused_until = max(self._paused_until, until)
        await self._wait_paused()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport doing its I/O with aiohttp's connection pool.

    The crawl keeps httpx's client API (one `httpx.AsyncClient` per host), but httpcore's pool
    tops out at a few hundred requests a second under high concurrency on this class of machine,
    while aiohttp's connector does several thousand. Bodies are handed over undecoded, so httpx
    still does content decoding; aiohttp errors are mapped onto httpx's exception classes.
    """

    _SKIP = frozenset({"host", "content-length", "transfer-encoding", "connection"})

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._session: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.limit, limit_per_host=self.limit),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        timeouts = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in self._SKIP]
        content = request.content if request.method not in ("GET", "HEAD") else None
        try:
            async with self._session.request(
                request.method, str(request.url), headers=headers, data=content or None,
                allow_redirects=False, timeout=timeout,
            ) as response:
                body = await response.read()
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
                return httpx.Response(response.status, headers=raw, content=body, request=request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError("connection failed", request=request) from exc
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise httpx.RemoteProtocolError("connection closed or body incomplete", request=request) from exc
        except (aiohttp.ClientError, ConnectionError, OSError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_clients(
    base_urls: Iterable[str],
    concurrency_by_netloc: Mapping[str, int],
    tuning: Tuning,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, httpx.AsyncClient]:
    """One keep-alive `httpx.AsyncClient` per network location."""
    clients: dict[str, httpx.AsyncClient] = {}
    for url in base_urls:
        loc = netloc(url)
        if loc in clients:
            continue
        size = max(1, concurrency_by_netloc.get(loc, 16))
        clients[loc] = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(tuning.timeout_s, connect=tuning.connect_timeout_s),
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
            transport=transport or (AiohttpTransport(size) if tuning.aiohttp_transport else None),
        )
    return clients
