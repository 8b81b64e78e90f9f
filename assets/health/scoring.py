"""From the core tables to `health.package_scores` and `health.grid_scores` (no Dagster here).

`read_inputs` reads what the scores need from core, tolerating inputs a warehouse may not have yet
(a column added by a later change is read as a typed NULL, a missing table as absent: `health_inputs`
then scores that input as unknown); `compute_scores` runs the pure scoring core (djangopackages.py,
health.py) with an injected `now` and a health config; `write_scores` replaces both tables by column
name in one transaction (warehouse.load).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from assets.health.djangopackages import djangopackages_scores, grid_weight, max_package_weight
from assets.health.health import COMPONENTS, HealthConfig, health_inputs, load_config, load_eol, score_health
from warehouse.ddl import existing_columns
from warehouse.load import query, replace_tables

PACKAGE_SCORES = "health.package_scores"
GRID_SCORES = "health.grid_scores"

# what is read from core, with the type a missing column is read as (names are the core contract;
# `catalogue_deprecated`, `usage`, `pypi_downloads`, `pypi_vulnerabilities`, `created_at` and
# core.downloads_daily come with issue 9's inputs and may be absent from an older warehouse)
PACKAGE_COLUMNS = {
    "id": "BIGINT", "repo_key": "VARCHAR", "repo_watchers": "BIGINT", "repo_forks": "BIGINT",
    "repo_description": "VARCHAR", "last_updated": "TIMESTAMPTZ", "pypi_version": "VARCHAR",
    "pypi_name": "VARCHAR", "pypi_requires_python": "VARCHAR", "pypi_classifiers": "VARCHAR[]",
    "python_versions": "VARCHAR[]", "django_versions": "VARCHAR[]", "is_archived": "BOOLEAN",
    "pypi_status": "VARCHAR", "pypi_status_reason": "VARCHAR", "pypi_inactive": "BOOLEAN",
    "catalogue_deprecated": "BOOLEAN", "usage": "BIGINT", "pypi_downloads": "BIGINT",
    "pypi_vulnerabilities": "INTEGER",
}
RELEASE_COLUMNS = {"package_id": "BIGINT", "version": "VARCHAR", "upload_time": "TIMESTAMPTZ",
                   "yanked": "BOOLEAN", "requires_python": "VARCHAR", "is_prerelease": "BOOLEAN"}
WEEK_COLUMNS = {"package_id": "BIGINT", "week_index": "SMALLINT", "week_start": "DATE", "commits": "INTEGER"}
PARTICIPANT_COLUMNS = {"package_id": "BIGINT", "position": "INTEGER", "login": "VARCHAR",
                       "contributions": "BIGINT", "is_bot": "BOOLEAN"}
REPOSITORY_COLUMNS = {"repo_key": "VARCHAR", "created_at": "TIMESTAMPTZ"}
ERROR_COLUMNS = {"package_id": "BIGINT", "kind": "VARCHAR", "severity": "VARCHAR"}
DAILY_COLUMNS = {"package_id": "BIGINT", "day": "DATE", "downloads": "BIGINT"}


def select_tolerant(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str],
                    where: str = "") -> pl.DataFrame | None:
    """`SELECT columns FROM table`, a column the table lacks read as `NULL::<type>`; None when the
    table does not exist."""
    have = existing_columns(con, table)
    if not have:
        return None
    select = ", ".join(f'"{c}"' if c in have else f'NULL::{t} AS "{c}"' for c, t in columns.items())
    return query(con, f"SELECT {select} FROM {table} {where}")


@dataclass
class CoreInputs:
    packages: pl.DataFrame
    releases: pl.DataFrame | None
    commit_weeks: pl.DataFrame | None
    participants: pl.DataFrame | None
    repositories: pl.DataFrame | None
    crawl_errors: pl.DataFrame | None
    daily_downloads: pl.DataFrame | None
    grids: pl.DataFrame
    grid_packages: pl.DataFrame


def read_inputs(con: duckdb.DuckDBPyConnection) -> CoreInputs:
    packages = select_tolerant(con, "core.packages", PACKAGE_COLUMNS)
    if packages is None:
        raise RuntimeError("core.packages is missing: materialize core first")
    repositories = select_tolerant(con, "core.repositories", REPOSITORY_COLUMNS)
    if repositories is not None and repositories["created_at"].null_count() == repositories.height:
        repositories = None  # no creation dates known: every repository counts as old enough
    daily = select_tolerant(con, "core.downloads_daily", DAILY_COLUMNS)
    grids = select_tolerant(con, "core.grids", {"id": "BIGINT", "is_locked": "BOOLEAN", "header": "BOOLEAN"})
    members = select_tolerant(con, "core.grid_packages", {"grid_id": "BIGINT", "package_id": "BIGINT"})
    return CoreInputs(
        packages=packages,
        releases=select_tolerant(con, "core.releases", RELEASE_COLUMNS),
        # weeks without commits count for nothing: leave them in DuckDB
        commit_weeks=select_tolerant(con, "core.commit_weeks", WEEK_COLUMNS, "WHERE commits > 0"),
        participants=select_tolerant(con, "core.participants", PARTICIPANT_COLUMNS),
        repositories=repositories,
        crawl_errors=select_tolerant(con, "core.crawl_errors", ERROR_COLUMNS, "WHERE kind = 'gone'"),
        daily_downloads=None if daily is None else daily.rename({"day": "date"}),
        grids=grids if grids is not None else pl.DataFrame(schema={"id": pl.Int64, "is_locked": pl.Boolean,
                                                                   "header": pl.Boolean}),
        grid_packages=members if members is not None else pl.DataFrame(schema={"grid_id": pl.Int64,
                                                                               "package_id": pl.Int64}),
    )


def _json_lines(column: str) -> pl.Expr:
    """A newline-joined text as a JSON list of its lines (polars' own JSON encoder, so any character
    in a reason is escaped correctly)."""
    lines = pl.struct(pl.col(column).str.split("\n").alias("l")).struct.json_encode()
    return lines.str.strip_prefix('{"l":').str.strip_suffix("}")


def compute_scores(inputs: CoreInputs, *, now: datetime,
                   config: HealthConfig | None = None) -> dict[str, pl.DataFrame]:
    """{"health.package_scores": one row per core package, "health.grid_scores": one per grid}."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    p = inputs.packages.with_columns(pl.col("catalogue_deprecated").fill_null(False),
                                     pl.col("usage").fill_null(0))
    health_in = health_inputs(
        p.rename({"pypi_vulnerabilities": "latest_vulnerabilities"}), now=now,
        commit_weeks=inputs.commit_weeks, participants=inputs.participants, releases=inputs.releases,
        repositories=inputs.repositories, crawl_errors=inputs.crawl_errors,
        daily_downloads=inputs.daily_downloads, config=config)
    health = score_health(health_in, now=now, config=config)

    # the Recent Release rule reads the upload of the latest version's first file (`info.version`)
    releases = inputs.releases if inputs.releases is not None else pl.DataFrame(
        schema={"package_id": pl.Int64, "version": pl.String, "upload_time": pl.Datetime("us", "UTC")})
    released = (p.select(pl.col("id").alias("package_id"), pl.col("pypi_version").alias("version"))
                .join(releases.select("package_id", "version", "upload_time"), on=["package_id", "version"],
                      how="inner")
                .group_by("package_id").agg(pl.col("upload_time").min().alias("last_released")))
    site = djangopackages_scores(
        p.join(released.rename({"package_id": "id"}), on="id", how="left")
        .with_columns(pl.col("catalogue_deprecated").alias("deprecated")), now=now)
    scores = (site.select(pl.col("id").alias("package_id"), pl.col("score").cast(pl.Int32),
                          pl.col("weight").cast(pl.Int32), pl.col("weight_json").alias("weight_breakdown"),
                          "last_released")
              .join(health, on="package_id", how="left")
              .with_columns(_json_lines("explanation").alias("explanation"),
                            pl.col("cap").cast(pl.Float64), pl.lit(now).alias("computed_at"))
              .drop("stars_percentile", "downloads_percentile")
              .sort("package_id"))

    counts = inputs.grid_packages.group_by("grid_id").agg(pl.len().alias("package_count"))
    grids = (inputs.grids.join(counts.rename({"grid_id": "id"}), on="id", how="left")
             .pipe(grid_weight, max_weight=max_package_weight(scores["weight"])))
    grid_scores = grids.select(pl.col("id").alias("grid_id"), pl.col("weight").cast(pl.Int32)).sort("grid_id")
    return {PACKAGE_SCORES: scores, GRID_SCORES: grid_scores}


@dataclass
class ScoreRun:
    tables: dict[str, pl.DataFrame]
    seconds: float
    version: str


def config_from(path: str | Path | None) -> HealthConfig:
    return load_config(path) if path else load_config()


def score_warehouse(con: duckdb.DuckDBPyConnection, *, now: datetime, config: HealthConfig | None = None,
                    write: bool = True) -> ScoreRun:
    """Read core, score every package and grid, and (by default) replace both health tables in one
    transaction. `seconds` is the whole of it (reads, scoring, writes)."""
    started = time.perf_counter()
    tables = compute_scores(read_inputs(con), now=now, config=config)
    if write:
        replace_tables(con, tables)
    return ScoreRun(tables, time.perf_counter() - started, health_version(config))


def health_version(config: HealthConfig | None = None) -> str:
    """What `score_health` stores as `health_version` with this config and the shipped eol table."""
    return f"{(config or load_config()).version}+eol.{load_eol().version}"


__all__ = ["COMPONENTS", "GRID_SCORES", "PACKAGE_SCORES", "compute_scores", "read_inputs", "score_warehouse",
           "select_tolerant"]
