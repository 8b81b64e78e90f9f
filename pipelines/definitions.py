"""The Dagster code location: every asset, check, job and schedule, listed explicitly.

`workspace.yaml` points here; `pulse refresh` runs the `refresh` job from the same object, so the
UI and the CLI can never disagree on what a refresh is.
"""

from __future__ import annotations

import dagster as dg

from assets.catalogue.assets import catalogue
from assets.core.assets import core_assets
from assets.core.checks import core_checks
from assets.exports.assets import api_v4, published_warehouse
from assets.history.assets import history_assets
from assets.history.checks import history_checks
from assets.marts.assets import marts_assets
from assets.raw.assets import crawl
from pipelines.resources import PulseResource, WarehouseResource

ALL_ASSETS = [catalogue, crawl, *core_assets, *history_assets, *marts_assets, published_warehouse, api_v4]
ALL_CHECKS = [*core_checks, *history_checks]

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="The whole graph once: catalogue -> crawl -> core -> history/marts -> publish -> export.",
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Turn on in the UI to keep the directory fresh (stale data is re-crawled first).",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[refresh_job],
    schedules=[daily_refresh],
    resources={"pulse": PulseResource(), "warehouse": WarehouseResource()},
)
