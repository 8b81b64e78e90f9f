"""History snapshot: one row per package per refresh, written in SQL straight from the core tables.

Incremental snapshots rest on one invariant: the newest refresh in `history.refreshes` describes
the core tables as they were at the core version history last consumed (`main.history_cursor`,
history's own table, written in the snapshot's transaction), except for the packages core rebuilt
since (`assets.core.refresh.core_changes(con, since=that version)`, a typed `CoreChanges`). So a
snapshot recomputes those packages (an `INSERT ... SELECT` limited to them, aggregates included)
and copies everything else from the newest refresh. Re-running the newest refresh id keeps that
refresh's own rows as the base (they are updated in place, never deleted first), so a re-run can
never fall back to an older snapshot. A failed snapshot records nothing, so the next one catches up
on every core refresh since the last good one.

`health_score` comes from `health.package_scores` (the health asset runs before history) for every
row of every snapshot, recomputed and carried rows alike: a score depends on the scoring time, so a
carried row takes today's score (one join), and an incremental snapshot still equals a full one.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from assets.core.refresh import CoreChanges
from warehouse.load import query

CURSOR_DDL = "CREATE TABLE IF NOT EXISTS main.history_cursor (core_version BIGINT)"

# `{only}` limits every aggregate to the recomputed packages (empty for a full snapshot): DuckDB
# would otherwise aggregate all of core.commit_weeks before joining
SNAPSHOT_SQL = """
INSERT INTO history.package_metrics BY NAME
WITH weeks AS (
    SELECT package_id, sum(commits)::BIGINT AS commits_52w FROM core.commit_weeks {only} GROUP BY package_id
), people AS (
    SELECT package_id, count(*)::INTEGER AS contributors FROM core.participants {only} GROUP BY package_id
), latest AS (
    SELECT package_id, arg_max(version, upload_time) AS latest_release, max(upload_time) AS latest_release_at
    FROM core.releases WHERE NOT yanked AND upload_time IS NOT NULL {and_only} GROUP BY package_id
)
SELECT $refresh_id AS refresh_id,
       $snapshot_at::TIMESTAMPTZ AS snapshot_at,
       p.id AS package_id,
       r.stars,
       r.forks,
       r.watchers,
       r.open_issues,
       coalesce(w.commits_52w, 0) AS commits_52w,
       coalesce(c.contributors, 0) AS contributors,
       p.last_updated AS last_commit,
       coalesce(p.pypi_version, l.latest_release) AS latest_release,
       l.latest_release_at,
       p.is_archived AS archived,
       p.is_deprecated AS deprecated,
       p.pypi_status,
       p.pypi_downloads,
       h.health_score
FROM core.packages p
LEFT JOIN core.repositories r ON r.repo_key = p.repo_key
LEFT JOIN health.package_scores h ON h.package_id = p.id
LEFT JOIN weeks w ON w.package_id = p.id
LEFT JOIN people c ON c.package_id = p.id
LEFT JOIN latest l ON l.package_id = p.id
{where}
"""

CHANGED = "(SELECT package_id FROM __changed)"

# a re-run of the newest refresh keeps its unchanged rows in place: they take today's health score too
RESCORE_SQL = """
UPDATE history.package_metrics m SET health_score = h.health_score
FROM (SELECT m2.package_id, h2.health_score FROM history.package_metrics m2
      LEFT JOIN health.package_scores h2 ON h2.package_id = m2.package_id
      WHERE m2.refresh_id = $refresh_id) h
WHERE m.refresh_id = $refresh_id AND m.package_id = h.package_id
  AND m.health_score IS DISTINCT FROM h.health_score
"""

# Carried rows keep their core metrics but take today's health score: health depends on the scoring
# time (ages, end-of-life dates) and on the health config, so it changes for every package on every
# refresh, and a carried row must equal what a full snapshot would write (one join, no recomputation).
# (ANTI/SEMI joins rather than NOT IN / IN: no NULL semantics to honour, measurably cheaper)
CARRY_SQL = """
INSERT INTO history.package_metrics BY NAME
SELECT m.* REPLACE ($refresh_id AS refresh_id, $snapshot_at::TIMESTAMPTZ AS snapshot_at,
                    h.health_score AS health_score)
FROM history.package_metrics m
ANTI JOIN __changed c ON c.package_id = m.package_id
SEMI JOIN core.packages p ON p.id = m.package_id
LEFT JOIN health.package_scores h ON h.package_id = m.package_id
WHERE m.refresh_id = $base
  AND m.snapshot_at = $base_at  -- rows are appended in time order: lets DuckDB skip older row groups
"""


def _snapshot_sql(only_changed: bool) -> str:
    if not only_changed:
        return SNAPSHOT_SQL.format(only="", and_only="", where="")
    return SNAPSHOT_SQL.format(
        only=f"WHERE package_id IN {CHANGED}",
        and_only=f"AND package_id IN {CHANGED}",
        where=f"WHERE p.id IN {CHANGED}",
    )


def latest_refresh(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime] | None:
    """(refresh_id, snapshot_at) of the newest refresh, if any."""
    rows = con.execute(
        "SELECT refresh_id, snapshot_at FROM history.refreshes ORDER BY snapshot_at DESC, refresh_id DESC LIMIT 1"
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def consumed_core_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The core version the newest snapshot reflects (None: no snapshot has consumed core yet)."""
    con.execute(CURSOR_DDL)
    rows = con.execute("SELECT max(core_version) FROM main.history_cursor").fetchall()
    return None if rows[0][0] is None else int(rows[0][0])


def snapshot_history(
    con: duckdb.DuckDBPyConnection,
    refresh_id: str,
    snapshot_at: datetime,
    *,
    changes: CoreChanges | None = None,
) -> int:
    """Append (idempotently: the refresh id's rows are replaced) this refresh's package metrics.

    With incremental `changes` (what core rebuilt since the version the newest snapshot consumed),
    only those packages are recomputed; the others carry their metrics over from the newest
    refresh, which may be `refresh_id` itself (a re-run). Without an earlier refresh, or with
    `changes` None or full, every package is computed. Either way the rows equal a full snapshot.
    With `changes`, their core version is recorded as consumed in the same transaction.
    """
    changed = None if changes is None or changes.full else changes.package_ids
    params = {"refresh_id": refresh_id, "snapshot_at": snapshot_at}
    con.execute(CURSOR_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        latest = latest_refresh(con)
        if changed is not None and latest is not None:
            base, base_at = latest
            # (a temp table made in the transaction: a rollback drops it too)
            con.execute("CREATE OR REPLACE TEMP TABLE __changed AS SELECT unnest(?::BIGINT[]) AS package_id",
                        [[int(i) for i in changed]])
            if base == refresh_id:
                # a re-run of the newest refresh: its unchanged rows are the base; keep them
                con.execute(
                    f"DELETE FROM history.package_metrics WHERE refresh_id = $refresh_id AND "
                    f"(package_id IN {CHANGED} OR package_id NOT IN (SELECT id FROM core.packages))",
                    {"refresh_id": refresh_id},
                )
                con.execute(
                    "UPDATE history.package_metrics SET snapshot_at = $snapshot_at::TIMESTAMPTZ "
                    "WHERE refresh_id = $refresh_id",
                    params,
                )
                con.execute(RESCORE_SQL, {"refresh_id": refresh_id})
            else:
                con.execute("DELETE FROM history.package_metrics WHERE refresh_id = ?", [refresh_id])
                con.execute(CARRY_SQL, {**params, "base": base, "base_at": base_at})
            con.execute(_snapshot_sql(only_changed=True), params)
            con.execute("DROP TABLE __changed")
        else:
            con.execute("DELETE FROM history.package_metrics WHERE refresh_id = ?", [refresh_id])
            con.execute(_snapshot_sql(only_changed=False), params)
        count = con.execute(
            "SELECT count(*) FROM history.package_metrics WHERE refresh_id = ?", [refresh_id]
        ).fetchall()[0][0]
        con.execute("DELETE FROM history.refreshes WHERE refresh_id = ?", [refresh_id])
        con.execute(
            "INSERT INTO history.refreshes (refresh_id, snapshot_at, packages) VALUES (?, ?, ?)",
            [refresh_id, snapshot_at, count],
        )
        if changes is not None:
            con.execute("DELETE FROM main.history_cursor")
            con.execute("INSERT INTO main.history_cursor VALUES (?)", [changes.version])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(count)


def history_rows(con: duckdb.DuckDBPyConnection, refresh_id: str) -> pl.DataFrame:
    """One refresh's metrics without its id and time, ordered by package (to compare snapshots)."""
    return query(
        con,
        "SELECT * EXCLUDE (refresh_id, snapshot_at) FROM history.package_metrics WHERE refresh_id = ? "
        "ORDER BY package_id",
        [refresh_id],
    )
