"""The catalogue as one Dagster step: read PULSE_CATALOGUE, build the frames, replace the tables.

One read of the source produces all five tables (they must agree with each other), so they are one
multi-asset and are written in one transaction. (No `from __future__ import annotations` here:
Dagster inspects the `context` annotation at definition time.)
"""

import time

import dagster as dg
import polars as pl

from assets.catalogue.readers import read_catalogue
from assets.catalogue.transform import TABLES, CatalogueFrames, build_catalogue, reject_codes, repo_problem_codes
from pipelines import progress
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from warehouse.load import replace_tables

CATALOGUE_KEYS = {name: dg.AssetKey(["catalogue", name]) for name in TABLES}

_DESCRIPTIONS = {
    "categories": "Catalogue categories (App, Framework, Project, Other on djangopackages).",
    "grids": "Comparison grids of the catalogue.",
    "grid_packages": "Grid memberships between known grids and packages.",
    "packages": "Catalogue packages with the parsed repository (host/owner/name/key) and PyPI name; "
                "`repo_url_problem` / `pypi_url_problem` say why a repository / PyPI project is not crawled.",
    "rejects": "Catalogue rows that could not be used, with the reason and the record as JSON.",
}


def _markdown_preview(rejects: pl.DataFrame, rows: int = 20) -> str:
    if rejects.is_empty():
        return "No rejects."
    lines = ["| kind | source_id | slug | reason |", "|---|---|---|---|"]
    for kind, source_id, slug, reason in rejects.head(rows).select("kind", "source_id", "slug", "reason").iter_rows():
        cells = [str(kind), "" if source_id is None else str(source_id), slug or "", reason]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")[:160] for c in cells) + " |")
    if rejects.height > rows:
        lines.append(f"\n... and {rejects.height - rows} more (table `catalogue.rejects`).")
    return "\n".join(lines)


def catalogue_metadata(frames: CatalogueFrames, source: str, source_kind: str,
                       seconds: float) -> dict[str, dict[str, object]]:
    """Metadata per table name for the MaterializeResults (also handy for the CLI)."""
    packages = frames.packages
    hosts = packages.get_column("repo_host").fill_null("none").value_counts(sort=True)
    meta: dict[str, dict[str, object]] = {name: {"dagster/row_count": getattr(frames, name).height}
                                          for name in TABLES}
    meta["packages"].update({
        "source": source,
        "source_kind": source_kind,
        "seconds": round(seconds, 3),
        "repo_hosts": dg.MetadataValue.json({str(h): int(n) for h, n in hosts.iter_rows()}),
        "repo_url_problems": dg.MetadataValue.json(repo_problem_codes(packages)),
        "pypi_url_problems": dg.MetadataValue.json(repo_problem_codes(packages, "pypi_url_problem")),
        "with_pypi_name": packages.get_column("pypi_name").is_not_null().sum(),
        "with_usage": int((packages.get_column("usage") > 0).sum()),
        "deprecated": int(packages.get_column("deprecated").sum()),
        "notes": dg.MetadataValue.json(frames.notes),
    })
    meta["rejects"].update({
        "rejects_by_reason": dg.MetadataValue.json(reject_codes(frames.rejects)),
        "preview": dg.MetadataValue.md(_markdown_preview(frames.rejects)),
    })
    return meta


@dg.multi_asset(
    name="catalogue",
    specs=[
        dg.AssetSpec(key, group_name="catalogue", description=_DESCRIPTIONS[name], kinds={"duckdb", "polars"})
        for name, key in CATALOGUE_KEYS.items()
    ],
    pool=WRITER_POOL,
    description="Reads PULSE_CATALOGUE (djangopackages API v4, JSON or CSV) into the catalogue schema.",
)
def catalogue(context: dg.AssetExecutionContext, pulse: PulseResource, warehouse: WarehouseResource):
    settings = pulse.settings()
    started = time.perf_counter()
    progress.report("catalogue", 0, 1)
    records = read_catalogue(settings.catalogue)
    frames = build_catalogue(records)
    with warehouse.writer() as con:
        replace_tables(con, frames.tables())
    seconds = time.perf_counter() - started
    progress.report("catalogue", 1, 1)
    context.log.info(
        f"catalogue from {records.source_kind} {settings.catalogue}: {frames.packages.height} packages, "
        f"{frames.grids.height} grids, {frames.categories.height} categories, {frames.rejects.height} rejects "
        f"in {seconds:.2f}s"
    )
    metadata = catalogue_metadata(frames, settings.catalogue, records.source_kind, seconds)
    for name, key in CATALOGUE_KEYS.items():
        yield dg.MaterializeResult(asset_key=key, metadata=metadata[name])
