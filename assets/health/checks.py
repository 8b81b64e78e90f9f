"""Asset checks on the health tables, all blocking: a wrong score would spread into history, the
marts and the exports. Each result carries the number of offending rows and a few examples."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import duckdb

from assets.core.checks import check_result, count_and_sample
from assets.health.assets import GRID_SCORES_KEY, PACKAGE_SCORES_KEY
from assets.health.health import COMPONENTS
from pipelines.resources import WRITER_POOL, WarehouseResource

TOLERANCE = 1e-6

BOUNDED_SQL = """
SELECT package_id, health_score, health_uncapped FROM health.package_scores
WHERE health_score IS NULL OR health_uncapped IS NULL OR isnan(health_score) OR isnan(health_uncapped)
   OR health_score < 0 OR health_score > 100 OR health_uncapped < 0 OR health_uncapped > 100
   OR (cap IS NOT NULL AND health_score > cap + {tol})
"""

_components_sum = " + ".join(COMPONENTS)
_component_bad = " OR ".join(f"{c} IS NULL OR {c} < 0 OR {c} > {c}_max + " + "{tol}" for c in COMPONENTS)
ADD_UP_SQL = f"""
SELECT package_id, health_uncapped, {_components_sum} AS components, health_score, cap
FROM health.package_scores
WHERE abs(({_components_sum}) - health_uncapped) > {{tol}}
   OR abs(health_score - least(health_uncapped, coalesce(cap, health_uncapped))) > {{tol}}
   OR {_component_bad}
   OR abs(({" + ".join(f"{c}_max" for c in COMPONENTS)}) - 100) > {{tol}}
"""

SCORED_ONCE_SQL = """
WITH scored AS (SELECT package_id, count(*) AS n FROM health.package_scores GROUP BY package_id)
SELECT coalesce(p.id, s.package_id) AS package_id, coalesce(s.n, 0) AS times_scored, p.id IS NOT NULL AS in_core
FROM core.packages p FULL OUTER JOIN scored s ON s.package_id = p.id
WHERE p.id IS NULL OR s.n IS NULL OR s.n <> 1
"""

WEIGHT_SQL = """
SELECT package_id, weight, score FROM health.package_scores
WHERE weight IS NULL OR weight < 0 OR weight > 100 OR score IS NULL OR score < -500
   OR weight_breakdown IS NULL OR NOT json_valid(weight_breakdown)
   OR weight_breakdown->>'$.total_score' <> weight::VARCHAR
"""

GRIDS_SQL = """
WITH g AS (SELECT grid_id, count(*) AS n, any_value(weight) AS weight FROM health.grid_scores GROUP BY grid_id)
SELECT coalesce(c.id, g.grid_id) AS grid_id, g.n, g.weight
FROM core.grids c FULL OUTER JOIN g ON g.grid_id = c.id
WHERE c.id IS NULL OR g.n IS NULL OR g.n <> 1 OR g.weight IS NULL OR g.weight < 0 OR g.weight > 100
"""

CHECKS = {
    # name: (asset, description, SQL)
    "bounded": (PACKAGE_SCORES_KEY, "health_score and health_uncapped in 0-100, never above the cap", BOUNDED_SQL),
    "components_add_up": (PACKAGE_SCORES_KEY,
                          "the components add up to health_uncapped (within 1e-6), each within 0 and its "
                          "maximum, the maxima to 100, and health_score = min(health_uncapped, cap)", ADD_UP_SQL),
    "every_package_scored_once": (PACKAGE_SCORES_KEY, "every core package has exactly one score row, and no "
                                  "score row names a package core does not have", SCORED_ONCE_SQL),
    "djangopackages_weight": (PACKAGE_SCORES_KEY, "djangopackages' weight in 0-100 and equal to its breakdown's "
                              "total_score; score at least -500", WEIGHT_SQL),
    "every_grid_weighted_once": (GRID_SCORES_KEY, "every core grid has exactly one weight, in 0-100", GRIDS_SQL),
}

HEALTH_CHECK_SPECS = [dg.AssetCheckSpec(name, asset=asset, description=description, blocking=True)
                      for name, (asset, description, _) in CHECKS.items()]


def run_health_checks(con: duckdb.DuckDBPyConnection) -> Iterator[dg.AssetCheckResult]:
    for name, (asset, _, sql) in CHECKS.items():
        yield check_result(asset, name, *count_and_sample(con, sql.format(tol=TOLERANCE)))


@dg.multi_asset_check(specs=HEALTH_CHECK_SPECS, name="health_table_checks", pool=WRITER_POOL)
def health_table_checks(warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
    with warehouse.writer() as con:
        yield from run_health_checks(con)


health_checks = [health_table_checks]
