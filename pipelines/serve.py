"""`pulse serve`: the aiohttp entry point over the published snapshot's API (v4 and v3, read-only).

What the documents contain is `assets.exports.published_api` (`PublishedApi.respond`); this module
only does HTTP: it asks for the answer and puts the client's base URL (or PULSE_PUBLIC_URL when the
operator set it) where the documents say `LINK_BASE`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
from aiohttp import web

from assets.exports.api_v4 import LINK_BASE
from assets.exports.published_api import PublishedApi

_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_LINK_BASE = LINK_BASE.encode()


def _json(document: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def _base(request: web.Request) -> str | None:
    """The base the client asked for: X-Forwarded-Proto/-Host behind a proxy, else the request's own
    scheme and Host; None when the host is not a valid host[:port] (it would end up in links)."""
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip().lower()
    if scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return None
    return f"{scheme}://{host}"


def make_app(api: PublishedApi, public_url: str | None = None) -> web.Application:
    """`public_url`: the base of every link when the operator set one, else the client's."""

    async def answer(request: web.Request) -> web.Response:
        if not request.path.endswith("/"):  # Django's APPEND_SLASH
            location = request.path + "/" + (f"?{request.query_string}" if request.query_string else "")
            raise web.HTTPMovedPermanently(location)
        base = public_url.rstrip("/") if public_url else _base(request)
        if base is None:
            return _json({"detail": "Bad Request: invalid Host header."}, status=400)
        api.reload_if_changed()  # a stat; loads in line when a refresh published a new snapshot
        response = api.respond(request.path, dict(request.query))
        body = orjson.dumps(response.document).replace(_LINK_BASE, base.encode())
        return web.Response(body=body, status=response.status, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/{tail:.*}", answer)
    return app


SHUTDOWN_TIMEOUT_S = 2.0  # requests in progress get this long after SIGTERM/SIGINT; keep-alive ones are closed


def run_server(published: Path, *, public_url: str, timezone: str, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (blocking), then stop listening, close connections and return.

    `run_app` turns both signals into a graceful exit (handle_signals); its default shutdown timeout
    (60 s) would outlast a container's grace period, so requests in progress get 2 s. Links follow the
    client's host unless PULSE_PUBLIC_URL is set.
    """
    api = PublishedApi(published, timezone)
    explicit = public_url if os.environ.get("PULSE_PUBLIC_URL", "").strip() else None
    web.run_app(make_app(api, explicit), host=host, port=port, print=None, handle_signals=True,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S)
