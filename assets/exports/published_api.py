"""The published snapshot as API v4 documents for a live server (`pulse serve`), like djangopackages.org.

It renders with the same functions as the static export (`api_v4`) and reloads when a refresh
publishes a new snapshot (the file's mtime changes), so readers never touch the writer's warehouse.
The search endpoint's rows follow djangopackages' search index. No web framework here: the HTTP
entry point is `pipelines.serve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import emoji

from assets.exports.api_v4 import ApiContext, drf_datetime, find, load_api_tables, page, render_all, root
from assets.exports.health_api import (
    GRID_DOCUMENTS,
    PACKAGE_DOCUMENTS,
    HealthDocuments,
    SearchValues,
    load_health_documents,
    load_search_values,
)
from assets.exports.search import SearchIndex
from warehouse.db import connect_reader

MODEL_NAMES = {"packages": "Package", "grids": "Grid", "categories": "Category"}
DOCUMENTS = {"packages": PACKAGE_DOCUMENTS, "grids": GRID_DOCUMENTS, "categories": ()}


@dataclass
class Snapshot:
    mtime: float
    records: dict[str, list[dict]]
    search_rows: list[dict]
    documents: HealthDocuments
    search_index: SearchIndex  # built once per snapshot (assets/exports/search.py)


def search_rows(records: dict[str, list[dict]], categories: dict[str, str], values: SearchValues,
                zone: ZoneInfo) -> list[dict]:
    """The rows of djangopackages' search index (searchv3/builders.py), as apiv4's SearchV3Serializer
    renders them: `exclude = ["id", "search_vector"]` after the declared fields, so the key order is
    description, title, title_no_prefix, slug_no_prefix, clean_title, absolute_url, then the model's.

    - `title_no_prefix` and `clean_title` are the title, `slug_no_prefix` the slug (the serializer's
      "compatibility fields" return them unchanged since searchv3); `title` and `description` go
      through `emoji.emojize` (`get_title`, `get_description`: ":rocket:" -> the emoji);
    - packages: `weight` = the rules total (health.package_scores.weight), `score` = package/scores.py
      (`.score`), `pypi_downloads` and `usage` integers (0 when unknown: `IntegerField(default=0)`,
      `Count("usage")`), `last_released` = the latest version's `upload_time` as the site stores it
      (its release time, a DRF datetime) or null;
    - grids: `weight` = `calc_grid_weight` (health.grid_scores.weight), everything else the model
      defaults (0, "", null).
    An older snapshot without these keeps the earlier placeholders (stars, 0, newest upload time).
    """
    rows = []
    for package in records["packages"]:
        package_id, title, stars = package["id"], package["title"], package["repo_watchers"]
        weight = stars if values.package_weight is None else values.package_weight.get(package_id, 0)
        score = stars if values.package_score is None else values.package_score.get(package_id, 0)
        rows.append({
            "description": emoji.emojize(package["repo_description"] or ""),
            "title": emoji.emojize(title),
            "title_no_prefix": title,
            "slug_no_prefix": package["slug"],
            "clean_title": title,
            "absolute_url": f"/packages/p/{package['slug']}/",
            "created": package["created"],
            "modified": package["modified"],
            "weight": int(weight),
            "item_type": "package",
            "slug": package["slug"],
            "category": categories.get(package["category"] or "", ""),
            "repo_watchers": stars,
            "repo_forks": package["repo_forks"],
            "pypi_downloads": int((values.pypi_downloads or {}).get(package_id) or 0),
            "score": int(score),
            "usage": int((values.usage or {}).get(package_id) or 0),
            "participants": ",".join(package["participants"]),
            "last_committed": package["last_updated"],
            "last_released": drf_datetime(values.last_released.get(package_id), zone),
        })
    for grid in records["grids"]:
        weight = len(grid["packages"]) if values.grid_weight is None else values.grid_weight.get(grid["id"], 0)
        rows.append({
            "description": emoji.emojize(grid["description"] or ""), "title": emoji.emojize(grid["title"]),
            "title_no_prefix": grid["title"],
            "slug_no_prefix": grid["slug"], "clean_title": grid["title"],
            "absolute_url": f"/grids/g/{grid['slug']}/", "created": grid["created"], "modified": grid["modified"],
            "weight": int(weight), "item_type": "grid", "slug": grid["slug"], "category": "",
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
                values = load_search_values(con)
                documents = load_health_documents(con, self.ctx)
            finally:
                con.close()
            categories = {self.ctx.url("categories", c["id"]): c["title"] for c in records["categories"]}
            rows = search_rows(records, categories, values, self.ctx.zone)
            self._snapshot = Snapshot(mtime, records, rows, documents, SearchIndex(rows))
        return self._snapshot

    def search(self, query: str) -> list[dict]:
        """`/api/v4/search/?q=`: the site's first 20 hits (ranking: assets/exports/search.py)."""
        return self.snapshot().search_index.search(query)

    def root(self) -> dict:
        return root(self.ctx)

    def page(self, kind: str, *, limit: int, offset: int) -> dict:
        return page(kind, self.snapshot().records[kind], self.ctx, limit=limit, offset=offset)

    def detail(self, kind: str, key: str) -> dict | None:
        """One record by id (or slug, except categories), None when nothing matches."""
        if kind == "categories" and not key.isdigit():
            return None
        return find(self.snapshot().records[kind], key)

    def document(self, kind: str, name: str, key: str) -> object | None:
        """A per-object document (`score`, `health`) by the object's id or slug, None when the object
        is unknown or the snapshot has no such document for it."""
        if name not in DOCUMENTS.get(kind, ()):
            return None
        snapshot = self.snapshot()
        record = find(snapshot.records[kind], key)
        if record is None:
            return None
        return snapshot.documents.get(kind, name, int(record["id"]))
