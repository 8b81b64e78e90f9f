"""Connection pools: one keep-alive `httpx.AsyncClient` per host, doing its I/O through aiohttp.

Kept apart from the request logic (`pipelines.sources.http.upstream`) because it is the one piece chosen for
speed rather than behaviour: tests swap it for an in-process fake transport.

It is also the one choke point of politeness: a client whose host carries a paced API (GitHub's REST
and GraphQL, `Paced`) sends every request through `PacedTransport`, which waits for the account's
pace, then for one of the account's machine-wide slots of requests in flight
(`pipelines.sources.http.slots`), right before the request leaves, and frees the slot when the answer
is in. Retries, 202 polls, redirect follow-ups, extra pages, `/rate_limit` and `/user` all go through
a client, so none can slip past, whatever code sends them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from pipelines.sources.http.accounts import Accounts
from pipelines.sources.http.hosts import USER_AGENT, netloc
from pipelines.sources.http.pace import Pace
from pipelines.sources.http.slots import Slots
from pipelines.sources.http.tuning import Tuning

CHEAP_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Paced:
    """Requests under `base_url` wait for `pace` first, then for a slot of `slots` (either may be
    None: off), keyed by the account of their token.

    Points (GitHub, "Calculating points for the secondary rate limit"): REST GET/HEAD/OPTIONS 1,
    other methods 5; a GraphQL query 1 (the crawl sends no mutations). REST and GraphQL share one
    `Slots` (GitHub's 100 concurrent requests are "shared across the REST API and GraphQL API").
    """

    base_url: str
    pace: Pace | None
    accounts: Accounts
    graphql: bool = False
    slots: Slots | None = None

    def covers(self, url: str) -> bool:
        return url == self.base_url or url.startswith(self.base_url.rstrip("/") + "/") or (
            url.startswith(self.base_url + "?"))

    def points(self, method: str) -> int:
        return 1 if self.graphql or method.upper() in CHEAP_METHODS else 5


class PacedTransport(httpx.AsyncBaseTransport):
    """Waits for the pace of the request's account (longest matching base URL) and a slot in flight,
    then sends.

    The pace comes first: a request waiting for the pace holds no slot, so REST requests held back by
    their pace never keep GraphQL ones (another pace, the same slots) waiting. The pace stamp of a
    request that then waits for a slot stays "in flight" until its answer, so it is never counted short.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, routes: Sequence[Paced]) -> None:
        self.inner = inner
        self.routes = sorted(routes, key=lambda r: len(r.base_url), reverse=True)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        for route in self.routes:
            if route.covers(url):
                key = route.accounts.key(request.headers.get("authorization"))
                ticket = await route.pace.acquire(key, route.points(request.method)) if route.pace else None
                try:
                    if route.slots is None:
                        return await self.inner.handle_async_request(request)
                    slot = await route.slots.acquire(key)
                    try:
                        return await self.inner.handle_async_request(request)
                    finally:
                        route.slots.release(key, slot)
                finally:
                    if ticket is not None:
                        route.pace.done(key, ticket)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
        for route in self.routes:
            if route.pace is not None:
                route.pace.close()
            if route.slots is not None:
                route.slots.close()


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
    paced: Sequence[Paced] = (),
) -> dict[str, httpx.AsyncClient]:
    """One keep-alive `httpx.AsyncClient` per network location; a location with a paced API gets
    its transport wrapped in `PacedTransport`."""
    clients: dict[str, httpx.AsyncClient] = {}
    for url in base_urls:
        loc = netloc(url)
        if loc in clients:
            continue
        size = max(1, concurrency_by_netloc.get(loc, 16))
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        inner = transport or (AiohttpTransport(size) if tuning.aiohttp_transport else None)
        routes = [route for route in paced if netloc(route.base_url) == loc]
        if routes:
            inner = PacedTransport(inner or httpx.AsyncHTTPTransport(limits=limits, trust_env=False), routes)
        clients[loc] = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(tuning.timeout_s, connect=tuning.connect_timeout_s),
            limits=limits,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
            transport=inner,
        )
    return clients
