"""The aiohttp server: one port for every simulated upstream, plus ``/_sim/stats``.

``start_in_thread()`` runs it on its own event loop in a daemon thread (tests, ``pulse demo``);
``simulator.cli.simulate`` serves it in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from simulator import catalogue, github, graphql, pypi, pypistats
from simulator.core import JSON, Resp, SimState, fingerprint, json_resp
from simulator.faults import Faults, parse_faults, unit_hash
from simulator.hosts import FAULT_HOST_NAMES, PACKAGE_HOSTS, REPO_HOSTS
from simulator.world import World

log = logging.getLogger("simulator")

_GH_REPOS = re.compile(r"^/api/v3/repos/([^/]+)/([^/]+)(/.*)?$")
_GH_IDS = re.compile(r"^/api/v3/repositories/(\d+)(/.*)?$")
_PYPI_JSON = re.compile(r"^/pypi/([^/]+)/json/?$")
_SIMPLE = re.compile(r"^/simple/([^/]+)/?$")
_V4 = re.compile(r"^/api/v4/(packages|grids|categories)/(?:([^/]+)/)?$")

SECONDARY = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
             "If you reach out to GitHub Support for help, please include the request ID {rid}.")


def _token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def _etag_matches(header: str, etag: str) -> bool:
    bare = etag.removeprefix("W/")
    for part in header.split(","):
        part = part.strip()
        if part == "*" or part.removeprefix("W/") == bare:
            return True
    return False


def _not_modified_since(ims: str | None, last_modified: str | None) -> bool:
    if not ims or not last_modified:
        return False
    try:
        since = parsedate_to_datetime(ims)
        modified = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError):
        return False  # an unparsable date is ignored, as HTTP says
    if since.tzinfo is None or modified.tzinfo is None:
        return False
    return modified <= since


class Simulator:
    """The aiohttp application and its request pipeline."""

    def __init__(self, world: World, faults: Faults, latency_ms: float = 0.0, log_cap: int = 100_000) -> None:
        self.state = SimState(world, faults, latency_ms, log_cap)
        self.faults = faults
        self.world = world
        self._rid = 0

    # ------------------------------------------------------------------ app
    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def _request_id(self) -> str:
        self._rid += 1
        return f"{self._rid:04X}:{self._rid * 7919 % 65536:04X}:{self.world.seed:X}"

    # ------------------------------------------------------------------ dispatch
    def classify(self, request: web.Request, path: str, query: str, base: str
                 ) -> tuple[str, str, Callable[[], Awaitable[Resp] | Resp] | None]:
        """(route name, host, producer); the producer is None for an unknown route."""
        s = self.state
        method = request.method
        if path.startswith("/api/v3/"):
            if method not in ("GET", "HEAD"):
                return "github.other", "github", lambda: github.not_found("")
            authed = _token(request) is not None
            m = _GH_REPOS.match(path)
            if m:
                rest = m.group(3) or ""
                name = github.route_name(rest) or "github.other"
                ident = f"{unquote(m.group(1))}/{unquote(m.group(2))}"
                return name, "github", lambda: github.handle(s, base, "name", ident, rest, query, authed)
            m = _GH_IDS.match(path)
            if m:
                rest = m.group(2) or ""
                name = github.route_name(rest) or "github.other"
                return name, "github", lambda: github.handle(s, base, "id", m.group(1), rest, query, authed)
            if path == "/api/v3/rate_limit":
                return "github.rate_limit", "github", lambda: Resp(200)
            if path == "/api/v3/user":
                token = _token(request)
                return "github.user", "github", lambda: github.authenticated_user(f"{base}/api/v3", token)
            return "github.other", "github", lambda: github.not_found("")
        if path == "/api/graphql":
            return "github.graphql", "github", None
        for host in (*REPO_HOSTS, *PACKAGE_HOSTS):  # before the catalogue: an API may live under /api/v4/ too
            if path.startswith(host.prefix):
                name, producer = host.route(s, method, path, query, base)
                return name, host.name, producer
        if path.startswith("/api/v4/"):
            if method != "GET":
                return "catalogue.other", "catalogue", lambda: json_resp(
                    {"detail": f'Method "{method}" not allowed.'}, 405)
            if path == "/api/v4/":
                return "catalogue.root", "catalogue", lambda: catalogue.root(s, base)
            if path == "/api/v4/search/":
                return "catalogue.search", "catalogue", lambda: catalogue.search(s, base, query)
            m = _V4.match(path)
            if m:
                kind, ident = m.group(1), m.group(2)
                if ident is None:
                    return f"catalogue.{kind}", "catalogue", lambda: catalogue.listing(s, base, kind, query)
                if kind == "categories" and not ident.isdigit():
                    return "catalogue.categories_detail", "catalogue", lambda: catalogue.not_found(kind)
                return (f"catalogue.{kind}_detail", "catalogue",
                        lambda: catalogue.detail(s, base, kind, unquote(ident)))
            return "catalogue.other", "catalogue", lambda: json_resp({"detail": "Not found."}, 404)
        if path.startswith("/pypi/"):
            m = _PYPI_JSON.match(path)
            if m and method in ("GET", "HEAD"):
                slash = path.endswith("/")
                return "pypi.json", "pypi", lambda: pypi.pypi_json(s, base, unquote(m.group(1)), slash)
            return "pypi.other", "pypi", lambda: pypi.not_found()
        if path.startswith("/simple/"):
            m = _SIMPLE.match(path)
            if m and method in ("GET", "HEAD"):
                accept = request.headers.get("Accept", "")
                return "pypi.simple", "pypi", lambda: pypi.simple(s, base, unquote(m.group(1)), accept)
            return "pypi.other", "pypi", lambda: Resp(404, b"404 Not Found", {}, "text/plain")
        return "unknown", "sim", None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        raw = request.raw_path
        path, _, query = raw.partition("?")
        base = f"{request.scheme}://{request.host}"
        if path.startswith("/_sim/"):
            return self._sim_route(path)
        route, host, producer = self.classify(request, path, query, base)
        token = _token(request)
        who = fingerprint(token) if token else "anonymous"
        s = self.state
        seen = {"method": request.method, "path": raw, "who": who, "headers": request.headers, "at": arrived,
                "account": (github.login_for(token) if token else "anonymous") if host == "github" else None}
        if route == "unknown":
            resp = Resp(404, b"404: Not Found", {}, "text/plain")
            s.record(route=route, status=404, **seen)
            return self._build(request, resp)
        resource = ("graphql" if route == "github.graphql" else "core") if host == "github" else None
        broken = self._endpoint_fault(route, host)
        if broken is not None:
            s.record(route=route, status=broken.status, fault=broken.fault, resource=resource, **seen)
            return self._build(request, broken)
        faults: list[str] = []
        s.begin(route)
        try:
            try:
                if host == "github":
                    resp, quota = await self._github(request, route, producer, token, raw, faults)
                else:
                    quota = 0
                    resp = await self._common_faults(request, host, raw, faults)
                    if resp is None:
                        made = producer()
                        resp = await made if asyncio.iscoroutine(made) else made
                        self._conditional(request, resp)
            except _Abort:
                # the transport is already aborted: the client sees a reset / a dropped connection
                s.record(route=route, status=0, fault="+".join(faults), resource=resource, **seen)
                return web.Response(status=500)
            if resp.fault:
                faults.append(resp.fault)
            if resp.status == 200 and self.faults.applies_to(host) and not any(
                    f not in ("slow",) for f in faults):
                key = (request.method, raw, s.seen[raw])
                if self.faults.roll("malformed", *key):
                    faults.append("malformed")
                    resp.body = resp.body[: max(1, len(resp.body) // 3)] + b'",,}'
                    resp.etag = None
                elif self.faults.roll("truncated", *key):
                    faults.append("truncated")
            s.record(route=route, status=resp.status, quota=quota, fault="+".join(faults) or None,
                     resource=resource, **seen)
            if "truncated" in faults:
                return await self._truncate(request, resp)
            return self._build(request, resp)
        finally:
            s.end(route)

    # ------------------------------------------------------------------ pipeline pieces
    def _endpoint_fault(self, route: str, host: str) -> Resp | None:
        """A whole endpoint that does not work (``graphql=``, ``simple=absent``, ``htmlproxy=``)."""
        f = self.faults
        if f.htmlproxy and host == f.htmlproxy:
            resp = Resp(502, b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
                             b"Gateway</h1></center><hr><center>nginx</center></body></html>", {}, "text/html")
            resp.fault = "htmlproxy"
        elif f.graphql_status and route == "github.graphql":
            status = f.graphql_status
            resp = (Resp(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {}, "text/html")
                    if status == 502 else json_resp({"message": {401: "Bad credentials", 403: "Forbidden",
                                                                 404: "Not Found"}[status],
                                                     "documentation_url": "https://docs.github.com/graphql"},
                                                    status))
            resp.fault = f"graphql{status}"
        elif f.simple_absent and route == "pypi.simple":
            resp = Resp(404, b"404 Not Found", {}, "text/plain")
            resp.fault = "simple_absent"
        else:
            return None
        resp.quota = False
        return resp

    async def _common_faults(self, request: web.Request, host: str, raw: str, faults: list[str]
                             ) -> Resp | None:
        """Latency and per-request faults shared by every upstream (names of those met: ``faults``)."""
        s = self.state
        f = self.faults
        if s.latency_ms > 0:
            await asyncio.sleep(s.latency_ms / 1000)
        if not (f.rates or f.outage_every) or not f.applies_to(host):
            return None
        n = s.seen[raw]
        s.seen[raw] = n + 1
        key = (request.method, raw, n)
        if f.roll("slow", *key):
            faults.append("slow")
            await asyncio.sleep(f.slow_ms / 1000)
        if f.roll("timeout", *key):
            faults.append("timeout")
            await asyncio.sleep(f.timeout_ms / 1000)
            raise _Abort("timeout", request)
        if f.roll("reset", *key):
            faults.append("reset")
            raise _Abort("reset", request)
        status = 0
        if f.outage_every:
            h = s.host_seen[host]
            s.host_seen[host] = h + 1
            if f.outage_at(host, h):
                faults.append("5xxburst")
                status = (502, 503)[int(unit_hash(f.seed, "5xxburst", host, h) * 2)]
        if not status:
            for code in ("5xx", "500", "502", "503"):
                if f.roll(code, *key):
                    faults.append(code)
                    status = int(code) if code != "5xx" else (500, 502, 503)[int(unit_hash(*key) * 3)]
                    break
        if not status and f.roll("429", *key):  # an IP rate limit, with how long to wait
            faults.append("429")
            resp = (pypistats.rate_limited(f.retry_after) if host == pypistats.NAME else
                    Resp(429, b"429 Too Many Requests", {"Retry-After": str(f.retry_after)}, "text/plain"))
            resp.quota = False
            return resp
        if not status:
            return None
        if host == "github":
            body = (json_resp({"message": "Server Error"}, status) if status == 500 else
                    Resp(status, b"<html><body><h1>%d Server Error</h1></body></html>" % status,
                         {}, "text/html"))
        else:
            body = Resp(status, b"%d Service Unavailable" % status, {}, "text/plain")
        body.quota = False
        return body

    async def _github(self, request: web.Request, route: str, producer, token: str | None, raw: str,
                      faults: list[str]) -> tuple[Resp, int]:
        """GitHub's pipeline: credentials, secondary and primary limits, faults, the answer, charging."""
        s = self.state
        f = self.faults
        # limits are counted per account (tokens of one account share them) or per IP without a token
        client = f"tok:{fingerprint(github.account_of(token))}" if token else f"anon:{request.remote}"
        rid = self._request_id()
        if token and ("invalid" in token or token.startswith("bad")):
            resp = json_resp({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                              "status": "401"}, 401)
            resp.headers["X-GitHub-Request-Id"] = rid
            return resp, 0
        is_graphql = route == "github.graphql"
        resource = "graphql" if is_graphql else "core"
        limit = f.graphql_quota if is_graphql else f.quota if token else f.anon_quota
        s.inflight[client] += 1
        try:
            if s.inflight[client] > f.concurrency:
                faults.append("secondary")  # a limit, not a fault: logged so a test can count refusals
                resp = json_resp({"message": SECONDARY.format(rid=rid),
                                  "documentation_url": "https://docs.github.com/rest/overview/"
                                  "rate-limits-for-the-rest-api#about-secondary-rate-limits",
                                  "status": "403"}, 403, {"Retry-After": "60"})
                self._gh_headers(resp, s.window(client, resource, limit), resource, token, rid)
                return resp, 0
            burst = f.graphql_burst if is_graphql else f.burst
            if burst:  # GitHub's points a minute per account: every request counts, /rate_limit too
                now = time.monotonic()
                dq = s.bursts.setdefault(f"{client} {resource}", deque())
                while dq and now - dq[0] > f.burst_window:
                    dq.popleft()
                if len(dq) >= burst:
                    faults.append("secondary")
                    resp = json_resp({"message": SECONDARY.format(rid=rid),
                                      "documentation_url": "https://docs.github.com/rest/overview/"
                                      "rate-limits-for-the-rest-api#about-secondary-rate-limits",
                                      "status": "403"}, 403)
                    self._gh_headers(resp, s.window(client, resource, limit), resource, token, rid)
                    return resp, 0
                dq.append(now)
            fault_resp = await self._common_faults(request, "github", raw, faults)
            window = s.window(client, resource, limit)
            if fault_resp is not None:
                self._gh_headers(fault_resp, window, resource, token, rid)
                return fault_resp, 0
            if is_graphql:
                resp, cost = await graphql.handle(s, request, token, window, f"{request.scheme}://{request.host}")
                self._gh_headers(resp, window, resource, token, rid)
                return resp, cost
            if route == "github.rate_limit":
                resp = self._rate_limit_resp(client, token)
                self._gh_headers(resp, window, resource, token, rid)
                return resp, 0
            if window.remaining <= 0:
                who = "user ID 1" if token else str(request.remote)
                msg = f"API rate limit exceeded for {who}."
                if not token:
                    msg += (" (But here's the good news: Authenticated requests get a higher rate limit. "
                            "Check out the documentation for more details.)")
                status = f.ratelimit_status
                resp = json_resp({"message": msg + f" If you reach out to GitHub Support for help, please "
                                  f"include the request ID {rid}.",
                                  "documentation_url": "https://docs.github.com/rest/overview/"
                                  "rate-limits-for-the-rest-api", "status": str(status)}, status)
                self._gh_headers(resp, window, resource, token, rid)
                return resp, 0
            made = producer()
            resp = await made if asyncio.iscoroutine(made) else made
            self._conditional(request, resp)
            charged = 0
            if resp.quota and not (resp.status == 304 and token):
                window.used += 1
                charged = 1
            self._gh_headers(resp, window, resource, token, rid)
            return resp, charged
        finally:
            s.inflight[client] -= 1

    def _rate_limit_resp(self, client: str, token: str | None) -> Resp:
        s = self.state
        f = self.faults
        core = s.window(client, "core", f.quota if token else f.anon_quota)
        gql = s.window(client, "graphql", f.graphql_quota)
        res = {
            "core": {"limit": core.limit, "used": core.used, "remaining": core.remaining, "reset": core.reset},
            "search": {"limit": 30 if token else 10, "used": 0, "remaining": 30 if token else 10,
                       "reset": int(time.time()) + 60},
            "graphql": {"limit": gql.limit if token else 0, "used": gql.used if token else 0,
                        "remaining": gql.remaining if token else 0, "reset": gql.reset},
        }
        resp = json_resp(github.rate_limit_body(res))
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @staticmethod
    def _gh_headers(resp: Resp, window, resource: str, token: str | None, rid: str) -> None:
        h = resp.headers
        h["X-RateLimit-Limit"] = str(window.limit)
        h["X-RateLimit-Remaining"] = str(window.remaining)
        h["X-RateLimit-Reset"] = str(window.reset)
        h["X-RateLimit-Used"] = str(window.used)
        h["X-RateLimit-Resource"] = resource
        h["X-GitHub-Request-Id"] = rid
        h["X-GitHub-Media-Type"] = "github.v3; format=json"
        h["x-github-api-version-selected"] = "2022-11-28"
        h.setdefault("Cache-Control", "private, max-age=60, s-maxage=60" if token else
                     "public, max-age=60, s-maxage=60")
        h["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding, Accept, X-Requested-With"
        h["Server"] = "github.com"

    @staticmethod
    def _conditional(request: web.Request, resp: Resp) -> None:
        """Add an ETag to a 200 and turn it into a 304 when the request's validators match.

        If-None-Match wins when present (RFC 9110 13.2.2); otherwise If-Modified-Since is compared
        with the answer's Last-Modified (only answers that carry one: GitHub repository, contributors
        and commits), 304 when not modified since.
        """
        if resp.status != 200 or not resp.etag:
            return
        digest = hashlib.sha256(resp.body).hexdigest()
        tag = f'W/"{digest}"' if resp.etag == "weak" else f'"{digest[:32]}"'
        resp.headers["ETag"] = tag
        inm = request.headers.get("If-None-Match")
        if inm:
            not_modified = _etag_matches(inm, tag)
        else:
            not_modified = _not_modified_since(request.headers.get("If-Modified-Since"),
                                               resp.headers.get("Last-Modified"))
        if not_modified:
            resp.status = 304
            resp.body = b""

    def _build(self, request: web.Request, resp: Resp) -> web.Response:
        headers = resp.headers
        body = b"" if request.method == "HEAD" or resp.status in (204, 304) else resp.body
        r = web.Response(status=resp.status, body=body, headers=headers)
        if resp.content_type and resp.status not in (204, 304):
            r.headers["Content-Type"] = resp.content_type
        return r

    async def _truncate(self, request: web.Request, resp: Resp) -> web.StreamResponse:
        sr = web.StreamResponse(status=resp.status, headers=resp.headers)
        if resp.content_type:
            sr.headers["Content-Type"] = resp.content_type
        sr.content_length = len(resp.body)
        await sr.prepare(request)
        await sr.write(resp.body[: max(1, len(resp.body) // 2)])
        if request.transport is not None:
            request.transport.abort()
        return sr

    def _sim_route(self, path: str) -> web.Response:
        if path == "/_sim/stats":
            return web.Response(body=orjson.dumps(self.state.snapshot()), content_type="application/json")
        if path == "/_sim/requests":
            entries = self.state.requests()
            with self.state.lock:
                dropped = self.state.dropped
            return web.Response(body=orjson.dumps(entries), content_type="application/json",
                                headers={"X-Sim-Dropped": str(dropped), "X-Sim-Kept": str(len(entries))})
        if path == "/_sim/reset":
            self.state.reset_stats()
            return web.Response(body=b"{}", content_type="application/json")
        return web.Response(status=404, body=b'{"detail": "unknown simulator route"}',
                            content_type="application/json")


class _Abort(Exception):
    def __init__(self, fault: str, request: web.Request) -> None:
        super().__init__(fault)
        self.fault = fault
        if request.transport is not None:
            request.transport.abort()


# ---------------------------------------------------------------------- running it
def env_for(url: str) -> dict[str, str]:
    """The environment that points ``pulse refresh`` at a simulator serving at ``url``."""
    env = {"PULSE_CATALOGUE": url, "GITHUB_API_URL": f"{url}/api/v3", "GITHUB_GRAPHQL_URL": f"{url}/api/graphql",
           "PYPI_URL": url}
    for host in (*REPO_HOSTS, *PACKAGE_HOSTS):
        env.update((name, f"{url}{path}") for name, path in host.env)
    return env


class SimServer:
    """A simulator running in a daemon thread. Use as a context manager or call ``stop()``."""

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self._requested_port = port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def world(self) -> World:
        return self.sim.world

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return env_for(self.url)

    def stats(self) -> dict:
        return self.sim.state.snapshot()

    def requests(self) -> list[dict]:
        """The requests seen since the last reset, oldest first (``simulator.core.LOG_FIELDS``):
        method, path (+query), route, status, client, fault, token (fingerprint or None),
        if_none_match, if_modified_since, accept, user_agent, resource, charged, cost (GraphQL)."""
        return self.sim.state.requests()

    def reset_stats(self) -> None:
        self.sim.state.reset_stats()

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self._run, name=f"pulse-simulator-{id(self):x}", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=120)
        if self._error is not None:
            raise RuntimeError(f"simulator failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("simulator did not start within 120 s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._cleanup())
            loop.close()

    async def _start(self) -> None:
        self.sim.world.warm()
        self._runner = web.AppRunner(self.sim.app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, backlog=1024,
                           reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def _cleanup(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), timeout=5)

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_simulator(packages: int = 250, seed: int = 1, latency_ms: float = 0,
                   faults: str | dict | Faults | None = None, now: datetime | None = None,
                   log_cap: int = 100_000) -> Simulator:
    return Simulator(World(seed=seed, packages=packages, now=now, hosts=REPO_HOSTS),
                     parse_faults(faults, FAULT_HOST_NAMES), latency_ms, log_cap)


def start_in_thread(packages: int = 250, seed: int = 1, latency_ms: float = 0,
                    faults: str | dict | None = None, port: int = 0, *, host: str = "127.0.0.1",
                    now: datetime | None = None, log_cap: int = 100_000) -> SimServer:
    """Start a simulator on ``host:port`` (0: a free port) in a daemon thread and return it.

    ``log_cap``: how many requests the request log keeps (older ones are counted as dropped).
    """
    sim = make_simulator(packages=packages, seed=seed, latency_ms=latency_ms, faults=faults, now=now,
                         log_cap=log_cap)
    return SimServer(sim, host=host, port=port).start()


def serve_forever(packages: int = 250, seed: int = 1, latency_ms: float = 0, faults: Any = None,
                  port: int = 8765, host: str = "127.0.0.1", on_ready: Callable[[str], None] | None = None,
                  now: datetime | None = None) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, then close the socket (used by ``pulse simulate``)."""
    sim = make_simulator(packages=packages, seed=seed, latency_ms=latency_ms, faults=faults, now=now)

    async def main() -> None:
        sim.world.warm()
        runner = web.AppRunner(sim.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        bound = sockets[0].getsockname()[1]
        if on_ready:
            on_ready(f"http://{host}:{bound}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    # SIGTERM (a container's stop) and SIGINT (Ctrl-C) end the wait: the socket is closed, exit 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


__all__ = ["JSON", "SimServer", "Simulator", "env_for", "make_simulator", "serve_forever", "start_in_thread"]
