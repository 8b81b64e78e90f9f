"""Declarative automation on the real code location, evaluated by Dagster's own evaluator
(`dg.evaluate_automation_conditions`, what the automation sensor runs): after a full refresh nothing is
requested again; after a run that only re-read the catalogue and crawled (the catalogue sensor's run),
everything downstream is requested, and neither the catalogue nor the crawl is."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import defs

pytestmark = pytest.mark.slow  # two evaluations of the whole graph (~3 s each on a loaded machine)


def _materialized(instance: dg.DagsterInstance, graph, key: dg.AssetKey) -> None:
    """A runless materialization of `key`, of every partition of a partitioned one (the crawl's)."""
    partitions = graph.get(key).partitions_def
    for partition in partitions.get_partition_keys() if partitions else [None]:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_a_partial_crawl_flows_downstream_on_its_own():
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    upstream = {k for k in keys if k.path[0] in ("catalogue", "raw")}
    downstream = keys - upstream
    with dg.DagsterInstance.ephemeral() as instance:
        for key in keys:  # a whole refresh happened
            _materialized(instance, graph, key)
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert settled.total_requested == 0

        for key in upstream:  # the catalogue sensor's run: catalogue + crawl of a few packages
            _materialized(instance, graph, key)
        flowed = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    requested = {key for key in keys if flowed.get_num_requested(key)}
    assert requested == downstream
    assert {k.path[0] for k in requested} == {"core", "health", "history", "marts", "exports"}


def test_the_automation_sensor_and_the_schedule_are_declared():
    sensor = defs.resolve_sensor_def("pulse_automation")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("daily_refresh").cron_schedule == "0 4 * * *"
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["raw", "github"])).automation_condition is None  # no crawl by surprise
    assert graph.get(dg.AssetKey(["catalogue", "packages"])).automation_condition is None
