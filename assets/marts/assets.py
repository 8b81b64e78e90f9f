"""Dagster assets for history (a dated snapshot per refresh) and the marts views."""

from datetime import UTC, datetime

import dagster as dg
from dagster import AssetExecutionContext

from assets.core.assets import core_key
from assets.core.columns import CORE_TABLES
from assets.core.refresh import consume_pending, pending_changes
from assets.marts.history import snapshot_history
from pipelines.resources import WRITER_POOL, WarehouseResource
from warehouse.ddl import declared

HISTORY_KEY = dg.AssetKey(["history", "package_metrics"])
MART_VIEWS = tuple(name for name in declared()[1] if name.startswith("marts."))


@dg.asset(
    key=HISTORY_KEY,
    deps=[core_key(t) for t in CORE_TABLES],
    group_name="history",
    kinds={"duckdb"},
    pool=WRITER_POOL,
    description="One row per package per refresh (refresh_id = the Dagster run id); re-running a "
    "refresh replaces its rows.",
)
def package_metrics_history(context: AssetExecutionContext, warehouse: WarehouseResource):
    snapshot_at = datetime.now(UTC)
    with warehouse.writer() as con:
        changed = pending_changes(con)  # None: recompute every package
        rows = snapshot_history(con, context.run.run_id, snapshot_at, changed=changed)
        consume_pending(con)
        refreshes = con.execute("SELECT count(*) FROM history.refreshes").fetchall()[0][0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "refresh_id": context.run.run_id,
            "refreshes": int(refreshes),
            "recomputed_packages": "all" if changed is None else len(changed),
        }
    )


@dg.multi_asset(
    name="marts_views",
    specs=[
        dg.AssetSpec(
            dg.AssetKey(name.split(".")),
            deps=[HISTORY_KEY, *[core_key(t) for t in CORE_TABLES]],
            group_name="marts",
            kinds={"duckdb"},
            description=f"View {name} (see warehouse/README.md).",
        )
        for name in MART_VIEWS
    ],
    pool=WRITER_POOL,
    can_subset=False,
)
def marts_views(warehouse: WarehouseResource):
    """The views are (re)created when the warehouse is opened; this step reports their row counts."""
    with warehouse.writer() as con:
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in MART_VIEWS}
    for name, count in counts.items():
        yield dg.MaterializeResult(asset_key=dg.AssetKey(name.split(".")), metadata={"dagster/row_count": count})


# The read-only snapshot is published by the exports group (`exports/published_warehouse`, which
# calls warehouse.publish.publish); it should depend on MARTS_KEYS so history and marts are in it.
MARTS_KEYS = [HISTORY_KEY, *[dg.AssetKey(name.split(".")) for name in MART_VIEWS]]

marts_assets = [package_metrics_history, marts_views]
