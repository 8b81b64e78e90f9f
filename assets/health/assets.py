"""Dagster assets for the health room: core -> health.package_scores, health.grid_scores (one writer step).

Scored as of the data: the newest upstream answer core holds (`max(core.packages.last_fetched)`; the
run's start before any crawl; `HealthScoresConfig.now` overrides it). So a replay, a run whose crawl
had nothing due, or a run during an outage scores the same data to the same numbers, and the
published health documents change only when the data does. The health config is the `pulse`
resource's (`PULSE_HEALTH_CONFIG`, else the shipped health.toml): changing that file and running
`pulse refresh --replay` recomputes every score from the warehouse, without a crawl.
"""


from datetime import UTC, datetime

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from pydantic import Field

from assets.core.assets import core_key
from assets.core.columns import CORE_TABLES
from assets.health.scoring import GRID_SCORES, PACKAGE_SCORES, config_from, score_warehouse
from assets.metadata import table_definition, tables_metadata
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource

PACKAGE_SCORES_KEY = dg.AssetKey(["health", "package_scores"])
GRID_SCORES_KEY = dg.AssetKey(["health", "grid_scores"])
HEALTH_KEYS = [PACKAGE_SCORES_KEY, GRID_SCORES_KEY]


class HealthScoresConfig(dg.Config):
    now: str | None = Field(default=None, description="Score as of this ISO time (default: the newest upstream "
                            "answer in core, else the run's start).")


def run_started(context: AssetExecutionContext) -> datetime:
    """When this run started (the same `now` for every step of a run), else the current time."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.start_time if record is not None else None
    return datetime.fromtimestamp(started, UTC) if started else datetime.now(UTC)


def data_as_of(con) -> datetime | None:
    """The newest upstream answer core holds (None before the first crawl)."""
    newest = con.execute("SELECT max(last_fetched) FROM core.packages").fetchone()[0]
    return newest.astimezone(UTC) if newest is not None else None


def _markdown_table(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width + "\n"
    return head + "".join("| " + " | ".join("" if v is None else str(v) for v in row) + " |\n"
                          for row in frame.iter_rows())


def distribution_markdown(scores: pl.Series) -> str:
    """A histogram of the health scores by 10-point bands (100 falls in 90-100)."""
    values = scores.drop_nulls()
    counts = (values.to_frame("s").select((pl.col("s") // 10).clip(0, 9).cast(pl.Int32).alias("band"))
              .group_by("band").len())
    by_band = dict(counts.iter_rows())
    top = max(by_band.values(), default=0)
    lines = ["| band | packages | |", "|---|---:|---|"]
    for band in range(10):
        n = by_band.get(band, 0)
        bar = "█" * (round(30 * n / top) if top else 0)
        label = f"{band * 10}-{band * 10 + 10}" if band == 9 else f"{band * 10}-{band * 10 + 9.9:g}"
        lines.append(f"| {label} | {n} | {bar} |")
    return "\n".join(lines) + "\n"


def extremes_markdown(scores: pl.DataFrame, slugs: pl.DataFrame, *, top: bool, n: int = 10) -> str:
    ranked = (scores.join(slugs, on="package_id", how="left")
              .sort(["health_score", "package_id"], descending=[top, False], nulls_last=True).head(n))
    return _markdown_table(ranked.select("package_id", "slug", "health_score", "cap_reason"))


def score_metadata(tables: dict[str, pl.DataFrame], slugs: pl.DataFrame, seconds: float,
                   version: str) -> dict[str, dict[str, object]]:
    scores = tables[PACKAGE_SCORES]
    packages: dict[str, object] = {
        "dagster/row_count": scores.height,
        "health_version": version,
        "health_seconds": round(seconds, 3),
        "distribution": dg.MetadataValue.md(distribution_markdown(scores["health_score"])),
        "top_10": dg.MetadataValue.md(extremes_markdown(scores, slugs, top=True)),
        "bottom_10": dg.MetadataValue.md(extremes_markdown(scores, slugs, top=False)),
        "median_health": None if scores.height == 0 else float(scores["health_score"].median()),
        "capped": int(scores["cap"].is_not_null().sum()),
    }
    return {PACKAGE_SCORES: packages,
            GRID_SCORES: {"dagster/row_count": tables[GRID_SCORES].height, "health_version": version}}


@dg.multi_asset(
    name="health_scores",
    specs=[
        dg.AssetSpec(key, deps=[core_key(t) for t in CORE_TABLES], group_name="health",
                     kinds={"duckdb", "polars"}, **table_definition(".".join(key.path)))
        for key in HEALTH_KEYS
    ],
    pool=WRITER_POOL,
    can_subset=False,
)
def health_scores(context: AssetExecutionContext, config: HealthScoresConfig, pulse: PulseResource,
                  warehouse: WarehouseResource):
    """Score every core package and grid from the warehouse and replace both health tables in one
    transaction (a failure keeps the previous scores)."""
    health_config = config_from(pulse.health_config)
    with warehouse.writer() as con:
        now = datetime.fromisoformat(config.now) if config.now else data_as_of(con) or run_started(context)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        run = score_warehouse(con, now=now, config=health_config)
        slugs = pl.from_arrow(con.sql("SELECT id AS package_id, slug FROM core.packages").to_arrow_table())
        described = tables_metadata(con, [PACKAGE_SCORES, GRID_SCORES])  # row counts, column schemas
    context.log.info("health %s: %d packages scored as of %s in %.2f s", run.version,
                     run.tables[PACKAGE_SCORES].height, now.isoformat(), run.seconds)
    for name, metadata in score_metadata(run.tables, slugs, run.seconds, run.version).items():
        yield dg.MaterializeResult(asset_key=dg.AssetKey(name.split(".")),
                                   metadata={**described[name], **metadata, "scored_at": now.isoformat()})


health_assets = [health_scores]
