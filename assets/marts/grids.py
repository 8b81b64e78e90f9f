"""Per grid: each member's health rank and percentile, and the grid's median (pure polars)."""

from __future__ import annotations

import polars as pl


def grid_health(health: pl.DataFrame, grid_packages: pl.DataFrame) -> pl.DataFrame:
    """One row per (grid_id, package_id) membership whose package has a ``health_score``.

    - ``rank``: 1 = healthiest in the grid; equal scores share the best rank ("min"), so the
      ranking is deterministic and independent of row order;
    - ``percentile``: share (0-100, one decimal) of the grid's *other* scored members with a lower
      score (100 for the best of several and for a grid of one);
    - ``grid_median``: median health of the grid's scored members; ``grid_size``: how many.
    """
    members = (grid_packages.select(pl.col("grid_id").cast(pl.Int64), pl.col("package_id").cast(pl.Int64))
               .unique()
               .join(health.select(pl.col("package_id").cast(pl.Int64), "health_score"), on="package_id",
                     how="inner")
               .filter(pl.col("health_score").is_not_null()))
    by_grid = pl.col("health_score")
    out = members.with_columns(
        by_grid.rank("min", descending=True).over("grid_id").cast(pl.Int64).alias("rank"),
        (by_grid.rank("min").over("grid_id") - 1).alias("_lower"),
        pl.len().over("grid_id").cast(pl.Int64).alias("grid_size"),
        by_grid.median().over("grid_id").alias("grid_median"))
    out = out.with_columns(
        pl.when(pl.col("grid_size") > 1)
        .then((pl.col("_lower") * 100.0 / (pl.col("grid_size") - 1)).round(1))
        .otherwise(100.0).alias("percentile"))
    return out.select("grid_id", "package_id", "health_score", "rank", "percentile", "grid_median",
                      "grid_size").sort(["grid_id", "rank", "package_id"])
