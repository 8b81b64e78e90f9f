"""The published snapshot as API v4 documents for a live server (`pulse serve`), like djangopackages.org.

It renders with the same functions as the static export (`api_v4`) and reloads when a refresh
publishes a new snapshot (the file's mtime changes), so readers never touch the writer's warehouse.
The search endpoint's rows follow djangopackages' search index. No web framework here: the HTTP
entry point is `pipelines.serve`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from assets.exports.api_v4 import ApiContext, drf_datetime, find, load_api_tables, page, render_all, root
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
    """The documents of one published snapshot (root, pages, details, search), reloaded when it changes."""

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

    def root(self) -> dict:
        return root(self.ctx)

    def page(self, kind: str, *, limit: int, offset: int) -> dict:
        return page(kind, self.snapshot().records[kind], self.ctx, limit=limit, offset=offset)

    def detail(self, kind: str, key: str) -> dict | None:
        """One record by id (or slug, except categories), None when nothing matches."""
        if kind == "categories" and not key.isdigit():
            return None
        return find(self.snapshot().records[kind], key)
