"""The published snapshot as the djangopackages.org API (v4 and v3) for a live server (`pulse serve`).

`PublishedApi.respond(path, query)` answers one GET the way the site does (routing, DRF's
LimitOffsetPagination, detail by id or slug, DRF's 404 bodies, `?format=`), as an `ApiResponse`
whose absolute links start with `api_v4.LINK_BASE`: the server replaces that with the base the
client asked for, so one rendered snapshot serves every host. v4 records are rendered with the same
functions as the static export (`api_v4`), v3 with `api_v3`. A `Snapshot` is read once from
`published.duckdb` and never changes; `reload_if_changed` builds the next one beside it and swaps
one reference, so requests in flight keep the old one. No web framework here: HTTP is
`pipelines.serve`.

Quirks kept from the site (djangopackages apiv4 + DRF 3.17, see `respond`):
- `?format=json` (and `api`: we have no browsable HTML, JSON is given) is accepted, any other value
  is DRF's content negotiation 404 `{"detail": "Not found."}`, before the view runs;
- a detail key made of digits is an id, anything else a slug (categories: id only); a digits key
  that `int()` cannot read (e.g. "²") or a non-integer category key is DRF's bare `Http404`
  (`{"detail": "Not found."}`), a well-formed key that matches nothing Django's
  `{"detail": "No Package matches the given query."}`;
- the router's lookup is `[^/.]+`: a key with a dot matches no route;
- DefaultRouter's format-suffix URLs (`/api/v4/packages.json`, `/api/v4/packages/1.json`,
  `/api/v4/.json`) answer like `?format=` and their hyperlinks carry the suffix too
  (`.../grids/7.json`), as DRF reverses them with the view's `format_kwarg`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import emoji

from assets.exports.api_v3 import V3Documents, build_v3, respond_v3
from assets.exports.api_v4 import (
    LINK_BASE,
    ApiContext,
    ApiTables,
    drf_datetime,
    drf_page,
    load_api_tables,
    page,
    render_all,
    root,
)
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
NOT_FOUND = {"detail": "Not found."}
# DRF's renderers on the site (DEFAULT_RENDERER_CLASSES): JSONRenderer ("json") and
# BrowsableAPIRenderer ("api"); `?format=` naming another is a 404
V4_FORMATS = ("json", "api")
SUFFIX = re.compile(r"([^/.]*)\.([a-z0-9]+)")
LINK_FIELDS = {"packages": ("category", "grids"), "grids": ("packages",), "categories": ()}


@dataclass(frozen=True)
class ApiResponse:
    """One answer: status and a JSON-serialisable document (absolute links start with LINK_BASE)."""

    status: int
    document: object


@dataclass(frozen=True)
class Snapshot:
    """Everything one published file answers, rendered once (never mutated after `load`)."""

    token: str  # changes whenever the published file changes (mtime_ns, size, inode)
    published_at: datetime  # the file's mtime, for Last-Modified
    records: dict[str, list[dict]]  # v4 records by kind, ordered by -id
    search_rows: list[dict]
    documents: HealthDocuments
    v3: V3Documents
    search_index: SearchIndex  # built once per snapshot (assets/exports/search.py)
    by_id: dict[str, dict[int, dict]] = field(default_factory=dict)
    by_slug: dict[str, dict[str, dict]] = field(default_factory=dict)

    @property
    def mtime(self) -> float:  # older name
        return self.published_at.timestamp()


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


def _file_token(path: Path) -> tuple[str, datetime]:
    stat = path.stat()
    return f"{stat.st_mtime_ns}-{stat.st_size}-{stat.st_ino}", datetime.fromtimestamp(stat.st_mtime, UTC)


def _format_ok(wanted: str | None) -> bool:
    """DRF's DefaultContentNegotiation: an empty `format` is no format; a named one must be a renderer's."""
    return not wanted or wanted in V4_FORMATS


def _format_suffix(parts: list[str]) -> tuple[list[str], str | None]:
    """DefaultRouter's format-suffix routes (`format_suffix_patterns`: `\\.(?P<format>[a-z0-9]+)/?$`
    after the route): `packages.json`, `packages/1.json`, and `.json` for the root."""
    if not parts:
        return parts, None
    match = SUFFIX.fullmatch(parts[-1])
    if match is None or (not match.group(1) and len(parts) > 1):
        return parts, None
    name = match.group(1)
    return [*parts[:-1], name] if name else [], match.group(2)


def _suffixed(link: str | None, suffix: str) -> str | None:
    """A link as DRF reverses it when the request carried a format suffix: `.../grids/7.json`."""
    return f"{link[:-1]}.{suffix}" if link and link.endswith("/") else link


def _record_suffixed(kind: str, record: dict, suffix: str) -> dict:
    """The record with its hyperlinks suffixed (HyperlinkedRelatedField reverses with the view's
    `format_kwarg`)."""
    out = dict(record)
    for name in LINK_FIELDS[kind]:
        value = out[name]
        out[name] = [_suffixed(v, suffix) for v in value] if isinstance(value, list) else _suffixed(value, suffix)
    return out


def _lookup(snapshot: Snapshot, kind: str, key: str) -> tuple[dict | None, dict]:
    """(record, 404 body): DRF's detail lookup through djangopackages' MultiLookupFieldMixin (packages,
    grids: all digits -> pk, else slug) or the default pk lookup (categories)."""
    by_pk = kind == "categories" or key.isdigit()
    if not by_pk:
        return snapshot.by_slug[kind].get(key), {"detail": f"No {MODEL_NAMES[kind]} matches the given query."}
    try:
        object_id = int(key)  # what Django's IntegerField does with the lookup value
    except ValueError:
        return None, dict(NOT_FOUND)  # DRF's get_object_or_404: ValueError -> bare Http404
    return snapshot.by_id[kind].get(object_id), {"detail": f"No {MODEL_NAMES[kind]} matches the given query."}


class PublishedApi:
    """The documents of the published snapshot (v4, v3, search, score/health), reloaded when it changes.

    `context`: the IANA zone datetimes are shown in (links then start with LINK_BASE, for the
    server to substitute), or an `ApiContext` whose base the links use directly (tests, tools).
    """

    def __init__(self, published: Path, context: str | ApiContext) -> None:
        self.published = published
        self.ctx = context if isinstance(context, ApiContext) else ApiContext(LINK_BASE, ZoneInfo(context))
        self._snapshot: Snapshot | None = None
        self._loading = threading.Lock()

    # -- snapshots ---------------------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Read the published file fully and render everything (blocking). The token is taken
        before reading: a file replaced meanwhile is seen as changed on the next check."""
        token, published_at = _file_token(self.published)
        con = connect_reader(self.published)
        try:
            tables = load_api_tables(con)
            values = load_search_values(con)
            documents = load_health_documents(con, self.ctx)
        finally:
            con.close()
        return self._build(token, published_at, tables, values, documents)

    def _build(self, token: str, published_at: datetime, tables: ApiTables, values: SearchValues,
               documents: HealthDocuments) -> Snapshot:
        ctx = self.ctx
        records = render_all(tables, ctx)
        categories = {ctx.url("categories", c["id"]): c["title"] for c in records["categories"]}
        rows = search_rows(records, categories, values, ctx.zone)
        v3 = build_v3(tables.packages, tables.grids, tables.categories, values.usage)
        by_id = {kind: {int(r["id"]): r for r in records[kind]} for kind in records}
        by_slug = {kind: {r["slug"]: r for r in records[kind]} for kind in ("packages", "grids")}
        return Snapshot(token, published_at, records, rows, documents, v3, SearchIndex(rows), by_id, by_slug)

    def snapshot(self) -> Snapshot:
        """The current snapshot (loaded on first use)."""
        current = self._snapshot
        if current is None:
            with self._loading:
                if self._snapshot is None:
                    self._snapshot = self.load()
                current = self._snapshot
        return current

    def reload_if_changed(self) -> bool:
        """Load a new snapshot when the file changed, then swap the one reference (the old snapshot
        keeps answering until then). False when unchanged or another thread is already loading."""
        if self._snapshot is None:
            self.snapshot()
            return True
        try:
            if _file_token(self.published)[0] == self._snapshot.token:
                return False
        except FileNotFoundError:  # between a removal and the next publish: keep answering
            return False
        if not self._loading.acquire(blocking=False):
            return False
        try:
            fresh = self.load()
            changed = fresh.token != self._snapshot.token
            self._snapshot = fresh
            return changed
        finally:
            self._loading.release()

    # -- answers -----------------------------------------------------------------------------------

    def respond(self, path: str, query: Mapping[str, str], snapshot: Snapshot | None = None) -> ApiResponse:
        """The answer to GET `path` (normalised by the server: /api/..., trailing slash) with `query`
        (last value wins). Unknown paths: 404 `{"detail": "Not found."}`."""
        snapshot = snapshot or self.snapshot()
        parts = path.strip("/").split("/")
        if "" in parts:  # an empty segment ("//") is no route
            return ApiResponse(404, dict(NOT_FOUND))
        if parts[:2] == ["api", "v4"]:
            return self._respond_v4(snapshot, parts[2:], path, query)
        if parts[:2] == ["api", "v3"]:
            answer = respond_v3(snapshot.v3, parts[2:], path, query)
            if answer is not None:
                return ApiResponse(*answer)
        return ApiResponse(404, dict(NOT_FOUND))

    def _respond_v4(self, snapshot: Snapshot, parts: list[str], path: str, query: Mapping[str, str]) -> ApiResponse:
        parts, suffix = _format_suffix(parts)
        if any("." in part for part in parts) or len(parts) > 3 or (suffix is not None and len(parts) > 2):
            return ApiResponse(404, dict(NOT_FOUND))  # no route: the router's lookup is [^/.]+
        if not _format_ok(suffix or query.get("format")):
            return ApiResponse(404, dict(NOT_FOUND))  # content negotiation: no renderer for that format
        if not parts:
            links = root(self.ctx)
            return ApiResponse(200, {k: _suffixed(v, suffix) for k, v in links.items()} if suffix else links)
        kind = parts[0]
        if kind == "search" and len(parts) == 1:
            return ApiResponse(200, snapshot.search_index.search(query.get("q", "")))
        if kind not in MODEL_NAMES:
            return ApiResponse(404, dict(NOT_FOUND))
        if len(parts) == 1:
            found = drf_page(snapshot.records[kind], self.ctx.base_url + path, query)
            if suffix:
                found["results"] = [_record_suffixed(kind, r, suffix) for r in found["results"]]
            return ApiResponse(200, found)
        if len(parts) == 3 and parts[2] not in DOCUMENTS[kind]:
            return ApiResponse(404, dict(NOT_FOUND))
        record, missing = _lookup(snapshot, kind, parts[1])
        if record is None:
            return ApiResponse(404, missing)
        if len(parts) == 2:
            return ApiResponse(200, _record_suffixed(kind, record, suffix) if suffix else record)
        document = snapshot.documents.get(kind, parts[2], int(record["id"]))
        return ApiResponse(200, document) if document is not None else ApiResponse(404, missing)

    # -- helpers kept for tools and tests ----------------------------------------------------------

    def search(self, query: str) -> list[dict]:
        return self.snapshot().search_index.search(query)

    def root(self) -> dict:
        return root(self.ctx)

    def page(self, kind: str, *, limit: int, offset: int) -> dict:
        return page(kind, self.snapshot().records[kind], self.ctx, limit=limit, offset=offset)

    def detail(self, kind: str, key: str) -> dict | None:
        """One record by id (or slug, except categories), None when nothing matches."""
        return _lookup(self.snapshot(), kind, key)[0]

    def document(self, kind: str, name: str, key: str) -> object | None:
        """A per-object document (`score`, `health`) by the object's id or slug, None when the object
        is unknown or the snapshot has no such document for it."""
        if name not in DOCUMENTS.get(kind, ()):
            return None
        snapshot = self.snapshot()
        record = _lookup(snapshot, kind, key)[0]
        if record is None:
            return None
        return snapshot.documents.get(kind, name, int(record["id"]))
