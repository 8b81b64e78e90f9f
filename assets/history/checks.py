"""Asset checks on the history tables (blocking: a snapshot with holes would be published)."""

import dagster as dg

from assets.core.checks import check_result, count_and_sample
from assets.history.assets import HISTORY_KEY
from pipelines.resources import WRITER_POOL, WarehouseResource

HISTORY_SQL = """
WITH latest AS (
    SELECT refresh_id FROM history.refreshes ORDER BY snapshot_at DESC, refresh_id DESC LIMIT 1
)
SELECT p.id AS package_id FROM core.packages p
WHERE NOT EXISTS (
    SELECT 1 FROM history.package_metrics m JOIN latest USING (refresh_id) WHERE m.package_id = p.id
)
"""


@dg.asset_check(
    asset=HISTORY_KEY,
    name="rows_for_every_package",
    description="the latest refresh has a history row for every package in core.packages",
    blocking=True,
    pool=WRITER_POOL,
)
def history_rows_for_every_package(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.writer() as con:
        return check_result(HISTORY_KEY, "rows_for_every_package", *count_and_sample(con, HISTORY_SQL))


history_checks = [history_rows_for_every_package]
