"""The djangopackages.org API v4 shape (shared/API_V4.md), rendered from the core tables.

Pure functions: `load_api_tables` reads what the API needs from a warehouse connection,
`render_*` turn rows into records with the exact key order of the real API, and `write_tree`
lays them out as static files so any file server reproduces the real URLs. `pulse serve` renders
from the same functions, so the static tree and the live server cannot drift apart.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import duckdb
import orjson

DEFAULT_LIMIT = 20  # djangopackages settings.py: REST_FRAMEWORK["PAGE_SIZE"] (no max_limit)
KINDS = ("packages", "grids", "categories")
# The base of every absolute link in what `pulse serve` renders: the server swaps it, in the serialized
# bytes, for the base the client asked for (Host / X-Forwarded-*) or PULSE_PUBLIC_URL. A reserved
# `.invalid` name (RFC 2606), so it can never be a real link. The static tree never contains it.
LINK_BASE = "http://pulse-link-base.invalid"


def drf_datetime(value: datetime | None, zone: ZoneInfo) -> str | None:
    """Render like Django REST framework: local time in the configured zone, `Z` for UTC,
    microseconds only when non-zero (that is what `datetime.isoformat` does)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(zone).isoformat()
    if text.endswith("+00:00"):
        text = text[: -len("+00:00")] + "Z"
    return text


@dataclass(frozen=True)
class ApiContext:
    """Where links point (`PULSE_PUBLIC_URL`) and which zone datetimes are shown in."""

    base_url: str
    zone: ZoneInfo

    @classmethod
    def create(cls, base_url: str, timezone: str) -> ApiContext:
        return cls(base_url.rstrip("/"), ZoneInfo(timezone))

    def url(self, kind: str, object_id: int | None = None) -> str:
        if object_id is None:
            return f"{self.base_url}/api/v4/{kind}/"
        return f"{self.base_url}/api/v4/{kind}/{int(object_id)}/"


@dataclass(frozen=True)
class ApiTables:
    """Rows ready for rendering, each list ordered by `-id` like the real API."""

    packages: list[dict]
    grids: list[dict]
    categories: list[dict]


def load_api_tables(con: duckdb.DuckDBPyConnection) -> ApiTables:
    """Read packages (with their grids, weekly commits and participants), grids and categories."""
    # a package's grids in membership order (core.grid_packages.position, the catalogue's order, as
    # the site's `gridpackage_set.all()`); a snapshot from before that column: by grid id
    has_position = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'core' AND table_name = 'grid_packages' AND column_name = 'position'"
    ).fetchall()[0][0]
    membership_order = "position NULLS LAST, grid_id" if has_position else "grid_id"
    packages = con.sql(
        f"""
        WITH grid_lists AS (
            SELECT package_id, list(grid_id ORDER BY {membership_order}) AS grid_ids
            FROM core.grid_packages GROUP BY package_id),
        week_lists AS (
            SELECT package_id, list(commits ORDER BY week_index) AS commits_over_52
            FROM core.commit_weeks GROUP BY package_id),
        participant_lists AS (
            SELECT package_id, list(login ORDER BY position) AS participants
            FROM core.participants GROUP BY package_id)
        SELECT p.id, p.title, p.slug, p.category_id, p.last_updated, p.last_fetched, p.repo_url,
               p.pypi_version, p.created, p.modified, p.repo_forks, p.repo_description, p.pypi_url,
               p.documentation_url, p.repo_watchers,
               coalesce(g.grid_ids, []) AS grid_ids,
               coalesce(w.commits_over_52, []) AS commits_over_52,
               coalesce(pt.participants, []) AS participants
        FROM core.packages p
        LEFT JOIN grid_lists g ON g.package_id = p.id
        LEFT JOIN week_lists w ON w.package_id = p.id
        LEFT JOIN participant_lists pt ON pt.package_id = p.id
        ORDER BY p.id DESC
        """
    ).pl()
    # a grid's packages by title: GridSerializer's `packages` is `grid.packages` (prefetched), whose
    # default ordering is Package.Meta.ordering = ["title"]
    grids = con.sql(
        """
        WITH members AS (
            SELECT gp.grid_id, list(gp.package_id ORDER BY lower(p.title), p.id) AS package_ids
            FROM core.grid_packages gp JOIN core.packages p ON p.id = gp.package_id
            GROUP BY gp.grid_id)
        SELECT g.id, g.title, g.slug, g.description, g.is_locked, g.header, g.created, g.modified,
               coalesce(m.package_ids, []) AS package_ids
        FROM core.grids g LEFT JOIN members m ON m.grid_id = g.id
        ORDER BY g.id DESC
        """
    ).pl()
    categories = con.sql(
        """
        SELECT id, title, slug, description, title_plural, show_pypi, created, modified
        FROM core.categories ORDER BY id DESC
        """
    ).pl()
    return ApiTables(packages.to_dicts(), grids.to_dicts(), categories.to_dicts())


def render_package(row: dict, ctx: ApiContext) -> dict:
    category_id = row["category_id"]
    return {
        "category": ctx.url("categories", category_id) if category_id is not None else None,
        "grids": [ctx.url("grids", g) for g in row["grid_ids"]],
        "id": int(row["id"]),
        "title": row["title"],
        "slug": row["slug"],
        "last_updated": drf_datetime(row["last_updated"], ctx.zone),
        "last_fetched": drf_datetime(row["last_fetched"], ctx.zone),
        "repo_url": row["repo_url"] or "",
        "pypi_version": row["pypi_version"],
        "created": drf_datetime(row["created"], ctx.zone),
        "modified": drf_datetime(row["modified"], ctx.zone),
        "repo_forks": int(row["repo_forks"] or 0),
        "repo_description": row["repo_description"] or "",
        "pypi_url": row["pypi_url"] or "",
        "documentation_url": row["documentation_url"],
        "repo_watchers": int(row["repo_watchers"] or 0),
        "commits_over_52": [int(c) for c in row["commits_over_52"]],
        "participants": list(row["participants"]),
    }


def render_grid(row: dict, ctx: ApiContext) -> dict:
    return {
        "id": int(row["id"]),
        "title": row["title"],
        "slug": row["slug"],
        "description": row["description"] or "",
        "is_locked": bool(row["is_locked"]),
        "packages": [ctx.url("packages", p) for p in row["package_ids"]],
        "header": bool(row["header"]),
        "created": drf_datetime(row["created"], ctx.zone),
        "modified": drf_datetime(row["modified"], ctx.zone),
    }


def render_category(row: dict, ctx: ApiContext) -> dict:
    return {
        "id": int(row["id"]),
        "title": row["title"],
        "slug": row["slug"],
        "description": row["description"] or "",
        "title_plural": row["title_plural"] or "",
        "show_pypi": bool(row["show_pypi"]),
        "created": drf_datetime(row["created"], ctx.zone),
        "modified": drf_datetime(row["modified"], ctx.zone),
    }


RENDERERS = {"packages": render_package, "grids": render_grid, "categories": render_category}


def page(kind: str, records: list[dict], ctx: ApiContext, limit: int = DEFAULT_LIMIT, offset: int = 0) -> dict:
    """The limit/offset envelope of DRF's LimitOffsetPagination, with absolute links."""
    count = len(records)
    base = ctx.url(kind)
    next_url = f"{base}?limit={limit}&offset={offset + limit}" if offset + limit < count else None
    if offset <= 0:
        previous = None
    elif offset - limit <= 0:
        previous = f"{base}?limit={limit}"
    else:
        previous = f"{base}?limit={limit}&offset={offset - limit}"
    return {"count": count, "next": next_url, "previous": previous, "results": records[offset : offset + limit]}


def _positive_int(text: str, *, strict: bool = False) -> int:
    """DRF's `pagination._positive_int` (no cutoff: the site sets no max_limit): Python's `int()`
    (so " 5", "+5", "1_0" count), negative -> ValueError, 0 too when strict."""
    value = int(text)
    if value < 0 or (value == 0 and strict):
        raise ValueError(text)
    return value


def drf_limit(query: Mapping[str, str]) -> int:
    """LimitOffsetPagination.get_limit: a strictly positive integer, else (absent, 0, negative, not an
    integer) PAGE_SIZE."""
    try:
        return _positive_int(query["limit"], strict=True)
    except (KeyError, ValueError):
        return DEFAULT_LIMIT


def drf_offset(query: Mapping[str, str]) -> int:
    """LimitOffsetPagination.get_offset: a non-negative integer, else 0."""
    try:
        return _positive_int(query["offset"])
    except (KeyError, ValueError):
        return 0


def _with_query(url: str, query: Mapping[str, str]) -> str:
    """DRF's replace_query_param/remove_query_param result: every parameter of the request kept,
    sorted by name, form-encoded (`urlencode(sorted(...))`)."""
    encoded = urlencode(sorted(query.items()))
    return f"{url}?{encoded}" if encoded else url


def drf_page(records: list[dict], url: str, query: Mapping[str, str]) -> dict:
    """One page as DRF's LimitOffsetPagination renders it for a request to `url` (absolute, without
    query) with `query`: `count`, `next` and `previous` built from the request's own URL (its other
    parameters kept, `limit`/`offset` replaced, names sorted), `previous` without `offset` when it
    would be <= 0, an empty page past the end."""
    limit, offset, count = drf_limit(query), drf_offset(query), len(records)
    results = [] if count == 0 or offset > count else records[offset : offset + limit]
    next_url = None
    if offset + limit < count:
        next_url = _with_query(url, {**query, "limit": str(limit), "offset": str(offset + limit)})
    previous = None
    if offset > 0:
        back = {**query, "limit": str(limit)}
        if offset - limit <= 0:
            back.pop("offset", None)
        else:
            back["offset"] = str(offset - limit)
        previous = _with_query(url, back)
    return {"count": count, "next": next_url, "previous": previous, "results": results}


def root(ctx: ApiContext) -> dict:
    return {
        "packages": ctx.url("packages"),
        "search": ctx.url("search"),
        "grids": ctx.url("grids"),
        "categories": ctx.url("categories"),
    }


def render_all(tables: ApiTables, ctx: ApiContext) -> dict[str, list[dict]]:
    return {kind: [RENDERERS[kind](row, ctx) for row in getattr(tables, kind)] for kind in KINDS}


def _dump(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document))


def _tree_files(records: dict[str, list[dict]], ctx: ApiContext,
                documents: Iterable[tuple[str, str, int, object]] = ()) -> Iterator[tuple[Path, object]]:
    yield Path("api/v4/index.json"), root(ctx)
    for kind in KINDS:
        yield Path("api/v4") / kind / "index.json", page(kind, records[kind], ctx)
        for record in records[kind]:
            # the folder name comes from an integer id only: nothing in a slug or URL reaches the path
            yield Path("api/v4") / kind / str(int(record["id"])) / "index.json", record
    for kind, name, object_id, document in documents:
        if kind in KINDS and name.isidentifier():
            yield Path("api/v4") / kind / str(int(object_id)) / name / "index.json", document


def write_tree(export_dir: Path, records: dict[str, list[dict]], ctx: ApiContext,
               documents: Iterable[tuple[str, str, int, object]] = ()) -> dict[str, int]:
    """Write the whole tree into a fresh folder, then swap it in, so readers see old or new only.

    `documents`: further per-object documents `(kind, name, id, document)` written to
    `api/v4/<kind>/<id>/<name>/index.json` (the score and health documents).
    """
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = export_dir.with_name(export_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    files = 0
    for relative, document in _tree_files(records, ctx, documents):
        _dump(staging / relative, document)
        files += 1
    old = export_dir.with_name(export_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if export_dir.exists():
        os.replace(export_dir, old)
    os.replace(staging, export_dir)
    shutil.rmtree(old, ignore_errors=True)
    return {"files": files, **{kind: len(records[kind]) for kind in KINDS}}


def find(records: Iterable[dict], key: str) -> dict | None:
    """Detail lookup like the real API: all digits is an id, anything else a slug."""
    field = "id" if key.isdigit() else "slug"
    wanted: object = int(key) if key.isdigit() else key
    return next((r for r in records if r.get(field) == wanted), None)
