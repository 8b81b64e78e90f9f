"""Dagster assets for the core layer: raw archive + catalogue tables -> core.* (one writer step)."""


from datetime import UTC, datetime

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field

from assets.core.columns import CORE_TABLES
from assets.core.refresh import refresh_core
from assets.raw.assets import RAW_KEYS
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from warehouse.ddl import create_raw_views
from warehouse.load import query

CATALOGUE_TABLES = ("categories", "grids", "grid_packages", "packages")
CATALOGUE_DEPS = [dg.AssetKey(["catalogue", t]) for t in CATALOGUE_TABLES]
# every raw source of the registry, every crawl partition of each (core reads the whole archive)
RAW_DEPS = [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in RAW_KEYS.values()]

DESCRIPTIONS = {
    "core.categories": "Catalogue categories (one row per category id).",
    "core.grids": "Catalogue grids (one row per grid id).",
    "core.grid_packages": "Grid memberships between known grids and packages.",
    "core.packages": "One row per catalogue package with what the crawl learnt (API v4 semantics).",
    "core.repositories": "One row per repository (repo_key): what its repository host reports.",
    "core.commit_weeks": "GitHub participation: 52 weekly commit counts per package (0 = oldest week).",
    "core.participants": "Contributors per package in GitHub's order, anonymous excluded, bots flagged.",
    "core.releases": "PyPI releases per package.",
    "core.downloads_daily": "PyPI downloads per package and day, mirrors excluded (pypistats; last 180 days).",
    "core.crawl_errors": "One row per package and failing request: kind, status, first/last seen, attempts; "
                         "plus informational notices (severity `info`, e.g. `renamed`).",
    "core.endpoint_errors": "One row per source endpoint not working as a whole (an open circuit of the newest "
                            "crawl that used it), with its evidence; never turned into package facts.",
}


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


@dg.multi_asset(
    name="core_tables",
    specs=[
        dg.AssetSpec(
            core_key(name),
            deps=CATALOGUE_DEPS + RAW_DEPS,
            group_name="core",
            kinds={"duckdb", "polars"},
            description=DESCRIPTIONS[name],
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
    raw_dir = pulse.settings().raw_dir
    with warehouse.writer() as con:
        catalogue = read_catalogue(con)
        refresh = refresh_core(con, catalogue, raw_dir, now=datetime.now(UTC), full=config.full)
        create_raw_views(con, raw_dir)
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in CORE_TABLES}
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
            "dagster/row_count": int(counts[name]),
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
        yield dg.MaterializeResult(asset_key=core_key(name), metadata=metadata)
    context.log.info("core refresh %d (%s): %s", refresh.version, refresh.mode, refresh.written)


core_assets = [core_tables]
