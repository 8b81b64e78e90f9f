"""`pulse serve`: the published snapshot as a live API v4 (read-only), like djangopackages.org.

It renders with the same functions as the static export and reloads when a refresh publishes a
new snapshot (the file's mtime changes), so readers never touch the writer's warehouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import web

from assets.exports.api_v4 import ApiContext, find, load_api_tables, page, render_all, root
from warehouse.db import connect_reader

SEARCH_LIMIT = 20
_PREFIX = re.compile(r"^django[-_ ]", re.IGNORECASE)
MODEL_NAMES = {"packages": "Package", "grids": "Grid", "categories": "Category"}


@dataclass
class Snapshot:
    mtime: float
    records: dict[str, list[dict]]
    search_rows: list[dict]


def _search_rows(records: dict[str, list[dict]], categories: dict[str, str], released: dict[int, str]) -> list[dict]:
    rows = []
    for package in records["packages"]:
        title = package["title"]
        no_prefix = _PREFIX.sub("", title)
        rows.append({
            "description": package["repo_description"],
            "title": title,
            "title_no_prefix": no_prefix,
            "slug_no_prefix": _PREFIX.sub("", package["slug"]),
            "clean_title": re.sub(r"[-_ ]", "", no_prefix.lower()),
            "absolute_url": f"/packages/p/{package['slug']}/",
            "created": package["created"],
            "modified": package["modified"],
            "weight": package["repo_watchers"],
            "item_type": "package",
            "slug": package["slug"],
            "category": categories.get(package["category"] or "", ""),
            "repo_watchers": package["repo_watchers"],
            "repo_forks": package["repo_forks"],
            "pypi_downloads": 0,
            "score": package["repo_watchers"],
            "usage": 0,
            "participants": ",".join(package["participants"]),
            "last_committed": package["last_updated"],
            "last_released": released.get(package["id"]),
        })
    for grid in records["grids"]:
        no_prefix = _PREFIX.sub("", grid["title"])
        rows.append({
            "description": grid["description"], "title": grid["title"], "title_no_prefix": no_prefix,
            "slug_no_prefix": _PREFIX.sub("", grid["slug"]), "clean_title": re.sub(r"[-_ ]", "", no_prefix.lower()),
            "absolute_url": f"/grids/g/{grid['slug']}/", "created": grid["created"], "modified": grid["modified"],
            "weight": len(grid["packages"]), "item_type": "grid", "slug": grid["slug"], "category": "",
            "repo_watchers": 0, "repo_forks": 0, "pypi_downloads": 0, "score": 0, "usage": 0,
            "participants": "", "last_committed": None, "last_released": None,
        })
    return rows


class PublishedApi:
    def __init__(self, published: Path, ctx: ApiContext) -> None:
        self.published = published
        self.ctx = ctx
        self._snapshot: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        mtime = self.published.stat().st_mtime
        if self._snapshot is None or self._snapshot.mtime != mtime:
            con = connect_reader(self.published)
            try:
                records = render_all(load_api_tables(con), self.ctx)
                released = dict(con.execute(
                    "SELECT package_id, max(upload_time) FROM core.releases GROUP BY package_id").fetchall())
            finally:
                con.close()
            from assets.exports.api_v4 import drf_datetime

            released_text = {k: drf_datetime(v, self.ctx.zone) for k, v in released.items()}
            categories = {self.ctx.url("categories", c["id"]): c["title"] for c in records["categories"]}
            self._snapshot = Snapshot(mtime, records, _search_rows(records, categories, released_text))
        return self._snapshot

    def search(self, query: str) -> list[dict]:
        query = query.strip().lower()
        if not query:
            return []
        hits = [
            row for row in self.snapshot().search_rows
            if query in row["title"].lower() or query in row["slug"] or query in (row["description"] or "").lower()
        ]
        hits.sort(key=lambda row: (-row["weight"], row["slug"]))
        return hits[:SEARCH_LIMIT]


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
        return _json(root(api.ctx))

    async def listing(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        limit = _int_param(request, "limit", 20) or 20
        offset = _int_param(request, "offset", 0)
        return _json(page(kind, api.snapshot().records[kind], api.ctx, limit=limit, offset=offset))

    async def detail(request: web.Request) -> web.Response:
        kind, key = request.match_info["kind"], request.match_info["key"]
        record = None
        if kind != "categories" or key.isdigit():
            record = find(api.snapshot().records[kind], key)
        if record is None:
            return _json({"detail": f"No {MODEL_NAMES[kind]} matches the given query."}, status=404)
        return _json(record)

    async def search(request: web.Request) -> web.Response:
        return _json(api.search(request.query.get("q", "")))

    app = web.Application()
    kinds = "{kind:packages|grids|categories}"
    app.router.add_get("/api/v4/", api_root)
    app.router.add_get("/api/v4/search/", search)
    app.router.add_get(f"/api/v4/{kinds}/", listing)
    app.router.add_get(f"/api/v4/{kinds}/{{key}}/", detail)
    return app
