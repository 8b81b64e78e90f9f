"""Dagster assets for history (a dated snapshot per refresh), the marts views and the published copy."""

from datetime import UTC, datetime

import dagster as dg
from dagster import AssetExecutionContext

from assets.core.assets import core_key
from assets.core.transform import CORE_TABLES
from assets.marts.history import snapshot_history
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from warehouse.ddl import declared
from warehouse.publish import publish

HISTORY_KEY = dg.AssetKey(["history", "package_metrics"])
MART_VIEWS = tuple(name for name in declared()[1] if name.startswith("marts."))
PUBLISHED_KEY = dg.AssetKey(["marts", "published_snapshot"])


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
        rows = snapshot_history(con, context.run.run_id, snapshot_at)
        refreshes = con.execute("SELECT count(*) FROM history.refreshes").fetchall()[0][0]
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "refresh_id": context.run.run_id, "refreshes": int(refreshes)}
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


@dg.asset(
    key=PUBLISHED_KEY,
    deps=[dg.AssetKey(name.split(".")) for name in MART_VIEWS],
    group_name="marts",
    kinds={"duckdb"},
    pool=WRITER_POOL,
    description="Read-only copy of the warehouse (PULSE_HOME/published.duckdb), replaced atomically.",
)
def published_snapshot(pulse: PulseResource, warehouse: WarehouseResource):
    settings = pulse.settings()
    with warehouse.writer() as con:
        path = publish(warehouse.path(), settings.published_path, con=con)
    return dg.MaterializeResult(metadata={"path": str(path), "bytes": path.stat().st_size})


marts_assets = [package_metrics_history, marts_views, published_snapshot]
