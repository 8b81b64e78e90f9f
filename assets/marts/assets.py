"""Dagster assets for the marts: analytics views over core, health and history (declared in marts.sql)."""

import dagster as dg

from assets.core.assets import core_key
from assets.core.columns import CORE_TABLES
from assets.health.assets import HEALTH_KEYS
from assets.history.assets import HISTORY_KEY
from assets.metadata import table_definition, tables_metadata
from pipelines.resources import WRITER_POOL, WarehouseResource
from warehouse.ddl import declared

MART_VIEWS = tuple(name for name in declared()[1] if name.startswith("marts."))


@dg.multi_asset(
    name="marts_views",
    specs=[
        dg.AssetSpec(
            dg.AssetKey(name.split(".")),
            deps=[HISTORY_KEY, *HEALTH_KEYS, *[core_key(t) for t in CORE_TABLES]],
            group_name="marts",
            kinds={"duckdb"},
            **table_definition(name),
        )
        for name in MART_VIEWS
    ],
    pool=WRITER_POOL,
    can_subset=False,
)
def marts_views(warehouse: WarehouseResource):
    """The views are (re)created when the warehouse is opened; this step reports their row counts."""
    with warehouse.writer() as con:
        described = tables_metadata(con, MART_VIEWS)  # row counts, column schemas (assets.metadata)
    for name, metadata in described.items():
        yield dg.MaterializeResult(asset_key=dg.AssetKey(name.split(".")), metadata=metadata)


marts_assets = [marts_views]
