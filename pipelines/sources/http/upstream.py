"""The per-host client: one configured API behind its allow-list, with retries and redirects.

One `Upstream` per configured API (each source's base URL; GitHub also has its GraphQL endpoint),
each with its own concurrency cap, over one `httpx.AsyncClient` per network location
(`pipelines.sources.http.transport`). Everything an upstream answers is returned as a `Fetched` value,
never raised: a failure is *classified* (`error_kind`) so the caller can archive it and go on. The
only exception that escapes is `BudgetExceeded` (the time budget would be overrun by waiting for a
quota reset, `pipelines.sources.http.quota`), which stops the crawl cleanly.

A URL is only requested when it is http(s) on a configured API host, and an upstream only follows
redirects and Link pages to its own host (`pipelines.sources.http.hosts`).

Libraries: httpx (async client API), tenacity (bounded retries with jittered exponential backoff),
orjson (fast JSON validation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from pipelines.sources.http.fetched import Fetched, classify_status, keep_headers
from pipelines.sources.http.hosts import HostNotAllowed, check_url, same_host
from pipelines.sources.http.quota import (
    AdaptiveGate,
    BudgetExceeded,
    TokenPool,
    header_int,
    notify,
    retry_after_seconds,
)
from pipelines.sources.http.transport import Paced
from pipelines.sources.http.tuning import Tuning

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# An answer with a `Last-Modified` but no `ETag` stores its date as the validator, behind this prefix
# (a real ETag is a quoted string, so the two never mix up); sent back as `If-Modified-Since`
LAST_MODIFIED = "last-modified:"


def validator(headers: Mapping[str, str]) -> str | None:
    """What the next request sends back: the ETag, else the Last-Modified date (`LAST_MODIFIED`)."""
    etag = headers.get("etag")
    if etag:
        return etag
    modified = headers.get("last-modified")
    return f"{LAST_MODIFIED}{modified}" if modified else None


class _Retry(Exception):
    def __init__(self, fetched: Fetched) -> None:
        super().__init__(fetched.error)
        self.fetched = fetched


@dataclass
class _Hops:
    """What one attempt has been through so far: redirects followed, rate-limit waits."""

    redirects: int = 0
    secondary_hits: int = 0
    quota_waits: int = 0
    final_url: str | None = None  # where redirects led, when they did


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
        client: httpx.AsyncClient | None,
        *,
        allowed: Iterable[str],
        tuning: Tuning,
        concurrency: int,
        pool: TokenPool | None = None,
        resource: str = "core",
        log: logging.Logger | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.allowed = frozenset(allowed)
        self.tuning = tuning
        self.semaphore = AdaptiveGate(concurrency, regrow_after=tuning.concurrency_regrow_after)
        self.pool = pool
        self.resource = resource
        self.log = log or logging.getLogger(__name__)
        self._sleep = sleep
        self._clock = clock  # monotonic; injectable with `sleep` so tests need not wait
        self.deadline = deadline  # monotonic; None = no time budget
        self.stats = UpstreamStats()
        self.backoffs: list[float] = []  # seconds of each secondary-limit back-off episode
        self._paused_until = 0.0  # monotonic; a secondary rate limit pauses the whole upstream
        self.paced: Paced | None = None  # set by a source whose API is paced (the transport applies it)
        check_url(self.base_url, self.allowed)

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
    ) -> Fetched:
        return await self.request("GET", path, etag=etag, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        etag: str | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Fetched:
        url = self.absolute(path)
        first = self.relative(url)
        try:
            self._check(url)
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
                    fetched = await self._send(method, url, etag, headers, json_body)
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
            delay = self._paused_until - self._clock()
            if delay <= 0:
                return
            await self._sleep(delay)

    def _check(self, url: str) -> str:
        """An upstream only ever talks to its own host: requests, redirects and Link pages."""
        return same_host(check_url(url, self.allowed), self.base_url)

    async def _send(
        self,
        method: str,
        url: str,
        etag: str | None,
        extra: Mapping[str, str] | None,
        json_body: Any,
    ) -> Fetched:
        """One attempt: follows redirects (same host, bounded) and waits out rate limits.

        Raises `_Retry` for what deserves another attempt; returns everything else.
        """
        hops = _Hops()
        while True:
            slot = await self.pool.acquire(self.resource) if self.pool is not None else None
            await self._wait_paused()
            response = await self._exchange(method, url, self._headers(extra, etag, slot), json_body, slot)
            limited = await self._rate_limit(url, response, slot, hops)
            if limited is True:
                continue  # waited for a reset or a back-off: ask again
            if isinstance(limited, Fetched):
                return limited
            self._count_spent(response.status_code)
            if response.status_code in REDIRECTS:
                target = self._redirect(url, response, hops)
                if isinstance(target, Fetched):
                    return target
                url = hops.final_url = target
                if response.status_code == 303:
                    method, json_body = "GET", None
                continue
            return self._outcome(url, response, etag, hops.final_url)

    def _headers(self, extra: Mapping[str, str] | None, etag: str | None, slot: int | None) -> dict[str, str]:
        """The call's headers, the conditional `If-None-Match` (or `If-Modified-Since`) and the token's."""
        headers = dict(extra or {})
        if etag and etag.startswith(LAST_MODIFIED):
            headers["If-Modified-Since"] = etag.removeprefix(LAST_MODIFIED)
        elif etag:
            headers["If-None-Match"] = etag
        if slot is not None:
            headers.update(self.pool.auth_header(slot))
        return headers

    async def _exchange(self, method: str, url: str, headers: dict[str, str], json_body: Any,
                        slot: int | None) -> httpx.Response:
        """One request and its answer, counted; a transport failure is a retryable `transient`."""
        try:
            async with self.semaphore:
                self.stats.requests += 1
                response = await self.client.request(
                    method, url, headers=headers,
                    content=orjson.dumps(json_body) if json_body is not None else None,
                )
        except httpx.TransportError as exc:  # timeouts, resets, refused, protocol errors
            if slot is not None:
                self.pool.release(slot, self.resource, None)
            self.stats.statuses[0] += 1
            raise _Retry(Fetched(url=url, status=0, error_kind="transient", error=f"{type(exc).__name__}")) from None
        self.stats.statuses[response.status_code] += 1
        if slot is not None:
            self.pool.release(slot, self.resource, response.headers)
        return response

    async def _rate_limit(self, url: str, response: httpx.Response, slot: int | None,
                          hops: _Hops) -> Fetched | bool:
        """True after waiting out a limit (ask again), a `rate_limited` answer when it persists,
        False when the answer is not a rate limit."""
        status, rheaders = response.status_code, response.headers
        if status not in (403, 429):
            return False
        text = response.text
        remaining = header_int(rheaders.get("x-ratelimit-remaining"))
        lowered = text[:2000].lower()
        if remaining == 0 and "secondary" not in lowered:
            hops.quota_waits += 1
            if self.pool is not None and hops.quota_waits <= self.tuning.quota_max_waits:
                self.pool.exhausted(slot, self.resource, header_int(rheaders.get("x-ratelimit-reset")))
                return True
            return Fetched(url=url, status=status, headers=keep_headers(rheaders), text=text,
                           error_kind="rate_limited", error=f"HTTP {status}: quota exhausted")
        retry_after = retry_after_seconds(rheaders.get("retry-after"))  # seconds or an HTTP-date
        if not (status == 429 or retry_after is not None or "secondary rate limit" in lowered):
            return False
        hops.secondary_hits += 1
        if hops.secondary_hits > self.tuning.secondary_max_hits:
            return Fetched(url=url, status=status, headers=keep_headers(rheaders), text=text,
                           error_kind="rate_limited", error=f"HTTP {status}: secondary rate limit persisted")
        if retry_after is not None:  # honoured as given
            delay, how = retry_after, "as retry-after asks"
        else:  # GitHub: wait at least a minute, then exponentially longer
            delay = self.tuning.secondary_base_s * 2 ** (hops.secondary_hits - 1)
            how = "no retry-after: exponential back-off"
        await self._pause(delay, f"{self.name}: secondary rate limit (HTTP {status})", how)
        return True

    def _count_spent(self, status: int) -> None:
        """An answer past the limits: the gate may regrow, and it costs quota unless an authorised 304."""
        self.semaphore.success()
        if self.pool is not None and self.resource != "graphql" and (status != 304 or not self.pool.authenticated):
            self.stats.quota_spent += 1

    def _redirect(self, url: str, response: httpx.Response, hops: _Hops) -> str | Fetched:
        """Where a redirect leads, when it may be followed (bounded, same host); else `renamed`."""
        status = response.status_code
        location = response.headers.get("location")
        hops.redirects += 1
        if not location or hops.redirects > self.tuning.max_redirects:
            return Fetched(url=url, status=status, headers=keep_headers(response.headers), error_kind="renamed",
                           error=f"HTTP {status}: redirect without target or too many redirects")
        try:
            return self._check(urljoin(url, location))
        except HostNotAllowed as exc:
            return Fetched(url=url, status=status, headers=keep_headers(response.headers), error_kind="renamed",
                           error=f"HTTP {status}: redirect not followed: {exc}")

    def _outcome(self, url: str, response: httpx.Response, etag: str | None, final_url: str | None) -> Fetched:
        """A final answer, classified; raises `_Retry` for a server error or a broken JSON body."""
        status, rheaders, text = response.status_code, response.headers, response.text
        kept = keep_headers(rheaders)
        etag_out = validator(rheaders)
        if final_url is not None:
            kept["location"] = self.relative(final_url)
        if status == 304:
            return Fetched(url=url, status=304, headers=kept, etag=etag_out or etag, final_url=final_url)

        def retry(kind: str, message: str) -> _Retry:
            return _Retry(Fetched(url=url, status=status, headers=kept, text=text, etag=etag_out,
                                  error_kind=kind, error=f"HTTP {status}: {message}", final_url=final_url))

        if status >= 500:
            raise retry("transient", "server error")
        data = None
        if 200 <= status < 300 and status not in (202, 204):  # every upstream answers JSON
            if not text:
                raise retry("malformed", "empty body")
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise retry("malformed", "body is not JSON") from None
        kind, message = classify_status(status, text)
        next_url = (response.links.get("next") or {}).get("url") if "link" in rheaders else None
        return Fetched(url=url, status=status, headers=kept, text=text, data=data, etag=etag_out,
                       error_kind=kind, error=message, final_url=final_url, next_url=next_url)

    async def _pause(self, delay: float, why: str, how: str = "") -> None:
        """Pause the whole upstream `delay` s (the answers of one burst extend one episode).

        A new episode halves the concurrency and says so on the console (`notify`).
        """
        now = self._clock()
        until = now + delay
        if self.deadline is not None and until > self.deadline:
            raise BudgetExceeded(f"{why}; waiting {delay:.0f} s would exceed the time budget")
        if self._paused_until <= now:  # a new episode (not one more answer from the same burst)
            limit = self.semaphore.shrink()
            self.backoffs.append(delay)
            notify(self.log, f"{why} — backing off {delay:.0f} s{f' ({how})' if how else ''}; "
                             f"concurrency now {limit}")
        self._paused_until = max(self._paused_until, until)
        await self._wait_paused()
