"""The core, history and marts assets run in-process against a hand-written archive and catalogue."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.core.assets import core_assets
from assets.core.checks import core_checks
from assets.core.sample import sample_catalogue, write_sample
from assets.marts.assets import marts_assets
from pipelines.resources import PulseResource, WarehouseResource
from warehouse.db import connect_reader, connect_writer
from warehouse.load import replace_tables
from warehouse.publish import publish


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_HOME", str(tmp_path))
    write_sample(tmp_path / "raw")
    con = connect_writer(tmp_path / "warehouse.duckdb")
    try:
        replace_tables(con, {f"catalogue.{k}": v for k, v in sample_catalogue().items()})
    finally:
        con.close()
    return tmp_path


def _resources(home):
    return {"pulse": PulseResource(home=str(home)), "warehouse": WarehouseResource(home=str(home))}


def test_core_history_marts_and_publish(home):
    result = dg.materialize([*core_assets, *marts_assets, *core_checks], resources=_resources(home))
    assert result.success
    counts = {
        mat.asset_key.to_user_string(): mat.metadata["dagster/row_count"].value
        for mat in result.get_asset_materialization_events()
        for mat in [mat.materialization]
        if "dagster/row_count" in mat.metadata
    }
    assert counts["core/packages"] == 8
    assert counts["core/commit_weeks"] == 2 * 52 + 52  # alpha + beta (shared repo) + gamma
    assert counts["history/package_metrics"] == 8
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    failed = {k for k, passed in checks.items() if not passed}
    assert failed == {("core/packages", "crawl_freshness")}  # the sample was fetched days "ago": warn only
    assert ("history/package_metrics", "rows_for_every_package") in checks
    publish(home / "warehouse.duckdb", home / "published.duckdb")  # what exports/published_warehouse does
    con = connect_reader(home / "published.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM marts.package_activity").fetchall()[0][0] == 8
        assert con.execute("SELECT count(*) FROM raw.responses").fetchall()[0][0] > 0
    finally:
        con.close()

    # a second refresh appends a second snapshot; re-running a refresh id would replace it
    again = dg.materialize([*core_assets, *marts_assets], resources=_resources(home))
    assert again.success
    publish(home / "warehouse.duckdb", home / "published.duckdb")
    con = connect_reader(home / "published.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM history.package_metrics").fetchall()[0][0] == 16
        assert con.execute("SELECT count(DISTINCT refresh_id) FROM history.refreshes").fetchall()[0][0] == 2
    finally:
        con.close()


def test_blocking_check_fails_on_duplicate_keys(home):
    # a catalogue with a duplicated membership row is de-duplicated by core, but a broken core table
    # (simulated by writing it by hand) must fail the blocking unique-key check
    from assets.core.checks import run_core_checks

    assert dg.materialize(core_assets, resources=_resources(home)).success
    con = connect_writer(home / "warehouse.duckdb")
    try:
        con.execute("INSERT INTO core.participants SELECT * FROM core.participants LIMIT 2")
        results = {(r.asset_key.to_user_string(), r.check_name): r for r in run_core_checks(con)}
    finally:
        con.close()
    bad = results[("core/participants", "unique_key")]
    assert not bad.passed
    assert bad.metadata["offending_rows"].value == 2


def test_core_asset_fails_clearly_without_catalogue(tmp_path):
    write_sample(tmp_path / "raw")
    with pytest.raises(dg.Failure, match="catalogue tables missing"):
        dg.materialize(core_assets, resources=_resources(tmp_path))
