"""The `refresh` job of the code location with its resources pointed at a simulator and a home, for
tests that run it in the test process (`execute_in_process`) instead of through `pulse refresh`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.definitions import ALL_ASSETS, ALL_CHECKS, refresh_job
from pipelines.resources import CrawlerResource, PulseResource, WarehouseResource
from pipelines.sources.registry import SOURCES


def sim_refresh_job(sim, home: Path, *, public_url: str, tokens: str, timezone: str = "UTC") -> dg.JobDefinition:
    env = sim.env()
    place = {"home": str(home), "catalogue": env["PULSE_CATALOGUE"], "public_url": public_url, "timezone": timezone}
    resources = {
        "pulse": PulseResource(**place),
        "warehouse": WarehouseResource(home=str(home)),
        "crawler": CrawlerResource(**place, github_tokens=tokens, github_graphql_url=env["GITHUB_GRAPHQL_URL"],
                                   api_urls={s.env_url: env[s.env_url] for s in SOURCES}),
    }
    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=[refresh_job], resources=resources)
    return defs.resolve_job_def("refresh")
