"""The scores where users look: search-hit values and the score/health JSON documents.

Reads what the `health` room and the health marts publish (docs/HEALTH.md; names in the issue 9
contract): `health.package_scores`, `health.grid_scores`, `marts.package_health`,
`marts.grid_package_health`, `marts.grid_health`, and `core.packages.pypi_downloads` / `usage`.
Every reader is tolerant of an older published snapshot without them: search hits fall back to the
earlier placeholder values (stars as weight and score, 0 downloads, 0 usage, the newest release's
upload time) and the documents are simply absent (404), so nothing breaks.

Documents (rendered once per snapshot; the static tree and `pulse serve` write the same bytes):

- `/api/v4/packages/<id>/score/`: djangopackages' "Package Score" breakdown
  (`{"total_score", "message", "breakdown": [...]}`) exactly as stored in
  `health.package_scores.weight_breakdown` (its bytes, not re-encoded);
- `/api/v4/packages/<id>/health/`: Pulse health, see `render_package_health`;
- `/api/v4/grids/<id>/health/`: the grid's median and its members by rank, see `render_grid_health`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import orjson

from assets.exports.api_v4 import ApiContext, drf_datetime

COMPONENTS = ("activity", "releases", "popularity", "community", "currency", "security")
# the document paths under /api/v4/<kind>/<id>/
PACKAGE_DOCUMENTS = ("score", "health")
GRID_DOCUMENTS = ("health",)


def relation_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The columns of `schema.table` in this snapshot; empty when it has no such relation."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def _has(columns: set[str], *names: str) -> bool:
    return bool(columns) and all(n in columns for n in names)


# --------------------------------------------------------------------------------------------------
# search hits
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchValues:
    """Per package and grid id, what djangopackages' search index stores (searchv3/builders.py).

    `None` for a whole mapping means the snapshot predates it: the caller keeps the placeholder.
    """

    package_weight: dict[int, int] | None = None
    package_score: dict[int, int] | None = None
    last_released: dict[int, datetime | None] = field(default_factory=dict)
    pypi_downloads: dict[int, int] | None = None
    usage: dict[int, int] | None = None
    grid_weight: dict[int, int] | None = None


def load_search_values(con: duckdb.DuckDBPyConnection) -> SearchValues:
    scores = relation_columns(con, "health", "package_scores")
    package_weight = package_score = None
    if _has(scores, "package_id", "weight", "score"):
        rows = con.execute("SELECT package_id, weight, score FROM health.package_scores").fetchall()
        package_weight = {int(p): int(w or 0) for p, w, _ in rows}
        package_score = {int(p): int(s or 0) for p, _, s in rows}
    if _has(scores, "package_id", "last_released"):
        # the site's release time (its Recent Release rule's), as the site's index stores it
        released = dict(con.execute("SELECT package_id, last_released FROM health.package_scores").fetchall())
    else:  # older snapshots: the newest upload time
        released = dict(con.execute(
            "SELECT package_id, max(upload_time) FROM core.releases GROUP BY package_id").fetchall())
    packages = relation_columns(con, "core", "packages")
    pypi_downloads = usage = None
    if "pypi_downloads" in packages:  # IntegerField(default=0): 0 when unknown
        pypi_downloads = dict(con.execute("SELECT id, coalesce(pypi_downloads, 0) FROM core.packages").fetchall())
    if "usage" in packages:
        usage = dict(con.execute("SELECT id, coalesce(usage, 0) FROM core.packages").fetchall())
    grid_weight = None
    if _has(relation_columns(con, "health", "grid_scores"), "grid_id", "weight"):
        grid_weight = {int(g): int(w or 0) for g, w in
                       con.execute("SELECT grid_id, weight FROM health.grid_scores").fetchall()}
    return SearchValues(package_weight, package_score, released, pypi_downloads, usage, grid_weight)


# --------------------------------------------------------------------------------------------------
# documents
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthDocuments:
    """Rendered documents by kind ("packages", "grids"), document name and integer id."""

    documents: dict[tuple[str, str], dict[int, object]]

    def get(self, kind: str, name: str, object_id: int) -> object | None:
        return self.documents.get((kind, name), {}).get(object_id)

    def items(self):
        for (kind, name), by_id in self.documents.items():
            for object_id, document in by_id.items():
                yield kind, name, object_id, document

    def __len__(self) -> int:
        return sum(len(v) for v in self.documents.values())


def _breakdown(text: str | None) -> orjson.Fragment | None:
    """The stored breakdown JSON as it is (checked to be JSON), or None."""
    if text is None:
        return None
    raw = text.encode()
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return orjson.Fragment(raw)


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return [text]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _component_reason(name: str, lines: list[str]) -> str | None:
    """The component's line of the explanation (`<name> <points>/<max>: <why>`), without its head."""
    prefix = f"{name} "
    for line in lines:
        if line.startswith(prefix) and ": " in line:
            return line.split(": ", 1)[1]
    return None


def render_package_health(row: dict, grids: list[dict], ctx: ApiContext) -> dict:
    """Pulse health of one package: the score, its version, the cap and why first; then each
    component (points, max, reason), the explanation lines, the trend, and its grid ranks."""
    lines = _lines(row.get("explanation"))
    components = []
    for name in COMPONENTS:
        if name not in row:
            continue
        components.append({
            "name": name,
            "points": _float(row[name]),
            "max": _float(row.get(f"{name}_max")),
            "reason": _component_reason(name, lines),
        })
    return {
        "health_score": _float(row["health_score"]),
        "health_version": row.get("health_version"),
        "cap": _float(row.get("cap")),
        "cap_reason": row.get("cap_reason"),
        "health_uncapped": _float(row.get("health_uncapped")),
        "components": components,
        "explanation": lines,
        "change_30d": _float(row.get("change_30d")),
        "change_90d": _float(row.get("change_90d")),
        "grids": [
            {"grid": ctx.url("grids", g["grid_id"]), "id": int(g["grid_id"]), "slug": g["grid_slug"],
             "rank": int(g["rank"]), "of": int(g["grid_size"]), "percentile": _float(g["percentile"]),
             "median_health": _float(g["median_health"])}
            for g in grids
        ],
        "package": ctx.url("packages", row["package_id"]),
        "id": int(row["package_id"]),
        "slug": row["slug"],
        "title": row["title"],
        "computed_at": drf_datetime(row.get("computed_at"), ctx.zone),
    }


def render_grid_health(grid: dict, members: list[dict], median: float | None, ctx: ApiContext) -> dict:
    """A grid's health: its median and its scored members ordered by rank (1 = healthiest)."""
    scores = [m["health_score"] for m in members if m["health_score"] is not None]
    return {
        "median_health": _float(median),
        "packages": len(members),
        "min_health": _float(min(scores)) if scores else None,
        "max_health": _float(max(scores)) if scores else None,
        "ranking": [
            {"rank": int(m["rank"]), "percentile": _float(m["percentile"]),
             "health_score": _float(m["health_score"]), "package": ctx.url("packages", m["package_id"]),
             "id": int(m["package_id"]), "slug": m["slug"], "title": m["title"]}
            for m in members
        ],
        "grid": ctx.url("grids", grid["id"]),
        "id": int(grid["id"]),
        "slug": grid["slug"],
        "title": grid["title"],
    }


_RANKS_FROM_MART = """
    SELECT r.grid_id, r.package_id, r.rank, r.percentile, s.health_score
    FROM marts.grid_package_health r
    JOIN core.grid_packages gp ON gp.grid_id = r.grid_id AND gp.package_id = r.package_id
    LEFT JOIN health.package_scores s ON s.package_id = r.package_id
"""
# the same ranking as assets/marts (grid_health): rank "min" by descending score, percentile = share
# of the grid's other scored members with a lower score (100 for a grid of one)
_RANKS_COMPUTED = """
    WITH m AS (
        SELECT DISTINCT gp.grid_id, gp.package_id, s.health_score
        FROM core.grid_packages gp JOIN health.package_scores s ON s.package_id = gp.package_id
        WHERE s.health_score IS NOT NULL)
    SELECT grid_id, package_id,
           rank() OVER (PARTITION BY grid_id ORDER BY health_score DESC) AS rank,
           CASE WHEN count(*) OVER (PARTITION BY grid_id) > 1
                THEN round((rank() OVER (PARTITION BY grid_id ORDER BY health_score) - 1) * 100.0
                           / (count(*) OVER (PARTITION BY grid_id) - 1), 1)
                ELSE 100.0 END AS percentile,
           health_score
    FROM m
"""


def load_health_documents(con: duckdb.DuckDBPyConnection, ctx: ApiContext) -> HealthDocuments:
    """Render every score and health document the snapshot can give (none without the tables)."""
    documents: dict[tuple[str, str], dict[int, object]] = {}
    scores = relation_columns(con, "health", "package_scores")
    if not _has(scores, "package_id"):
        return HealthDocuments(documents)

    if "weight_breakdown" in scores:
        breakdowns = {}
        for package_id, text in con.execute(
                "SELECT s.package_id, s.weight_breakdown FROM health.package_scores s "
                "JOIN core.packages p ON p.id = s.package_id").fetchall():
            if (fragment := _breakdown(text)) is not None:
                breakdowns[int(package_id)] = fragment
        documents[("packages", "score")] = breakdowns

    if "health_score" not in scores:
        return HealthDocuments(documents)

    # grid ranks: the mart when published, else the same ranking computed here
    ranks_mart = relation_columns(con, "marts", "grid_package_health")
    ranks_sql = _RANKS_FROM_MART if _has(ranks_mart, "grid_id", "package_id", "rank", "percentile") \
        else _RANKS_COMPUTED
    members = con.sql(f"""
        WITH r AS ({ranks_sql})
        SELECT r.grid_id, r.package_id, r.rank, r.percentile, r.health_score, p.slug, p.title
        FROM r JOIN core.packages p ON p.id = r.package_id
        ORDER BY r.grid_id, r.rank, r.package_id
    """).pl().to_dicts()
    by_grid: dict[int, list[dict]] = {}
    for m in members:
        by_grid.setdefault(int(m["grid_id"]), []).append(m)

    medians: dict[int, float | None] = {}
    if _has(relation_columns(con, "marts", "grid_health"), "grid_id", "median_health"):
        medians = {int(g): m for g, m in con.execute("SELECT grid_id, median_health FROM marts.grid_health").fetchall()}
    else:
        medians = {g: _median([m["health_score"] for m in ms]) for g, ms in by_grid.items()}

    grids = con.sql("SELECT id, slug, title FROM core.grids ORDER BY id").pl().to_dicts()
    grid_docs: dict[int, object] = {}
    package_ranks: dict[int, list[dict]] = {}
    for grid in grids:
        grid_id = int(grid["id"])
        ms = by_grid.get(grid_id, [])
        median = medians.get(grid_id, _median([m["health_score"] for m in ms]))
        grid_docs[grid_id] = render_grid_health(grid, ms, median, ctx)
        for m in ms:
            package_ranks.setdefault(int(m["package_id"]), []).append(
                {"grid_id": grid_id, "grid_slug": grid["slug"], "rank": m["rank"], "grid_size": len(ms),
                 "percentile": m["percentile"], "median_health": median})
    documents[("grids", "health")] = grid_docs

    wanted = ["health_score", "health_uncapped", "cap", "cap_reason", "explanation", "health_version",
              "computed_at", *(c for name in COMPONENTS for c in (name, f"{name}_max"))]
    present = [c for c in wanted if c in scores]
    trend = relation_columns(con, "marts", "package_health")
    trend_cols = [c for c in ("change_30d", "change_90d") if _has(trend, "package_id", c)]
    trend_join = "LEFT JOIN marts.package_health t ON t.package_id = s.package_id" if trend_cols else ""
    rows = con.sql(f"""
        SELECT s.package_id, p.slug, p.title, {", ".join(f"s.{c}" for c in present)}
               {"".join(f", t.{c}" for c in trend_cols)}
        FROM health.package_scores s JOIN core.packages p ON p.id = s.package_id {trend_join}
        ORDER BY s.package_id
    """).pl().to_dicts()
    package_docs: dict[int, object] = {}
    for row in rows:
        package_id = int(row["package_id"])
        grid_ranks = sorted(package_ranks.get(package_id, []), key=lambda g: g["grid_id"])
        package_docs[package_id] = render_package_health(row, grid_ranks, ctx)
    documents[("packages", "health")] = package_docs
    return HealthDocuments(documents)


def _median(values: list[float | None]) -> float | None:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2
