"""History snapshot: one row per package per refresh, written in SQL straight from the core tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import polars as pl

SNAPSHOT_SQL = """
INSERT INTO history.package_metrics BY NAME
WITH weeks AS (
    SELECT package_id, sum(commits)::BIGINT AS commits_52w FROM core.commit_weeks GROUP BY package_id
), people AS (
    SELECT package_id, count(*)::INTEGER AS contributors FROM core.participants GROUP BY package_id
), latest AS (
    SELECT package_id, arg_max(version, upload_time) AS latest_release, max(upload_time) AS latest_release_at
    FROM core.releases WHERE NOT yanked AND upload_time IS NOT NULL GROUP BY package_id
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
       NULL::DOUBLE AS health_score
FROM core.packages p
LEFT JOIN core.repositories r ON r.repo_key = p.repo_key
LEFT JOIN weeks w ON w.package_id = p.id
LEFT JOIN people c ON c.package_id = p.id
LEFT JOIN latest l ON l.package_id = p.id
{where}
"""

CARRY_SQL = """
INSERT INTO history.package_metrics BY NAME
SELECT * REPLACE ($refresh_id AS refresh_id, $snapshot_at::TIMESTAMPTZ AS snapshot_at)
FROM history.package_metrics
WHERE refresh_id = $base
  AND package_id NOT IN (SELECT package_id FROM __changed)
  AND package_id IN (SELECT id FROM core.packages)
"""


def snapshot_history(
    con: duckdb.DuckDBPyConnection,
    refresh_id: str,
    snapshot_at: datetime,
    *,
    changed: Sequence[int] | None = None,
) -> int:
    """Append (idempotently: the refresh id's rows are replaced) this refresh's package metrics.

    With `changed` (the package ids an incremental core refresh rebuilt), only those packages are
    recomputed; the others carry their metrics over from the latest earlier refresh. Without an
    earlier refresh, every package is computed.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM history.package_metrics WHERE refresh_id = ?", [refresh_id])
        con.execute("DELETE FROM history.refreshes WHERE refresh_id = ?", [refresh_id])
        base = con.execute(
            "SELECT refresh_id FROM history.refreshes ORDER BY snapshot_at DESC, refresh_id DESC LIMIT 1"
        ).fetchall()
        params = {"refresh_id": refresh_id, "snapshot_at": snapshot_at}
        if changed is not None and base:
            con.register("__changed", pl.DataFrame({"package_id": list(changed)}, schema={"package_id": pl.Int64}))
            try:
                con.execute(CARRY_SQL, {**params, "base": base[0][0]})
                con.execute(SNAPSHOT_SQL.format(where="WHERE p.id IN (SELECT package_id FROM __changed)"), params)
            finally:
                con.unregister("__changed")
        else:
            con.execute(SNAPSHOT_SQL.format(where=""), params)
        count = con.execute(
            "SELECT count(*) FROM history.package_metrics WHERE refresh_id = ?", [refresh_id]
        ).fetchall()[0][0]
        con.execute(
            "INSERT INTO history.refreshes (refresh_id, snapshot_at, packages) VALUES (?, ?, ?)",
            [refresh_id, snapshot_at, count],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(count)
