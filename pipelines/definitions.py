"""The Dagster code location: every asset, check, job and schedule, listed explicitly.

`workspace.yaml` points here; `pulse refresh` runs the `refresh` job from the same object, so the
UI and the CLI can never disagree on what a refresh is.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.catalogue.assets import catalogue
from assets.core.assets import core_assets
from assets.core.checks import core_checks
from assets.exports.assets import api_v4, published_warehouse
from assets.health.assets import health_assets
from assets.health.checks import health_checks
from assets.history.assets import history_assets
from assets.history.checks import history_checks
from assets.marts.assets import marts_assets
from assets.raw.assets import ALL_PARTITIONS_TAGS, crawl
from pipelines.resources import CrawlerResource, PulseResource, WarehouseResource
from pipelines.sources.registry import SOURCES


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
                           catalogue_max_shrink=_env("PULSE_CATALOGUE_MAX_SHRINK")),
    "warehouse": WarehouseResource(**HOME),
    "crawler": CrawlerResource(
        **PLACE,
        github_tokens=_env("GITHUB_TOKEN"),
        github_graphql_url=_env("GITHUB_GRAPHQL_URL"),
        api_urls={s.env_url: url for s in SOURCES if (url := _env(s.env_url)) is not None},
    ),
}

ALL_ASSETS = [catalogue, crawl, *core_assets, *health_assets, *history_assets, *marts_assets, published_warehouse,
              api_v4]
ALL_CHECKS = [*core_checks, *health_checks, *history_checks]

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="The whole graph once: catalogue -> crawl -> core -> health -> history/marts -> publish -> export.",
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    execution_fn=lambda _: dg.RunRequest(tags=ALL_PARTITIONS_TAGS),  # every crawl partition in one run
    description="Turn on in the UI to keep the directory fresh (stale data is re-crawled first).",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[refresh_job],
    schedules=[daily_refresh],
    resources=RESOURCES,
)
