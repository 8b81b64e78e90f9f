"""Dagster asset for history: a dated snapshot of every package's metrics per refresh.

History learns what core rebuilt from core's change log (`core_changes`, a typed `CoreChanges`),
starting after the core version it consumed last (kept in history's own `main.history_cursor`). If a
snapshot fails and core refreshes again, the next snapshot covers both core refreshes.
"""

from datetime import UTC, datetime

import dagster as dg
from dagster import AssetExecutionContext

from assets.core.assets import core_key
from assets.core.columns import CORE_TABLES
from assets.core.refresh import core_changes
from assets.health.assets import HEALTH_KEYS
from assets.history.history import consumed_core_version, snapshot_history
from assets.metadata import table_definition, table_metadata
from pipelines.resources import WRITER_POOL, WarehouseResource

HISTORY_KEY = dg.AssetKey(["history", "package_metrics"])


@dg.asset(
    key=HISTORY_KEY,
    deps=[*[core_key(t) for t in CORE_TABLES], *HEALTH_KEYS],
    group_name="history",
    kinds={"duckdb"},
    pool=WRITER_POOL,
    **table_definition("history.package_metrics"),
)
def package_metrics_history(context: AssetExecutionContext, warehouse: WarehouseResource):
    snapshot_at = datetime.now(UTC)
    with warehouse.writer() as con:
        changes = core_changes(con, since=consumed_core_version(con))
        rows = snapshot_history(con, context.run.run_id, snapshot_at, changes=changes)
        refreshes = con.execute("SELECT count(*) FROM history.refreshes").fetchall()[0][0]
        described = table_metadata(con, "history.package_metrics")  # the whole table: every refresh
    return dg.MaterializeResult(
        metadata={
            **described,
            "rows_written": rows,
            "refresh_id": context.run.run_id,
            "refreshes": int(refreshes),
            "core_version": changes.version,
            "recomputed_packages": "all" if changes.full else len(changes.package_ids),
        }
    )


history_assets = [package_metrics_history]
