"""Freshness of the published snapshot and the exports: the policy the UI shows (Dagster's
`FreshnessPolicy.time_window`, PULSE_FRESHNESS_HOURS) and the verdict `pulse status` gives, on a real
Dagster instance with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.automation import with_automation
from assets.exports.assets import api_v4, published_warehouse
from assets.freshness import judge_freshness
from pipelines.definitions import FRESHNESS_HOURS, defs
from pipelines.settings import Settings
from pipelines.status import freshness

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_judge_with_a_fake_clock():
    assert judge_freshness(None, NOW, 26).state == "unknown"
    assert judge_freshness(NOW - timedelta(hours=25, minutes=59), NOW, 26).state == "fresh"
    stale = judge_freshness(NOW - timedelta(hours=26), NOW, 26)
    assert stale.state == "stale" and stale.line == "stale: 26.0 h old (stale after 26 h)"
    assert judge_freshness(NOW - timedelta(minutes=5), NOW, 26).line == "fresh: 5 min old (stale after 26 h)"


def test_the_exports_carry_the_policy_of_the_setting():
    graph = defs.resolve_asset_graph()
    for key in (dg.AssetKey(["exports", "published_warehouse"]), dg.AssetKey(["exports", "api_v4"])):
        policy = graph.get(key).freshness_policy
        assert policy.fail_window.to_timedelta() == timedelta(hours=FRESHNESS_HOURS), key
    assert graph.get(dg.AssetKey(["core", "packages"])).freshness_policy is None
    [one] = [spec for a in with_automation([api_v4], 3.5) for spec in a.specs]
    assert one.freshness_policy.fail_window.to_timedelta() == timedelta(hours=3.5)
    assert Settings.from_mapping({"PULSE_FRESHNESS_HOURS": "12"}).freshness_hours == 12


def test_status_reads_the_last_materialization_from_the_instance(tmp_path):
    settings = Settings.from_mapping({"PULSE_HOME": str(tmp_path), "PULSE_FRESHNESS_HOURS": "26"})
    with dg.DagsterInstance.ephemeral() as instance:
        assert {v["state"] for v in freshness(settings, instance, NOW).values()} == {"unknown"}
        for asset in (published_warehouse, api_v4):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset.key))
        materialized = datetime.now(UTC)
        soon = freshness(settings, instance, materialized + timedelta(hours=2))
        later = freshness(settings, instance, materialized + timedelta(hours=27))
    assert soon["exports/published_warehouse"]["state"] == "fresh"
    assert later["exports/api_v4"]["state"] == "stale" and later["exports/api_v4"]["age_hours"] >= 27
