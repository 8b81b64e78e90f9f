"""The code location loads, and its asset graph has the layers DESIGN.md promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_every_layer():
    graph = defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert {"catalogue", "raw", "core", "health", "history", "marts", "exports"} <= groups
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"catalogue/packages", "raw/github", "raw/pypi", "core/packages", "core/commit_weeks",
            "core/participants", "core/releases", "exports/api_v4", "exports/published_warehouse"} <= keys
    # every asset's group is also its DuckDB schema / key prefix: data flows one way
    for key in graph.get_all_asset_keys():
        assert key.path[0] == graph.get(key).group_name, key


def test_layers_only_depend_upstream():
    order = ["catalogue", "raw", "core", "health", "history", "marts", "exports"]
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        for parent in (k for k in node.parent_entity_keys if isinstance(k, dg.AssetKey)):
            assert order.index(graph.get(parent).group_name) <= order.index(node.group_name), (parent, key)


def test_refresh_job_and_schedule():
    # `pulse refresh` runs this job: it must be the whole graph, or the CLI would skip a layer
    job = defs.resolve_job_def("refresh")
    assert job.asset_layer.selected_asset_keys == set(defs.resolve_asset_graph().get_all_asset_keys())
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.job_name == "refresh"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # nobody crawls by surprise


def test_writing_steps_share_the_single_writer_pool():
    graph = defs.resolve_asset_graph()
    for key in [dg.AssetKey(["catalogue", "packages"]), dg.AssetKey(["core", "packages"]),
                dg.AssetKey(["exports", "published_warehouse"])]:
        assert graph.get(key).pools == {"warehouse_writer"}, key


@pytest.mark.slow  # the `dagster` CLI in a subprocess
def test_dagster_validates_the_workspace():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cli_instance_limits_the_writer_pool_to_one(tmp_path):
    """`pulse` writes this dagster.yaml when DAGSTER_HOME is unset: the writer pool gets limit 1
    (the warehouse's file lock, warehouse.db.open_writer, guards any other instance)."""
    import yaml

    from pipelines.resources import WRITER_POOL
    from pipelines.runner import INSTANCE_YAML

    assert yaml.safe_load(INSTANCE_YAML)["concurrency"]["pools"]["default_limit"] == 1
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        instance.event_log_storage.initialize_concurrency_limit_to_default(WRITER_POOL)
        assert instance.event_log_storage.get_concurrency_info(WRITER_POOL).slot_count == 1
    finally:
        instance.dispose()


def test_every_step_that_opens_the_warehouse_for_writing_is_in_the_writer_pool():
    graph = defs.resolve_asset_graph()
    readers = {"exports/api_v4", "exports/dataset_release"}  # read the published snapshot only
    for key in graph.get_all_asset_keys():
        if key.to_user_string() not in readers:
            assert graph.get(key).pools == {"warehouse_writer"}, key
    for check in defs.asset_checks or []:
        assert check.node_def.pool == "warehouse_writer", check


def test_definitions_are_loadable_and_every_job_resolves():
    dg.Definitions.validate_loadable(defs)
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"refresh"}
    crawl = defs.resolve_assets_def(dg.AssetKey(["raw", "github"]))
    assert {"crawler", "warehouse"} <= crawl.required_resource_keys
    assert "pulse" not in crawl.required_resource_keys  # the crawler resource carries all it needs


def test_secrets_and_urls_reach_the_resources_as_env_vars(monkeypatch):
    """Where a variable is set, the resource field holds `dg.EnvVar` (read at launch, hidden in the
    UI), not its value."""
    import importlib

    import pipelines.definitions as definitions

    monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
    monkeypatch.setenv("PYPI_URL", "http://pypi.local")
    monkeypatch.delenv("GITLAB_API_URL", raising=False)
    reloaded = importlib.reload(definitions)
    try:
        crawler = reloaded.RESOURCES["crawler"]
        assert crawler.github_tokens == dg.EnvVar("GITHUB_TOKEN") and isinstance(crawler.github_tokens, dg.EnvVar)
        assert isinstance(crawler.api_urls["PYPI_URL"], dg.EnvVar)
        assert "GITLAB_API_URL" not in crawler.api_urls
        assert "secret-token" not in repr(crawler)
    finally:
        monkeypatch.undo()
        importlib.reload(definitions)
