"""Declarative automation: what makes the downstream assets run on their own.

Everything after the crawl (core, health, history, marts, exports: the publish, the API export and the
dataset release) carries `AutomationCondition.eager()`: requested when a dependency was updated (or
will be, in the same tick), never while a dependency is missing or in progress, never twice while its
own run is in progress. So a run the catalogue sensor launches for a few new packages (catalogue +
crawl only) flows through core -> health -> history/marts -> publish -> exports without anything else,
launched by the automation sensor (`pipelines.definitions`). The multi-assets of core, health and
marts cannot be subset: one request runs the whole step, as a refresh would, and the writer pool
(`warehouse_writer`, size 1) keeps their writes one at a time.

The catalogue and the crawl carry no condition: they reach the network and are started by a person
(`pulse refresh`, the UI), the daily schedule, or the catalogue sensor.

Conditions are applied here over the whole list (`with_automation`), not on each decorator, so the
policy is one place; an asset added to one of these groups (the `exports/dataset_release` asset)
gets it by being in its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

AUTOMATED_GROUPS = frozenset({"core", "health", "history", "marts", "exports"})
FRESHNESS_GROUPS = frozenset({"exports"})  # what people download and serve: the published snapshot, exports


def downstream_condition() -> dg.AutomationCondition:
    return dg.AutomationCondition.eager()


def freshness_policy(hours: float) -> dg.FreshnessPolicy:
    """Stale when not materialized within `hours` (PULSE_FRESHNESS_HOURS, default 26: a daily refresh
    plus two hours of slack). Dagster's freshness daemon evaluates it in the UI; `pulse status` applies
    the same rule (assets/freshness.py)."""
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=hours))


def with_automation(assets: Sequence[dg.AssetsDefinition], freshness_hours: float) -> list[dg.AssetsDefinition]:
    """`assets` with the eager condition on the downstream groups and the freshness policy on the exports."""
    policy = freshness_policy(freshness_hours)

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.group_name in AUTOMATED_GROUPS:
            spec = spec.replace_attributes(automation_condition=downstream_condition())
        if spec.group_name in FRESHNESS_GROUPS:
            spec = spec.replace_attributes(freshness_policy=policy)
        return spec

    return list(dg.map_asset_specs(apply, assets))
