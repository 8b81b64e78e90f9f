"""The end of a run: publish the read-only snapshot, then lay out the API v4 tree from it.

The export reads the published snapshot, not the live warehouse: it needs no write lock and
shows exactly what `pulse query` and `pulse serve` show.
"""

from __future__ import annotations

import dagster as dg

from assets.core.assets import core_key
from assets.core.columns import CORE_TABLES
from assets.exports.api_v4 import ApiContext, load_api_tables, render_all, write_tree
from assets.exports.health_api import load_health_documents
from assets.exports.releases import Release, publish_release
from assets.health.assets import HEALTH_KEYS
from assets.history.assets import HISTORY_KEY
from assets.marts.assets import MART_VIEWS
from assets.metadata import OWNERS
from assets.previews import table_sizes
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from warehouse.db import connect_reader

# everything the snapshot holds: every core table, the scores, history and every mart
PUBLISHED_DEPS = [
    *(core_key(table) for table in CORE_TABLES),
    *HEALTH_KEYS,
    HISTORY_KEY,
    *(dg.AssetKey(name.split(".")) for name in MART_VIEWS),
]

@dg.asset(
    key=["exports", "published_warehouse"],
    group_name="exports",
    deps=PUBLISHED_DEPS,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    owners=OWNERS,
    description="Read-only copy of the warehouse (PULSE_HOME/published.duckdb) for readers.",
)
def published_warehouse(pulse: PulseResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = pulse.settings()
    warehouse.publish(settings.published_path)  # a local file, wherever the warehouse lives
    con = connect_reader(settings.published_path)
    try:  # what readers now see, table by table
        tables = table_sizes(con, ["catalogue", "core", "health", "history"])
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={"path": str(settings.published_path), "bytes": settings.published_path.stat().st_size,
                  "tables": tables}
    )


@dg.asset(
    key=["exports", "api_v4"],
    group_name="exports",
    deps=[published_warehouse],
    kinds={"json"},
    owners=OWNERS,
    description="djangopackages.org API v4 JSON tree under PULSE_HOME/export/api/v4/, with the score and "
                "health documents (packages/<id>/score/, packages/<id>/health/, grids/<id>/health/).",
)
def api_v4(pulse: PulseResource) -> dg.MaterializeResult:
    settings = pulse.settings()
    ctx = ApiContext.create(settings.public_url, settings.timezone)
    con = connect_reader(settings.published_path)
    try:
        tables = load_api_tables(con)
        documents = load_health_documents(con, ctx)
    finally:
        con.close()
    counts = write_tree(settings.export_dir, render_all(tables, ctx), ctx, documents.items())
    return dg.MaterializeResult(metadata={"path": str(settings.export_dir / "api" / "v4"), **counts,
                                          "health_documents": len(documents)})


@dg.asset(
    key=["exports", "dataset_release"],
    group_name="exports",
    deps=[published_warehouse],
    kinds={"parquet", "csv", "json"},
    owners=OWNERS,
    description="Versioned dataset release of the published snapshot under PULSE_HOME/releases/<release id>/: "
                "every core, health, history and marts table as Parquet, CSV and JSON Lines with a Frictionless "
                "datapackage.json; `latest` moves atomically, old releases pruned (PULSE_RELEASES_KEEP).",
)
def dataset_release(pulse: PulseResource) -> dg.MaterializeResult:
    settings = pulse.settings()
    release = publish_release(settings.published_path, settings.releases_dir, settings.releases_keep)
    return dg.MaterializeResult(metadata=release_metadata(release))


def release_metadata(release: Release) -> dict[str, dg.RawMetadataValue]:
    """What the UI shows for a release: id, folder, refresh, totals and one table of files."""
    return {
        "release_id": release.release_id,
        "path": dg.MetadataValue.path(str(release.path)),
        "refresh_id": release.refresh_id or "",
        "files": len(release.files),
        "bytes": release.bytes,
        "rows": sum(release.rows.values()),
        "pruned": ", ".join(release.pruned),
        "row_counts": dg.MetadataValue.json(release.rows),
        "file_list": dg.MetadataValue.md("\n".join(
            ["| file | bytes | sha256 |", "|---|---:|---|"]
            + [f"| {name} | {facts.bytes} | `{facts.sha256[:16]}…` |" for name, facts in sorted(release.files.items())]
        )),
    }
