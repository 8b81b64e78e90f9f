"""The core, history and marts assets run in-process against a hand-written archive and catalogue."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import duckdb
import pytest

from assets.core.assets import core_assets
from assets.core.checks import core_checks
from assets.history.assets import history_assets
from assets.history.checks import history_checks
from assets.marts.assets import marts_assets
from pipelines.resources import PulseResource, WarehouseResource
from tests.fixtures.sample import T0, write_sample, write_sample_home
from warehouse.archive import RawResponse, write_batch
from warehouse.db import connect_reader, connect_writer
from warehouse.publish import publish


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_HOME", str(tmp_path))
    return write_sample_home(tmp_path)


GRAPH = [*core_assets, *history_assets, *marts_assets, *core_checks, *history_checks]


def _resources(home):
    return {"pulse": PulseResource(home=str(home)), "warehouse": WarehouseResource(home=str(home))}


def test_core_history_marts_and_publish(home):
    result = dg.materialize(GRAPH, resources=_resources(home))
    assert result.success
    counts = {
        mat.asset_key.to_user_string(): mat.metadata["dagster/row_count"].value
        for mat in result.get_asset_materialization_events()
        for mat in [mat.materialization]
        if "dagster/row_count" in mat.metadata
    }
    assert counts["core/packages"] == 9
    assert counts["core/commit_weeks"] == 2 * 52 + 52  # alpha + beta (shared repo) + gamma
    assert counts["history/package_metrics"] == 9
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    failed = {k for k, passed in checks.items() if not passed}
    assert failed == {("core/packages", "crawl_freshness")}  # the sample was fetched days "ago": warn only
    assert ("history/package_metrics", "rows_for_every_package") in checks
    publish(home / "warehouse.duckdb", home / "published.duckdb")  # what exports/published_warehouse does
    con = connect_reader(home / "published.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM marts.package_activity").fetchall()[0][0] == 9
        assert con.execute("SELECT count(*) FROM raw.responses").fetchall()[0][0] > 0
    finally:
        con.close()

    # a second refresh appends a second snapshot; re-running a refresh id would replace it
    again = dg.materialize([*core_assets, *history_assets, *marts_assets], resources=_resources(home))
    assert again.success
    publish(home / "warehouse.duckdb", home / "published.duckdb")
    con = connect_reader(home / "published.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM history.package_metrics").fetchall()[0][0] == 18
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


def test_a_failing_blocking_check_stops_history_and_publish_in_a_real_run(home):
    """Duplicate keys injected upstream (the catalogue lists package 1 twice) reach core.packages;
    the blocking unique-key check fails in the same in-process run, so the history snapshot and the
    published warehouse are never materialized, and the check says how many keys are duplicated."""
    from assets.exports.assets import published_warehouse

    con = connect_writer(home / "warehouse.duckdb")
    try:
        con.execute("INSERT INTO catalogue.packages SELECT * FROM catalogue.packages WHERE id = 1")
    finally:
        con.close()
    result = dg.materialize([*GRAPH, published_warehouse],
                            resources=_resources(home), raise_on_error=False)
    assert not result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "core/packages" in materialized
    assert "history/package_metrics" not in materialized
    assert "exports/published_warehouse" not in materialized
    assert not (home / "published.duckdb").exists()
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    unique = checks[("core/packages", "unique_key")]
    assert not unique.passed and unique.severity == dg.AssetCheckSeverity.ERROR
    assert unique.metadata["offending_rows"].value == 1  # one id (1) appears twice
    assert "(1, 2)" in unique.metadata["examples"].value[0]  # (id, count)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM history.package_metrics").fetchall()[0][0] == 0
    finally:
        con.close()


def test_fifty_two_weeks_starts_from_the_packages_with_a_participation_answer(home):
    from assets.core.checks import run_core_checks

    assert dg.materialize(core_assets, resources=_resources(home)).success

    def weeks_check(con):
        return next(r for r in run_core_checks(con) if r.check_name == "fifty_two_weeks")

    con = connect_writer(home / "warehouse.duckdb")
    try:
        # zeta's participation body is malformed (a crawl error already) and beta shares alpha's repo
        assert weeks_check(con).passed
        # a crawled package whose week rows went missing fails, although no week row is wrong
        con.execute("DELETE FROM core.commit_weeks WHERE package_id = 3")
        bad = weeks_check(con)
        assert not bad.passed and bad.metadata["offending_rows"].value == 1
        assert bad.metadata["examples"].value[0].startswith("(3, 0,")
    finally:
        con.close()
    # the repository became empty: GitHub's 204 is archived as empty series, an answer without weeks
    write_batch(home / "raw", "github", [
        RawResponse("github:participation:old/gamma", "github", "participation", "github:old/gamma",
                    "/repos/old/gamma/stats/participation", 204, '{"all": [], "owner": []}',
                    fetched_at=T0 + timedelta(days=2))], "later")
    assert dg.materialize(core_assets, resources=_resources(home)).success
    con = connect_writer(home / "warehouse.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM core.commit_weeks WHERE package_id = 3").fetchall()[0][0] == 0
        assert weeks_check(con).passed
        # week rows with a gap still fail
        con.execute("DELETE FROM core.commit_weeks WHERE package_id = 1 AND week_index = 7")
        assert weeks_check(con).metadata["offending_rows"].value == 1
    finally:
        con.close()
