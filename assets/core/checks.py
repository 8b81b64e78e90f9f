"""Asset checks on the core tables, derived from the declared schema where possible.

Blocking checks (a wrong table would spread into history, marts and exports): unique declared keys,
52 weeks per package with participation, grid memberships pointing at existing packages and grids,
non-negative counts. Freshness of the last
successful crawl only warns (the data is still the best we have). Each result carries the number of
offending rows and a few examples in its metadata.
"""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb

from assets.core.assets import core_key
from assets.core.columns import CORE_TABLES
from pipelines.resources import WRITER_POOL, WarehouseResource
from warehouse.ddl import table_spec

# count-like columns that must never be negative (checked wherever a declared core table has them)
COUNT_COLUMNS = ("stars", "forks", "watchers", "open_issues", "repo_watchers", "repo_forks", "commits",
                 "contributions", "attempts")
FRESHNESS_HOURS = float(os.environ.get("PULSE_FRESHNESS_HOURS", "48"))


def _spec(name: str, table: str, description: str, *, blocking: bool = True) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=core_key(table), description=description, blocking=blocking)


def count_and_sample(con: duckdb.DuckDBPyConnection, sql: str, limit: int = 5) -> tuple[int, list[str]]:
    count = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
    sample = [str(r) for r in con.execute(f"SELECT * FROM ({sql}) LIMIT {limit}").fetchall()] if count else []
    return int(count), sample


def check_result(table_or_key, name: str, count: int, sample: list[str], *,
            severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR, **extra) -> dg.AssetCheckResult:
    key = table_or_key if isinstance(table_or_key, dg.AssetKey) else core_key(table_or_key)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=count == 0,
        severity=severity,
        metadata={"offending_rows": count, "examples": dg.MetadataValue.json(sample), **extra},
    )


def unique_key_sql(table: str) -> str:
    spec = table_spec(table)
    assert spec is not None and spec.key, f"{table} declares no key"
    cols = ", ".join(spec.key)
    return f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY {cols} HAVING count(*) > 1"


def negative_counts_sql(table: str) -> str | None:
    spec = table_spec(table)
    assert spec is not None
    cols = [c for c, _ in spec.columns if c in COUNT_COLUMNS]
    if not cols:
        return None
    return f"SELECT * FROM {table} WHERE " + " OR ".join(f"{c} < 0" for c in cols)


WEEKS_SQL = """
SELECT package_id, count(*) AS weeks, min(week_index) AS lo, max(week_index) AS hi
FROM core.commit_weeks GROUP BY package_id
HAVING count(*) <> 52 OR min(week_index) <> 0 OR max(week_index) <> 51
"""
# Starting from the archive, not from the week rows: every package whose repository has a good
# participation answer with data (the newest 2xx body; 204 = empty repository, no statistics) must
# have weeks 0..51, and so must every package that has week rows at all. A body the core could not
# parse is already a `malformed` crawl error, so it does not count as an answer here. Only the small
# columns of the archive are read (no bodies).
ANSWERED_WEEKS_SQL = """
WITH good AS (
    SELECT request_key, subject, arg_max(status, fetched_at) AS status
    FROM raw.responses
    WHERE source = 'github' AND endpoint = 'participation' AND error_kind IS NULL
      AND status BETWEEN 200 AND 299
    GROUP BY request_key, subject
), answered AS (
    SELECT DISTINCT p.id AS package_id
    FROM core.packages p JOIN good g ON g.subject = p.repo_key
    WHERE g.status <> 204
      AND NOT EXISTS (SELECT 1 FROM core.crawl_errors e
                      WHERE e.package_id = p.id AND e.request_key = g.request_key AND e.kind = 'malformed')
), weeks AS (
    SELECT package_id, count(*) AS weeks, min(week_index) AS lo, max(week_index) AS hi
    FROM core.commit_weeks GROUP BY package_id
)
SELECT package_id, coalesce(w.weeks, 0) AS weeks, w.lo, w.hi, a.package_id IS NOT NULL AS answered
FROM answered a FULL OUTER JOIN weeks w USING (package_id)
WHERE coalesce(w.weeks, 0) <> 52 OR w.lo <> 0 OR w.hi <> 51
ORDER BY package_id
"""


def weeks_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The fifty-two-weeks check's query: from the archive's answers when the raw views exist."""
    have_raw = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = 'responses'"
    ).fetchall()[0][0]
    return ANSWERED_WEEKS_SQL if have_raw else WEEKS_SQL
GRID_REFS_SQL = """
SELECT gp.grid_id, gp.package_id FROM core.grid_packages gp
LEFT JOIN core.grids g ON g.id = gp.grid_id
LEFT JOIN core.packages p ON p.id = gp.package_id
WHERE g.id IS NULL OR p.id IS NULL
"""

TABLES_WITH_COUNTS = [t for t in CORE_TABLES if negative_counts_sql(t) is not None]

CORE_CHECK_SPECS = [
    *[_spec("unique_key", t, f"{t}: no two rows share the declared key") for t in CORE_TABLES],
    *[_spec("non_negative_counts", t, f"{t}: count columns are >= 0") for t in TABLES_WITH_COUNTS],
    _spec("fifty_two_weeks", "core.commit_weeks",
          "every package with a good participation answer (and every package with week rows) has weeks 0..51"),
    _spec("memberships_resolve", "core.grid_packages", "every membership points at a known grid and package"),
    _spec(
        "crawl_freshness",
        "core.packages",
        f"the newest successful fetch is at most {FRESHNESS_HOURS:g} hours old",
        blocking=False,
    ),
]


def run_core_checks(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> Iterator[dg.AssetCheckResult]:
    for table in CORE_TABLES:
        yield check_result(table, "unique_key", *count_and_sample(con, unique_key_sql(table)))
    for table in TABLES_WITH_COUNTS:
        yield check_result(table, "non_negative_counts", *count_and_sample(con, negative_counts_sql(table)))
    yield check_result("core.commit_weeks", "fifty_two_weeks", *count_and_sample(con, weeks_sql(con)))
    yield check_result("core.grid_packages", "memberships_resolve", *count_and_sample(con, GRID_REFS_SQL))
    newest = con.execute("SELECT max(last_fetched) FROM core.packages").fetchall()[0][0]
    now = now or datetime.now(UTC)
    fresh = newest is not None and now - newest <= timedelta(hours=FRESHNESS_HOURS)
    yield dg.AssetCheckResult(
        asset_key=core_key("core.packages"),
        check_name="crawl_freshness",
        passed=fresh,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "newest_successful_fetch": str(newest),
            "age_hours": None if newest is None else round((now - newest).total_seconds() / 3600, 2),
            "offending_rows": 0 if fresh else 1,
        },
    )


@dg.multi_asset_check(specs=CORE_CHECK_SPECS, name="core_table_checks", pool=WRITER_POOL)
def core_table_checks(warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
    with warehouse.writer() as con:
        yield from run_core_checks(con)


core_checks = [core_table_checks]
