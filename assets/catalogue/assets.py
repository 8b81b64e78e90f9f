"""The catalogue as one Dagster step: read PULSE_CATALOGUE, build the frames, replace the tables.

One read of the source produces all five tables (they must agree with each other), so they are one
multi-asset and are written in one transaction. (No `from __future__ import annotations` here:
Dagster inspects the `context` annotation at definition time.)

The read is applied only when the guard (`guard.judge_catalogue`) finds it complete and plausible.
Otherwise the stored tables stay untouched, no materialization is recorded, and the blocking check
`catalogue/packages:plausible` fails, so the step fails and nothing downstream runs (crawl, core,
history, marts, publish, exports): the published snapshot and the export tree stay as they were.
The check's metadata carries the one-line reason (`reason`), the verdict (`kind`) and the packages
kept (`stored_packages`), which `pulse refresh` reads for its summary and exit code.
"""

import time

import dagster as dg
import duckdb
import polars as pl
from pydantic import Field

from assets.catalogue.guard import Verdict, judge_catalogue
from assets.catalogue.readers import CatalogueRecords, read_catalogue
from assets.catalogue.transform import TABLES, CatalogueFrames, build_catalogue, reject_codes, repo_problem_codes
from assets.metadata import table_definition, tables_metadata
from pipelines import progress
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from pipelines.sources.djangopackages import CatalogueError
from warehouse.load import replace_tables

CATALOGUE_KEYS = {name: dg.AssetKey(["catalogue", name]) for name in TABLES}
PLAUSIBLE_CHECK = "plausible"
PLAUSIBLE_KEY = dg.AssetCheckKey(CATALOGUE_KEYS["packages"], PLAUSIBLE_CHECK)


class CatalogueConfig(dg.Config):
    """Run config of the catalogue step (`pulse refresh --accept-catalogue-change` sets it)."""

    accept_change: bool = Field(
        default=False,
        description="Apply a catalogue that shrank by more than PULSE_CATALOGUE_MAX_SHRINK (a real change). "
                    "An incomplete or empty read is never applied.")


def stored_packages(con) -> int:
    """Packages in the stored catalogue (0 when none is stored yet)."""
    try:
        return int(con.execute("SELECT count(*) FROM catalogue.packages").fetchone()[0])
    except duckdb.CatalogException:  # no table yet: nothing stored
        return 0


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


def _check_result(verdict: Verdict, source: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=CATALOGUE_KEYS["packages"],
        check_name=PLAUSIBLE_CHECK,
        passed=verdict.apply,
        severity=dg.AssetCheckSeverity.ERROR,
        description=verdict.line,
        metadata={
            "reason": verdict.line,
            "kind": verdict.kind,
            "read_packages": -1 if verdict.packages is None else verdict.packages,
            "stored_packages": verdict.stored,
            "overridable": verdict.overridable,
            "source": source,
        },
    )


@dg.multi_asset(
    name="catalogue",
    specs=[
        dg.AssetSpec(key, group_name="catalogue", kinds={"duckdb", "polars"},
                     skippable=True,  # a refused read materializes nothing
                     **table_definition(f"catalogue.{name}"))
        for name, key in CATALOGUE_KEYS.items()
    ],
    check_specs=[dg.AssetCheckSpec(
        PLAUSIBLE_CHECK, asset=CATALOGUE_KEYS["packages"], blocking=True,
        description="The catalogue read was complete (every page, `count` = records) and plausible (not empty, "
                    "not shrunk by more than PULSE_CATALOGUE_MAX_SHRINK); else the stored one is kept and "
                    "nothing downstream runs.",
    )],
    pool=WRITER_POOL,
    description="Reads PULSE_CATALOGUE (djangopackages API v4, JSON or CSV) into the catalogue schema, "
                "when the read is complete and plausible.",
)
def catalogue(context: dg.AssetExecutionContext, config: CatalogueConfig, pulse: PulseResource,
              warehouse: WarehouseResource):
    settings = pulse.settings()
    started = time.perf_counter()
    progress.report("catalogue", 0, 1)
    records: CatalogueRecords | None = None
    frames: CatalogueFrames | None = None
    described: dict[str, dict] = {}  # table metadata of what was written (assets.metadata)
    try:
        records = read_catalogue(settings.catalogue)
    except CatalogueError as exc:
        failure: CatalogueError | None = exc
    else:
        failure = None
        frames = build_catalogue(records)
    with warehouse.writer() as con:
        stored = stored_packages(con)
        verdict = judge_catalogue(failure or records, stored, settings.catalogue_max_shrink,
                                  packages=None if frames is None else frames.packages.height,
                                  accept=config.accept_change)
        if verdict.apply and frames is not None:
            replace_tables(con, frames.tables())
            described = tables_metadata(con, [f"catalogue.{name}" for name in TABLES])
    seconds = time.perf_counter() - started
    progress.report("catalogue", 1, 1)
    if not verdict.apply or frames is None or records is None:
        context.log.error(f"{verdict.line}; the stored catalogue ({stored} packages) is kept")
        yield _check_result(verdict, settings.catalogue)
        return
    if verdict.kind == "accepted":
        context.log.warning(verdict.line)
    context.log.info(
        f"catalogue from {records.source_kind} {settings.catalogue}: {frames.packages.height} packages, "
        f"{frames.grids.height} grids, {frames.categories.height} categories, {frames.rejects.height} rejects "
        f"in {seconds:.2f}s"
    )
    metadata = catalogue_metadata(frames, settings.catalogue, records.source_kind, seconds)
    metadata["packages"]["verdict"] = verdict.line
    for name, key in CATALOGUE_KEYS.items():
        yield dg.MaterializeResult(asset_key=key, metadata={**described[f"catalogue.{name}"], **metadata[name]})
    yield _check_result(verdict, settings.catalogue)
