"""Dagster assets for the core layer: raw archive + catalogue tables -> core.* (one writer step)."""


from datetime import UTC, datetime

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field

from assets.core.columns import CORE_TABLES
from assets.core.refresh import core_state, refresh_core
from assets.metadata import table_definition, tables_metadata
from assets.previews import endpoint_errors, most_starred, newest_crawl_errors
from assets.raw.assets import RAW_KEYS
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from warehouse.ddl import create_raw_views
from warehouse.load import query
from warehouse.raw_store import RawStoreError, SyncStats, pull_for_core

CATALOGUE_TABLES = ("categories", "grids", "grid_packages", "packages")
CATALOGUE_DEPS = [dg.AssetKey(["catalogue", t]) for t in CATALOGUE_TABLES]
# every raw source of the registry, every crawl partition of each (core reads the whole archive)
RAW_DEPS = [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in RAW_KEYS.values()]


def core_key(name: str) -> dg.AssetKey:
    """"core.packages" -> AssetKey(["core", "packages"])."""
    return dg.AssetKey(name.split("."))


class CoreConfig(dg.Config):
    full: bool = Field(default=False, description="Rebuild every core table from the whole archive "
                                                  "(`pulse refresh --replay`).")


def read_catalogue(con) -> dict:
    missing = [
        t
        for t in CATALOGUE_TABLES
        if not con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'catalogue' AND table_name = ?", [t]
        ).fetchall()
    ]
    if missing:
        raise dg.Failure(
            f"catalogue tables missing from the warehouse: {', '.join(missing)} (materialize the catalogue first)"
        )
    return {t: query(con, f"SELECT * FROM catalogue.{t}") for t in CATALOGUE_TABLES}


def _pull_raw(settings, con, context) -> SyncStats | None:
    """PULSE_RAW_URL: download the batches missing locally before core reads the archive; a store that
    cannot be read fails the step unless the local cache holds all core was built from
    (warehouse.raw_store.pull_for_core). None when unset."""
    try:
        return pull_for_core(settings, core_state(con).files, log=context.log)
    except RawStoreError as exc:
        raise dg.Failure(description=str(exc)) from None


@dg.multi_asset(
    name="core_tables",
    specs=[
        dg.AssetSpec(
            core_key(name),
            deps=CATALOGUE_DEPS + RAW_DEPS,
            group_name="core",
            kinds={"duckdb", "polars"},
            **table_definition(name),
        )
        for name in CORE_TABLES
    ],
    pool=WRITER_POOL,
    can_subset=False,
)
def core_tables(context: AssetExecutionContext, config: CoreConfig, pulse: PulseResource,
                warehouse: WarehouseResource):
    """Parse the newest good raw responses and join them onto the catalogue; write the core tables in
    one transaction (a failure leaves the previous tables in place). Incremental when only new
    archive batches arrived since the last build and the catalogue is unchanged (assets.core.refresh).
    """
    settings = pulse.settings()
    raw_dir = settings.raw_dir
    with warehouse.writer() as con:
        catalogue = read_catalogue(con)
        synced = _pull_raw(settings, con, context)
        refresh = refresh_core(con, catalogue, raw_dir, now=datetime.now(UTC), full=config.full)
        create_raw_views(con, raw_dir)
        described = tables_metadata(con, CORE_TABLES)  # row counts, column schemas (assets.metadata)
        previews = {"core.packages": {"most_starred": most_starred(con)},
                    "core.crawl_errors": {"newest": newest_crawl_errors(con)},
                    "core.endpoint_errors": {"preview": endpoint_errors(con)}}
        kinds = dict(
            con.execute("SELECT kind, count(*) FROM core.crawl_errors WHERE severity = 'error' "
                        "GROUP BY kind ORDER BY kind").fetchall()
        )
        notices = dict(
            con.execute("SELECT kind, count(*) FROM core.crawl_errors WHERE severity <> 'error' "
                        "GROUP BY kind ORDER BY kind").fetchall()
        )
        stale = con.execute("SELECT count(*) FROM core.packages WHERE is_stale").fetchall()[0][0]
    for name in CORE_TABLES:
        metadata: dict[str, object] = {
            **described[name],
            **previews.get(name, {}),
            "rows_written": int(refresh.written.get(name, 0)),
            "refresh_mode": refresh.mode,
            "core_version": refresh.version,  # history consumes core's changes up to this version
        }
        if name == "core.crawl_errors":
            metadata["by_kind"] = dg.MetadataValue.json(kinds)  # failures only (severity `error`)
            metadata["errors"] = int(sum(kinds.values()))
            metadata["notices"] = dg.MetadataValue.json(notices)  # e.g. `renamed` (severity `info`)
        if name == "core.packages":
            metadata["stale_packages"] = int(stale)
            if synced is not None:  # PULSE_RAW_URL: what was pulled from object storage
                metadata.update(synced.metadata())
        yield dg.MaterializeResult(asset_key=core_key(name), metadata=metadata)
    context.log.info("core refresh %d (%s): %s", refresh.version, refresh.mode, refresh.written)


core_assets = [core_tables]
