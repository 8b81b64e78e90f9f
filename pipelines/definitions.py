"""The Dagster code location: every asset, check, job and schedule, listed explicitly.

`workspace.yaml` points here; `pulse refresh` runs the `refresh` job from the same object, so the
UI and the CLI can never disagree on what a refresh is.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.automation import with_automation
from assets.catalogue.assets import catalogue
from assets.core.assets import core_assets
from assets.core.checks import core_checks
from assets.exports.assets import api_v4, dataset_release, published_warehouse
from assets.health.assets import health_assets
from assets.health.checks import health_checks
from assets.history.assets import history_assets
from assets.history.checks import history_checks
from assets.marts.assets import marts_assets
from assets.raw.assets import ALL_PARTITIONS_TAGS, crawl
from pipelines.resources import CrawlerResource, PulseResource, WarehouseResource
from pipelines.sensors import SENSORS, catalogue_update_job
from pipelines.settings import freshness_hours, schedule_on
from pipelines.sources.registry import SOURCES
from pipelines.status import SCHEDULE, SCHEDULE_CRON, SCHEDULE_TIMEZONE


def _env(name: str) -> str | None:
    """`dg.EnvVar(name)` where the variable is set (read when a run launches, never shown in the UI);
    else None, which the resources read as that variable's default (pipelines.settings)."""
    value = os.environ.get(name)
    return dg.EnvVar(name) if value is not None and value.strip() else None


HOME = {"home": _env("PULSE_HOME")}
PLACE = {**HOME, "catalogue": _env("PULSE_CATALOGUE"), "public_url": _env("PULSE_PUBLIC_URL"),
         "timezone": _env("PULSE_TIMEZONE")}
RESOURCES = {
    "pulse": PulseResource(**PLACE, health_config=_env("PULSE_HEALTH_CONFIG"),
                           catalogue_max_shrink=_env("PULSE_CATALOGUE_MAX_SHRINK"),
                           releases_keep=_env("PULSE_RELEASES_KEEP"), raw_url=_env("PULSE_RAW_URL")),
    "warehouse": WarehouseResource(**HOME, url=_env("PULSE_WAREHOUSE_URL"),
                                   data_path=_env("PULSE_WAREHOUSE_DATA_PATH")),
    "crawler": CrawlerResource(
        **PLACE,
        github_tokens=_env("GITHUB_TOKEN"),
        github_graphql_url=_env("GITHUB_GRAPHQL_URL"),
        github_pace_per_minute=_env("PULSE_GITHUB_PACE_PER_MINUTE"),
        github_pace_window_s=_env("PULSE_GITHUB_PACE_WINDOW_S"),
        raw_url=_env("PULSE_RAW_URL"),
        api_urls={s.env_url: url for s in SOURCES if (url := _env(s.env_url)) is not None},
    ),
}

# automation (assets/automation.py, pipelines/sensors.py): these two are read when the code location loads
FRESHNESS_HOURS = freshness_hours(os.environ)
SCHEDULE_ON = schedule_on(os.environ)
ALL_ASSETS = with_automation([catalogue, crawl, *core_assets, *health_assets, *history_assets, *marts_assets,
                              published_warehouse, api_v4, dataset_release], FRESHNESS_HOURS)
ALL_CHECKS = [*core_checks, *health_checks, *history_checks]

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="The whole graph once: catalogue -> crawl -> core -> health -> history/marts -> publish -> export.",
)

daily_refresh = dg.ScheduleDefinition(
    name=SCHEDULE,
    job=refresh_job,
    cron_schedule=SCHEDULE_CRON,
    execution_timezone=SCHEDULE_TIMEZONE,
    # on when asked (PULSE_SCHEDULE=on, `pulse ui --schedule`); a status set in the UI wins over this default
    default_status=dg.DefaultScheduleStatus.RUNNING if SCHEDULE_ON else dg.DefaultScheduleStatus.STOPPED,
    execution_fn=lambda _: dg.RunRequest(tags=ALL_PARTITIONS_TAGS),  # every crawl partition in one run
    description="The whole refresh daily at 04:00 UTC; on with PULSE_SCHEDULE=on (`pulse ui --schedule`) or in "
                "the UI (stale data is re-crawled first).",
)

# the automation conditions are evaluated by this sensor, declared rather than left implicit
automation_sensor = dg.AutomationConditionSensorDefinition(
    "pulse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Runs core -> health -> history/marts -> publish -> exports after a catalogue or crawl update.",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[refresh_job, catalogue_update_job],
    schedules=[daily_refresh],
    sensors=[automation_sensor, *SENSORS],
    resources=RESOURCES,
)
