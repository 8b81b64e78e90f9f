"""The declared shape of the core tables: column types, keys and table order.

Declared once here (types mirrored by `warehouse/schema/core.sql`, keys read from it) so that every
stage casts to the same types and sorts by the same keys: that is what makes the same archive give
bit-identical tables, and what lets the incremental refresh swap rows in by key.
"""

from __future__ import annotations

import polars as pl

from pipelines.sources.facts import UTC_US, cast_columns
from warehouse.ddl import declared_keys

# the catalogue columns every core.packages row starts from (the crawl adds the rest)
CATALOGUE_PACKAGE_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "title": pl.String(),
    "slug": pl.String(),
    "category_id": pl.Int64(),
    "repo_url": pl.String(),
    "pypi_url": pl.String(),
    "documentation_url": pl.String(),
    "created": UTC_US,
    "modified": UTC_US,
    "repo_host": pl.String(),
    "repo_owner": pl.String(),
    "repo_name": pl.String(),
    "repo_key": pl.String(),
    "pypi_name": pl.String(),
    "repo_url_problem": pl.String(),
}
# the catalogue's health inputs (catalogue.packages `usage`, `deprecated`) and their values when a
# catalogue frame predates them
CATALOGUE_INPUT_COLUMNS: dict[str, tuple[pl.DataType, object]] = {
    "usage": (pl.Int64(), 0),
    "deprecated": (pl.Boolean(), False),
}

CORE_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "core.categories": {
        "id": pl.Int64(),
        "title": pl.String(),
        "slug": pl.String(),
        "description": pl.String(),
        "title_plural": pl.String(),
        "show_pypi": pl.Boolean(),
        "created": UTC_US,
        "modified": UTC_US,
    },
    "core.grids": {
        "id": pl.Int64(),
        "title": pl.String(),
        "slug": pl.String(),
        "description": pl.String(),
        "is_locked": pl.Boolean(),
        "header": pl.Boolean(),
        "created": UTC_US,
        "modified": UTC_US,
    },
    "core.grid_packages": {"grid_id": pl.Int64(), "package_id": pl.Int64(), "position": pl.Int32()},
    "core.packages": {
        **CATALOGUE_PACKAGE_COLUMNS,
        "repo_watchers": pl.Int64(),
        "repo_forks": pl.Int64(),
        "repo_description": pl.String(),
        "last_updated": UTC_US,
        "last_fetched": UTC_US,
        "pypi_version": pl.String(),
        "is_archived": pl.Boolean(),
        "is_stale": pl.Boolean(),
        "canonical_repo": pl.String(),
        "pypi_status": pl.String(),
        "pypi_status_reason": pl.String(),
        "pypi_requires_python": pl.String(),
        "pypi_classifiers": pl.List(pl.String()),
        "pypi_inactive": pl.Boolean(),
        "python_versions": pl.List(pl.String()),
        "django_versions": pl.List(pl.String()),
        "is_deprecated": pl.Boolean(),
        "usage": pl.Int64(),
        "catalogue_deprecated": pl.Boolean(),
        "pypi_vulnerabilities": pl.Int32(),
        "pypi_downloads": pl.Int64(),
    },
    "core.repositories": {
        "repo_key": pl.String(),
        "host": pl.String(),
        "owner": pl.String(),
        "name": pl.String(),
        "stars": pl.Int64(),
        "forks": pl.Int64(),
        "watchers": pl.Int64(),
        "open_issues": pl.Int64(),
        "description": pl.String(),
        "homepage": pl.String(),
        "archived": pl.Boolean(),
        "is_fork": pl.Boolean(),
        "default_branch": pl.String(),
        "pushed_at": UTC_US,
        "last_commit_at": UTC_US,
        "latest_release": pl.String(),
        "license": pl.String(),
        "topics": pl.List(pl.String()),
        "canonical_repo": pl.String(),
        "fetched_at": UTC_US,
        "created_at": UTC_US,
    },
    "core.commit_weeks": {
        "package_id": pl.Int64(),
        "week_index": pl.Int16(),
        "week_start": pl.Date(),
        "commits": pl.Int32(),
    },
    "core.participants": {
        "package_id": pl.Int64(),
        "position": pl.Int32(),
        "login": pl.String(),
        "contributions": pl.Int64(),
        "is_bot": pl.Boolean(),
    },
    "core.releases": {
        "package_id": pl.Int64(),
        "version": pl.String(),
        "upload_time": UTC_US,
        "yanked": pl.Boolean(),
        "requires_python": pl.String(),
        "is_prerelease": pl.Boolean(),
    },
    "core.downloads_daily": {
        "package_id": pl.Int64(),
        "day": pl.Date(),
        "downloads": pl.Int64(),
    },
    "core.crawl_errors": {
        "package_id": pl.Int64(),
        "source": pl.String(),
        "request_key": pl.String(),
        "kind": pl.String(),
        "http_status": pl.Int32(),
        "message": pl.String(),
        "first_seen": UTC_US,
        "last_seen": UTC_US,
        "attempts": pl.Int32(),
        "severity": pl.String(),
    },
    "core.endpoint_errors": {
        "source": pl.String(),
        "endpoint": pl.String(),
        "request_key": pl.String(),
        "kind": pl.String(),
        "http_status": pl.Int32(),
        "message": pl.String(),
        "requests": pl.Int32(),
        "seen_at": UTC_US,
    },
}

# the `-- key:` lines of core.sql, so the keys core sorts and swaps rows by are the warehouse's own
CORE_KEYS: dict[str, tuple[str, ...]] = dict(declared_keys("core.sql"))

CORE_TABLES = tuple(CORE_COLUMNS)


def catalogue_packages(frame: pl.DataFrame) -> pl.DataFrame:
    """A catalogue packages frame typed as core reads it: `CATALOGUE_PACKAGE_COLUMNS` plus the
    health inputs (`usage`, `deprecated`), defaulted when the frame has none or nulls."""
    inputs = [(pl.col(c).cast(t).fill_null(default) if c in frame.columns else pl.lit(default, t)).alias(c)
              for c, (t, default) in CATALOGUE_INPUT_COLUMNS.items()]
    return cast_columns(frame.with_columns(inputs), {**CATALOGUE_PACKAGE_COLUMNS,
                                                     **{c: t for c, (t, _) in CATALOGUE_INPUT_COLUMNS.items()}})


def conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """A frame as the declared core table `name`: absent columns become typed nulls (a host may not
    report a fact) and rows are sorted by the key (so outputs are reproducible byte for byte)."""
    columns = CORE_COLUMNS[name]
    out = frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in columns.items()])
    return out.sort(list(CORE_KEYS[name]), nulls_last=True)
