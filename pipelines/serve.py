"""`pulse serve`: the published snapshot over HTTP, answering like djangopackages.org (Django + DRF).

The documents come from `PublishedApi.respond(path, query, snapshot)` (PLAN10-11.md contract); this
module is the HTTP layer around it, on aiohttp's low-level server (no router: one handler sees every
request, so Django's order of decisions can be kept exactly):

0. A CORS preflight (OPTIONS + Origin + Access-Control-Request-Method): django-cors-headers' empty 200.
1. Host validation (Django's `get_host`, every request): a bad `Host`/`X-Forwarded-Host` is 400.
2. Path: not UTF-8, traversal, empty segments: 404 like an unresolvable URL; the query string parsed
   like `QueryDict` (last value wins, undecodable bytes replaced).
3. APPEND_SLASH (CommonMiddleware): a path without its slash that resolves with it is a 301 to
   path + "/" with the query string kept, whatever the method; else 404.
4. Methods (DRF `APIView`): GET and HEAD answer the document, OPTIONS the view's metadata, anything
   else 405 with `Allow`.
5. GET/HEAD: the response cache (snapshot token, path, query, base) -> body with `LINK_BASE` replaced
   by the request's base (or the operator's `--public-url`), strong ETag per representation, gzip,
   `Last-Modified` = the snapshot's publish time, 304 on `If-None-Match`/`If-Modified-Since`.

A background task polls the published file every second and reloads it in a thread; a request uses
the snapshot it started with (the handler never awaits between choosing it and rendering). With
`--workers N` the same server runs in N processes on one port (SO_REUSEPORT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import LineTooLong

from assets.exports.api_v4 import LINK_BASE
from assets.exports.published_api import PublishedApi, Snapshot
from pipelines.serving.cache import Entry, ResponseCache
from pipelines.serving.requests import (
    BadRequest,
    decode_path,
    etag_matches,
    http_date,
    json_safe,
    not_modified_since,
    options_metadata,
    parse_query,
    request_base,
    slash_location,
    split_target,
)

log = logging.getLogger("pulse.serve")

SHUTDOWN_TIMEOUT_S = 2.0  # requests in progress get this long after SIGTERM/SIGINT; keep-alive ones are closed
RELOAD_INTERVAL_S = 1.0
# gunicorn's defaults (limit_request_line, limit_request_field_size); over them: 414 / 431 (see JsonErrors)
MAX_REQUEST_LINE = 4094
MAX_HEADER_FIELD = 8190
ALLOWED = "GET, HEAD, OPTIONS"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
NOT_FOUND = {"detail": "Not found."}
# Browsers revalidate after a minute; a CDN keeps a document 10 minutes, then revalidates with the
# ETag (a 304 costs a dict lookup), so a new snapshot reaches everyone at most ~10 min after it is
# published while the origin sees one request per document per CDN node per 10 min.
CACHE_CONTROL = "public, max-age=60, s-maxage=600"
PREFLIGHT_MAX_AGE = "86400"
HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")


def accepts_gzip(header: str) -> bool:
    """Accept-Encoding allows gzip: listed (or `*`) with a non-zero q, and not refused by name."""
    gzip_q: float | None = None
    star_q: float | None = None
    for item in header.lower().split(","):
        coding, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if coding.strip() in ("gzip", "x-gzip"):
            gzip_q = q
        elif coding.strip() == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return bool(star_q and star_q > 0)


class Service:
    """One process's answers: the contract API, the response cache, and how links are based."""

    def __init__(self, api: PublishedApi, *, public_url: str | None = None, cache: ResponseCache | None = None) -> None:
        self.api = api
        self.public_base = json_safe(public_url.rstrip("/")) if public_url else None
        self.link_base = LINK_BASE.encode()
        self.cache = cache if cache is not None else ResponseCache()
        vary = "Accept-Encoding" if public_url else "Accept-Encoding, Host, X-Forwarded-Host, X-Forwarded-Proto"
        self.common = {
            hdrs.CONTENT_TYPE: "application/json",
            hdrs.ALLOW: ALLOWED,
            hdrs.VARY: vary,
            hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*",
            hdrs.ACCESS_CONTROL_EXPOSE_HEADERS: "ETag",
            "X-Content-Type-Options": "nosniff",
            hdrs.SERVER: "pulse",
        }
        self._last_modified: tuple[str, str] = ("", "")

    # --- the request, in Django's order ---------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return self.answer(request)
        except Exception:  # never a traceback to the client: DRF's generic 500 body
            log.exception("error answering %s %s", request.method, request.raw_path[:200])
            return self.error(500, "A server error occurred.")

    def answer(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = request.headers
        if request.method == hdrs.METH_OPTIONS and hdrs.ORIGIN in headers \
                and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers:
            return self.preflight(request)  # CorsMiddleware sits above CommonMiddleware
        snapshot = self.api.snapshot()  # this request's snapshot, whatever a reload does meanwhile
        try:
            base = request_base(headers.get(hdrs.HOST), request.scheme, headers.get(hdrs.X_FORWARDED_HOST),
                                headers.get(hdrs.X_FORWARDED_PROTO), lambda: _local_host(request))
            raw_path, raw_query = split_target(request.raw_path)
            query = parse_query(raw_query)
        except BadRequest as exc:
            return self.error(400, str(exc))
        path = decode_path(raw_path)
        if path is None or not path.startswith("/api/"):
            return self.error(404, NOT_FOUND["detail"])
        if not path.endswith("/"):
            if self.resolves(path + "/", snapshot):
                return self.redirect(slash_location(path, raw_query))
            return self.error(404, NOT_FOUND["detail"])
        method = request.method
        if method not in SAFE_METHODS:
            if self.resolves(path, snapshot):
                return self.error(405, f'Method "{method[:32]}" not allowed.')
            return self.error(404, NOT_FOUND["detail"])
        if method == hdrs.METH_OPTIONS:
            return self.options(path, snapshot)
        return self.document(request, path, query, base.encode(), snapshot)

    def resolves(self, path: str, snapshot: Snapshot) -> bool:
        """Django's `is_valid_path`: a route answers this path (an unknown object is still a route)."""
        if not path.startswith("/api/"):
            return False
        answer = self.api.respond(path, {}, snapshot)
        return not (answer.status == 404 and answer.document == NOT_FOUND)

    # --- answers ----------------------------------------------------------------------------------

    def document(self, request: web.BaseRequest, path: str, query: dict[str, str], base: bytes,
                 snapshot: Snapshot) -> web.Response:
        link_base = self.public_base or base
        key = (snapshot.token, path, tuple(sorted(query.items())), link_base)
        entry = self.cache.get(key)
        if entry is None:
            answer = self.api.respond(path, query, snapshot)
            body = orjson.dumps(answer.document).replace(self.link_base, link_base)
            entry = self.cache.put(key, Entry.of(answer.status, body))
        headers = dict(self.common)
        body, etag = entry.body, entry.etag
        if entry.gzippable and accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
            body, etag = self.cache.gzipped(key, entry)
            headers[hdrs.CONTENT_ENCODING] = "gzip"
        headers[hdrs.ETAG] = etag
        headers[hdrs.LAST_MODIFIED] = self.last_modified(snapshot)
        headers[hdrs.CACHE_CONTROL] = CACHE_CONTROL
        if entry.status == 200 and self.not_modified(request, etag, snapshot):
            del headers[hdrs.CONTENT_TYPE]
            headers.pop(hdrs.CONTENT_ENCODING, None)
            return web.Response(status=304, headers=headers)
        return web.Response(status=entry.status, body=body, headers=headers)

    def not_modified(self, request: web.BaseRequest, etag: str, snapshot: Snapshot) -> bool:
        """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
        if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
        if if_none_match is not None:
            return etag_matches(if_none_match, etag)
        since = request.headers.get(hdrs.IF_MODIFIED_SINCE)
        return since is not None and not_modified_since(since, snapshot.published_at)

    def last_modified(self, snapshot: Snapshot) -> str:
        token, text = self._last_modified
        if token != snapshot.token:
            text = http_date(snapshot.published_at)
            self._last_modified = (snapshot.token, text)
        return text

    def preflight(self, request: web.BaseRequest) -> web.Response:
        """django-cors-headers answers a preflight itself, before any URL handling: empty and 200."""
        headers = {**self.common, hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED,
                   hdrs.ACCESS_CONTROL_MAX_AGE: PREFLIGHT_MAX_AGE}
        wanted = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "").strip()
        if wanted and len(wanted) < 1024 and HEADER_LIST.match(wanted):
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = wanted
        del headers[hdrs.CONTENT_TYPE]
        return web.Response(status=200, headers=headers)

    def options(self, path: str, snapshot: Snapshot) -> web.Response:
        """DRF's OPTIONS: the view's metadata, where a view answers the path."""
        if not self.resolves(path, snapshot):
            return self.error(404, NOT_FOUND["detail"])
        return web.Response(status=200, body=orjson.dumps(options_metadata(path)), headers=self.common)

    def redirect(self, location: str) -> web.Response:
        headers = {**self.common, hdrs.LOCATION: location, hdrs.CACHE_CONTROL: CACHE_CONTROL}
        del headers[hdrs.CONTENT_TYPE]
        return web.Response(status=301, headers=headers)

    def error(self, status: int, detail: str) -> web.Response:
        """A JSON error body like DRF's, never cached (it may depend on the Host asked)."""
        headers = {**self.common, hdrs.CACHE_CONTROL: "no-store"}
        if status != 405:
            del headers[hdrs.ALLOW]
        return web.Response(status=status, body=orjson.dumps({"detail": detail}), headers=headers)


def _local_host(request: web.BaseRequest) -> str:
    """SERVER_NAME:SERVER_PORT for a request without Host (HTTP/1.0): the address it came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host = f"[{sockname[0]}]" if ":" in str(sockname[0]) else str(sockname[0])
        return f"{host}:{sockname[1]}"
    return "localhost"


# --- malformed requests: JSON bodies with gunicorn's statuses instead of aiohttp's text/plain ----------


class JsonErrors(web.RequestHandler):
    """aiohttp's connection handler with JSON error answers for what its parser refuses.

    A request line over MAX_REQUEST_LINE is 414 URI Too Long (RFC 9110 15.5.15; gunicorn says 400,
    nginx 414: the more precise one), a header over MAX_HEADER_FIELD 431 like gunicorn, anything else
    malformed (bad method token, raw non-ASCII in the request line, broken framing) 400.
    """

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        detail = "Bad Request."
        if isinstance(exc, LineTooLong):
            limit = exc.args[1] if len(exc.args) > 1 else None
            status, detail = ((414, "Request-URI Too Long.") if limit == MAX_REQUEST_LINE
                              else (431, "Request Header Fields Too Large."))
        elif status >= 500:
            log.error("error handling a request", exc_info=exc)
            detail = "A server error occurred."
        else:
            log.debug("malformed request: %s", exc)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        response = web.Response(status=status, body=orjson.dumps({"detail": detail}), headers={
            hdrs.CONTENT_TYPE: "application/json", hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*",
            hdrs.CACHE_CONTROL: "no-store", hdrs.SERVER: "pulse"})
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """`web.Server` whose connections use `JsonErrors`."""

    def __init__(self, handler: Callable, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._handler_kwargs = kwargs

    def __call__(self) -> web.RequestHandler:
        return JsonErrors(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)


def make_server(service: Service) -> JsonErrorServer:
    return JsonErrorServer(service.handle, access_log=None, max_line_size=MAX_REQUEST_LINE,
                           max_field_size=MAX_HEADER_FIELD)


async def watch(api: PublishedApi, cache: ResponseCache, interval: float = RELOAD_INTERVAL_S) -> None:
    """Poll the published file; load a new snapshot in a thread (the loop keeps answering on the old
    one), which `reload_if_changed` swaps in as one reference. A broken file keeps the old snapshot."""
    loop = asyncio.get_running_loop()
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            changed = await loop.run_in_executor(None, api.reload_if_changed)
        except Exception as exc:
            if not failing:
                log.warning("the published snapshot could not be reloaded (still serving the previous one): %s",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            failing = True
            continue
        failing = False
        if changed:
            cache.clear()  # keys carry the token: this only frees the old snapshot's entries at once
            log.info("serving the snapshot published at %s", api.snapshot().published_at.isoformat())


def make_app(api: PublishedApi, public_url: str | None = None) -> web.Application:
    """The same handler as an aiohttp Application (for aiohttp's test client); `pulse serve` uses the
    low-level server instead, for JSON answers to malformed requests."""
    service = Service(api, public_url=public_url)

    async def watching(app: web.Application):
        task = asyncio.create_task(watch(api, service.cache))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    app.cleanup_ctx.append(watching)
    return app


# --- running: one process, or N on one port ------------------------------------------------------------


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional: faster on Linux/macOS, the stdlib loop otherwise
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _serve(published: Path, public_url: str | None, timezone: str, host: str, port: int,
                 reuse_port: bool) -> None:
    api = PublishedApi(published, timezone)
    api.snapshot()  # loaded before listening: the first request never waits for it
    service = Service(api, public_url=public_url)
    runner = web.ServerRunner(make_server(service), shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=1024)
    await site.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(watch(api, service.cache))
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        await runner.cleanup()


def _worker(published: Path, public_url: str | None, timezone: str, host: str, port: int, reuse_port: bool) -> None:
    loop = _new_loop()
    try:
        loop.run_until_complete(_serve(published, public_url, timezone, host, port, reuse_port))
    finally:
        loop.close()


def _worker_process(*args: Any) -> None:
    """A `--workers` process: once its server has stopped, exit without freeing the snapshot object by
    object (seconds for millions of small objects, which would eat the shutdown grace period)."""
    _worker(*args)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def worker_main(argv: list[str]) -> None:
    """Entry of one `--workers` process: `published public_url-or-empty timezone host port`."""
    published, public_url, timezone, host, port = argv
    _worker_process(Path(published), public_url or None, timezone, host, int(port), True)


# a plain interpreter that imports only this module (multiprocessing's spawn would re-run the CLI's imports)
WORKER_CODE = "import sys; from pipelines.serve import worker_main; worker_main(sys.argv[1:])"


class PortUnavailable(Exception):
    """The port is taken (or the host is not ours): `pulse serve` says so and exits."""


def claim_port(host: str, port: int) -> socket.socket:
    """Bind `port` (0: any free one) exclusively first, then hold it with SO_REUSEPORT for the workers.

    SO_REUSEPORT alone would let a second `pulse serve` on the same port (same user) start silently and
    take half the connections; the exclusive bind makes it fail with "address in use" instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT is fine
            probe.bind((host, port))
            port = probe.getsockname()[1]
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return holder


def run_server(published: Path, *, public_url: str | None, timezone: str, host: str, port: int,
               workers: int = 1, announce: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT (blocking), then stop listening, close connections and return.

    `public_url`: the operator's explicit base for links (None: each request's own). `workers` > 1
    starts that many processes, each with its own listening socket on the port (SO_REUSEPORT: the
    kernel spreads connections over them) and its own copy of the snapshot. `port` 0 picks a free
    port; `announce` is told the port before the first worker starts.
    """
    # the parent holds the port (bound, not listening) so that port 0 resolves once for every worker
    holder = claim_port(host, port)
    port = holder.getsockname()[1]
    if announce is not None:
        announce(port)
    if workers <= 1:
        try:
            _worker(published, public_url, timezone, host, port, reuse_port=True)
        finally:
            holder.close()
        return
    command = [sys.executable, "-c", WORKER_CODE, str(published), public_url or "", timezone, host, str(port)]
    processes: list[subprocess.Popen] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        processes.extend(subprocess.Popen(command) for _ in range(workers))  # noqa: S603 - our own interpreter
        # a worker that dies on its own ends the server (the platform restarts it whole)
        while not stopping and all(process.poll() is None for process in processes):
            time.sleep(0.2)
        if not stopping:
            log.error("a serve worker exited; stopping the others")
            stop(signal.SIGTERM, None)
        for process in processes:
            try:
                process.wait(SHUTDOWN_TIMEOUT_S + 2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        holder.close()
