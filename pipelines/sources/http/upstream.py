"""The per-host client: one configured API behind its allow-list, with retries and redirects.

One `Upstream` per configured API (GitHub REST, GitHub GraphQL, PyPI, GitLab, Bitbucket, Codeberg),
each with its own concurrency cap, over one `httpx.AsyncClient` per network location
(`pipelines.sources.http.transport`). Everything an upstream answers is returned as a `Fetched` value,
never raised: a failure is *classified* (`error_kind`) so the caller can archive it and go on. The
only exception that escapes is `BudgetExceeded` (the time budget would be overrun by waiting for a
quota reset, `pipelines.sources.http.quota`), which stops the crawl cleanly.

A URL is only requested when it is http(s) on a configured API host, and an upstream only follows
redirects and Link pages to its own host: catalogue entries are user input, and a crafted repo URL
must not turn the crawler (and its tokens) against another host.

Libraries: httpx (async client API), tenacity (bounded retries with jittered exponential backoff),
orjson (fast JSON validation).

The crawl's other plumbing lives beside this module and is re-exported here, where callers have
always imported it from: `Tuning` (tuning), `Fetched` and the error vocabulary (fetched), the token
pool and rate-limit state (quota), pagination (pages), the connection pools (transport).
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

from pipelines.settings import netloc
from pipelines.sources.http.fetched import ERROR_KINDS, KEEP_HEADERS, Fetched, classify_status, keep_headers
from pipelines.sources.http.pages import next_link
from pipelines.sources.http.quota import AdaptiveGate, BudgetExceeded, TokenPool, header_int, notify
from pipelines.sources.http.transport import USER_AGENT, AiohttpTransport, make_clients
from pipelines.sources.http.tuning import Tuning

__all__ = [
    "ERROR_KINDS",
    "KEEP_HEADERS",
    "USER_AGENT",
    "AdaptiveGate",
    "AiohttpTransport",
    "BudgetExceeded",
    "Fetched",
    "HostNotAllowed",
    "TokenPool",
    "Tuning",
    "Upstream",
    "UpstreamStats",
    "check_url",
    "classify_status",
    "keep_headers",
    "make_clients",
    "next_link",
]


class HostNotAllowed(ValueError):
    """A URL points outside the configured API hosts; it is never requested."""


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
        self.headers = dict(headers or {})
        self.log = log or logging.getLogger(__name__)
        self._sleep = sleep
        self._clock = clock  # monotonic; injectable with `sleep` so tests need not wait
        self.deadline = deadline  # monotonic; None = no time budget
        self.stats = UpstreamStats()
        self.backoffs: list[float] = []  # seconds of each secondary-limit back-off episode
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
            delay = self._paused_until - self._clock()
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
                remaining = header_int(rheaders.get("x-ratelimit-remaining"))
                lowered = text[:2000].lower()
                if remaining == 0 and "secondary" not in lowered:
                    quota_waits += 1
                    if self.pool is not None and quota_waits <= self.tuning.quota_max_waits:
                        self.pool.exhausted(slot, self.resource, header_int(rheaders.get("x-ratelimit-reset")))
                        continue
                    return Fetched(url=url, status=status, headers=kept, text=text,
                                   error_kind="rate_limited", error=f"HTTP {status}: quota exhausted")
                retry_after = header_int(rheaders.get("retry-after"))
                if status == 429 or retry_after is not None or "secondary rate limit" in lowered:
                    secondary_hits += 1
                    if secondary_hits > self.tuning.secondary_max_hits:
                        return Fetched(url=url, status=status, headers=kept, text=text,
                                       error_kind="rate_limited",
                                       error=f"HTTP {status}: secondary rate limit persisted")
                    if retry_after is not None:  # honoured as given
                        delay, how = float(retry_after), "as retry-after asks"
                    else:  # GitHub: wait at least a minute, then exponentially longer
                        delay = self.tuning.secondary_base_s * 2 ** (secondary_hits - 1)
                        how = "no retry-after: exponential back-off"
                    await self._pause(delay, f"{self.name}: secondary rate limit (HTTP {status})", how)
                    continue
            self.semaphore.success()
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
