"""`pulse serve`: the aiohttp entry point over the published snapshot's API v4 (read-only).

What the documents contain is `assets.exports.published_api`; this module only maps routes to it.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web

from assets.exports.api_v4 import ApiContext
from assets.exports.published_api import MODEL_NAMES, PublishedApi


def _json(document: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def _int_param(request: web.Request, name: str, default: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        return default
    return max(value, 0)


def make_app(api: PublishedApi) -> web.Application:
    async def api_root(request: web.Request) -> web.Response:
        return _json(api.root())

    async def listing(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        limit = _int_param(request, "limit", 20) or 20
        offset = _int_param(request, "offset", 0)
        return _json(api.page(kind, limit=limit, offset=offset))

    async def detail(request: web.Request) -> web.Response:
        kind, key = request.match_info["kind"], request.match_info["key"]
        record = api.detail(kind, key)
        if record is None:
            return _json({"detail": f"No {MODEL_NAMES[kind]} matches the given query."}, status=404)
        return _json(record)

    async def document(request: web.Request) -> web.Response:
        kind, key, name = request.match_info["kind"], request.match_info["key"], request.match_info["name"]
        found = api.document(kind, name, key)
        if found is None:
            return _json({"detail": f"No {MODEL_NAMES[kind]} matches the given query."}, status=404)
        return _json(found)

    async def search(request: web.Request) -> web.Response:
        return _json(api.search(request.query.get("q", "")))

    app = web.Application()
    kinds = "{kind:packages|grids|categories}"
    app.router.add_get("/api/v4/", api_root)
    app.router.add_get("/api/v4/search/", search)
    app.router.add_get(f"/api/v4/{kinds}/", listing)
    app.router.add_get(f"/api/v4/{kinds}/{{key}}/", detail)
    app.router.add_get("/api/v4/{kind:packages}/{key}/{name:score|health}/", document)
    app.router.add_get("/api/v4/{kind:grids}/{key}/{name:health}/", document)
    return app


SHUTDOWN_TIMEOUT_S = 2.0  # requests in progress get this long after SIGTERM/SIGINT; keep-alive ones are closed


def run_server(published: Path, *, public_url: str, timezone: str, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (blocking), then stop listening, close connections and return.

    `run_app` turns both signals into a graceful exit (handle_signals); its default shutdown timeout
    (60 s) would outlast a container's grace period, so requests in progress get 2 s.
    """
    api = PublishedApi(published, ApiContext.create(public_url, timezone))
    web.run_app(make_app(api), host=host, port=port, print=None, handle_signals=True,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S)
