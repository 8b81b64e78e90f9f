"""The health room in the asset graph: core -> health -> history -> marts, over the sample fixture."""

from __future__ import annotations

import importlib
import json
import math
import re
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

import assets.health.scoring as scoring
from assets.core.assets import core_assets
from assets.core.checks import core_checks
from assets.health.assets import HealthScoresConfig, distribution_markdown, health_assets
from assets.health.checks import health_checks, run_health_checks
from assets.health.health import COMPONENTS, CONFIG_PATH, load_config
from assets.health.scoring import compute_scores, read_inputs, score_warehouse, select_tolerant
from assets.history.assets import history_assets
from assets.history.checks import history_checks
from assets.marts.assets import marts_assets
from assets.marts.grids import grid_health
from pipelines.resources import PulseResource, WarehouseResource
from tests.fixtures.sample import T0, sample_catalogue, write_sample_home
from warehouse.db import connect_writer
from warehouse.load import query

SAMPLE_PACKAGES = sample_catalogue()["packages"].height
NOW = T0 + timedelta(days=3)
GRAPH = [*core_assets, *health_assets, *history_assets, *marts_assets, *core_checks, *health_checks,
         *history_checks]


@pytest.fixture
def home(tmp_path):
    return write_sample_home(tmp_path)


def _resources(home, health_config=None):
    return {"pulse": PulseResource(home=str(home), health_config=health_config),
            "warehouse": WarehouseResource(home=str(home))}


def _read(home, sql):
    con = connect_writer(home / "warehouse.duckdb")
    try:
        return query(con, sql)
    finally:
        con.close()


def _checks(result):
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_a_real_run_scores_every_package_and_history_and_marts_see_it(home):
    result = dg.materialize(GRAPH, resources=_resources(home))
    assert result.success
    checks = _checks(result)
    health = {k: e for k, e in checks.items() if k[0].startswith("health/")}
    assert {name for _, name in health} == {"bounded", "components_add_up", "every_package_scored_once",
                                            "djangopackages_weight", "every_grid_weighted_once"}
    assert all(e.passed for e in health.values()), {k: e.metadata for k, e in health.items() if not e.passed}

    meta = {m.asset_key.to_user_string(): m.metadata
            for m in (e.materialization for e in result.get_asset_materialization_events())}
    scores_meta = meta["health/package_scores"]
    assert scores_meta["dagster/row_count"].value == SAMPLE_PACKAGES
    assert scores_meta["health_version"].value == "2026.08.1+eol.2026-08-18"
    assert scores_meta["health_seconds"].value >= 0
    assert "| 90-100 |" in scores_meta["distribution"].value
    top = scores_meta["top_10"].value
    assert top.splitlines()[0] == "| package_id | slug | health_score | cap_reason |"
    assert len(top.splitlines()) == 2 + min(10, SAMPLE_PACKAGES)
    assert meta["health/grid_scores"]["dagster/row_count"].value == 2

    scores = _read(home, "SELECT * FROM health.package_scores ORDER BY package_id")
    assert scores["package_id"].to_list() == sorted(sample_catalogue()["packages"]["id"].to_list())
    # `now` is the run's start: every row carries it, and it is not in the future
    computed = scores["computed_at"].unique()
    assert computed.len() == 1 and computed[0] <= datetime.now(UTC)
    for row in scores.iter_rows(named=True):
        assert 0 <= row["health_score"] <= 100
        assert math.isclose(sum(row[c] for c in COMPONENTS), row["health_uncapped"], abs_tol=1e-6)
        lines = json.loads(row["explanation"])
        assert lines[-1].startswith("security ")
        breakdown = json.loads(row["weight_breakdown"])
        assert breakdown["total_score"] == row["weight"]
        if row["cap"] is not None:
            assert lines[0].startswith(f"capped at {int(row['cap'])}: ")
    slugs = _read(home, "SELECT id, slug FROM core.packages ORDER BY id")["slug"]
    by_slug = dict(zip(slugs, scores.iter_rows(named=True), strict=True))
    assert by_slug["zeta"]["cap"] == 25 and "archived" in by_slug["zeta"]["cap_reason"]  # repository archived
    assert by_slug["gamma"]["cap"] == 10  # PyPI quarantined
    assert by_slug["alpha"]["last_released"] is not None  # alpha's PyPI version has files

    history = _read(home, "SELECT package_id, health_score FROM history.package_metrics ORDER BY package_id")
    assert history.height == SAMPLE_PACKAGES and history["health_score"].null_count() == 0
    assert history["health_score"].to_list() == scores["health_score"].to_list()

    marts = _read(home, "SELECT * FROM marts.package_health ORDER BY package_id")
    assert marts.height == SAMPLE_PACKAGES and marts["change_30d"].null_count() == SAMPLE_PACKAGES  # no trend yet
    grid = _read(home, "SELECT * FROM marts.grid_package_health ORDER BY grid_id, rank, package_id")
    expected = grid_health(scores, _read(home, "SELECT * FROM core.grid_packages"))
    assert grid.select("grid_id", "package_id", "health_score", "rank", "percentile").rows() == \
        expected.select("grid_id", "package_id", "health_score", "rank", "percentile").rows()
    grids = _read(home, "SELECT * FROM marts.grid_health ORDER BY grid_id")
    medians = expected.group_by("grid_id").agg(pl.col("grid_median").first()).sort("grid_id")
    assert grids.filter(pl.col("packages") > 0)["median_health"].to_list() == medians["grid_median"].to_list()


def test_change_30d_and_90d_compare_with_older_snapshots(home):
    run_config = dg.RunConfig(ops={"health_scores": HealthScoresConfig(now=NOW.isoformat())})
    assert dg.materialize([*core_assets, *health_assets, *history_assets], resources=_resources(home),
                          run_config=run_config).success
    con = connect_writer(home / "warehouse.duckdb")
    try:
        # two older snapshots of package 1: 100 days and 40 days before the score
        con.execute("INSERT INTO history.package_metrics (refresh_id, snapshot_at, package_id, health_score) VALUES "
                    "('old90', ?, 1, 10.0), ('old30', ?, 1, 20.5), ('recent', ?, 1, 99.0)",
                    [NOW - timedelta(days=100), NOW - timedelta(days=40), NOW - timedelta(days=5)])
        row = query(con, "SELECT health_score, change_30d, change_90d FROM marts.package_health "
                         "WHERE package_id = 1").row(0)
        other = query(con, "SELECT change_30d, change_90d FROM marts.package_health WHERE package_id = 2").row(0)
    finally:
        con.close()
    assert row[1] == round(row[0] - 20.5, 1) and row[2] == round(row[0] - 10.0, 1)
    assert other == (None, None)


def test_a_corrupted_score_fails_the_blocking_check_and_stops_history(home, monkeypatch):
    """A scoring bug (a score above 100) fails `bounded` in the same run: history and the marts are
    never materialized, so the bad number reaches no snapshot."""
    real = scoring.compute_scores

    def corrupt(*args, **kwargs):
        tables = real(*args, **kwargs)
        scores = tables[scoring.PACKAGE_SCORES]
        tables[scoring.PACKAGE_SCORES] = scores.with_columns(
            pl.when(pl.col("package_id") == 3).then(150.0).otherwise(pl.col("health_score")).alias("health_score"))
        return tables

    monkeypatch.setattr(scoring, "compute_scores", corrupt)
    result = dg.materialize(GRAPH, resources=_resources(home), raise_on_error=False)
    assert not result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "health/package_scores" in materialized
    assert "history/package_metrics" not in materialized
    assert not any(key.startswith("marts/") for key in materialized)
    bounded = _checks(result)[("health/package_scores", "bounded")]
    assert not bounded.passed and bounded.severity == dg.AssetCheckSeverity.ERROR
    assert bounded.metadata["offending_rows"].value == 1
    assert bounded.metadata["examples"].value[0].startswith("(3, 150.0")
    assert _read(home, "SELECT count(*) AS n FROM history.package_metrics")["n"].item() == 0


def test_each_check_catches_its_own_kind_of_wrong_row(home):
    assert dg.materialize([*core_assets, *health_assets], resources=_resources(home)).success
    con = connect_writer(home / "warehouse.duckdb")
    try:
        def failing():
            return {r.check_name: r.metadata["offending_rows"].value for r in run_health_checks(con) if not r.passed}

        assert failing() == {}
        con.execute("UPDATE health.package_scores SET activity = activity + 0.5 WHERE package_id = 1")
        assert failing() == {"components_add_up": 1}
        con.execute("UPDATE health.package_scores SET activity = activity - 0.5 WHERE package_id = 1")
        con.execute("INSERT INTO health.package_scores SELECT * FROM health.package_scores WHERE package_id = 2")
        con.execute("DELETE FROM health.package_scores WHERE package_id = 5")
        assert failing() == {"every_package_scored_once": 2}
        con.execute("DELETE FROM health.package_scores WHERE package_id = 2")
        con.execute("UPDATE health.package_scores SET weight = 101 WHERE package_id = 1")
        assert failing() == {"every_package_scored_once": 2, "djangopackages_weight": 1}
    finally:
        con.close()


def test_missing_inputs_are_read_as_typed_nulls(home):
    """On a warehouse without issue 9's inputs (usage, downloads, vulnerabilities, ...), the reads
    still give every contract column (typed NULL), and scoring says "unknown"."""
    assert dg.materialize(core_assets, resources=_resources(home)).success
    con = connect_writer(home / "warehouse.duckdb")
    try:
        packages = select_tolerant(con, "core.packages", {"id": "BIGINT", "no_such_column": "INTEGER"})
        assert packages.schema["no_such_column"] == pl.Int32
        assert packages["no_such_column"].null_count() == SAMPLE_PACKAGES
        assert select_tolerant(con, "core.no_such_table", {"id": "BIGINT"}) is None
        con.execute("ALTER TABLE core.packages DROP COLUMN pypi_status_reason")
        con.execute("ALTER TABLE core.packages DROP COLUMN pypi_vulnerabilities")  # a warehouse before them
        tables = compute_scores(read_inputs(con), now=NOW)
    finally:
        con.close()
    scores = tables["health.package_scores"]
    assert scores.height == SAMPLE_PACKAGES
    assert all("vulnerabilities unknown" in json.loads(e)[-1] for e in scores["explanation"])


def _changed_config(tmp_path):
    """health.toml with another version, and security worth 15 (popularity's downloads 5): with
    unknown vulnerabilities every package gains 2.5 points, and nothing was crawled."""
    text = CONFIG_PATH.read_text()
    text = re.sub(r'^version = ".*"$', 'version = "test-replay.1"', text, flags=re.M)
    text = text.replace("[popularity]             # log-scaled; the directory percentile is shown, not scored\n"
                        "max = 20", "[popularity]\nmax = 15")
    text = text.replace("downloads_points = 10", "downloads_points = 5")
    text = re.sub(r"(\[security\][^\n]*\n)max = 10", r"\1max = 15", text)
    path = tmp_path / "health-test.toml"
    path.write_text(text)
    return path


def test_a_new_health_config_recomputes_every_score_on_replay_without_a_crawl(home, tmp_path, monkeypatch):
    """`pulse refresh --replay` (the runner, no network: no crawl step runs) with PULSE_HEALTH_CONFIG
    pointing at a changed health.toml rescores every package, and history records the new scores."""
    import pipelines.definitions as definitions
    from pipelines.runner import run_refresh
    from pipelines.settings import Settings

    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the runner keeps its instance under PULSE_HOME
    monkeypatch.delenv("PULSE_HEALTH_CONFIG", raising=False)
    monkeypatch.setenv("PULSE_HOME", str(home))
    settings = Settings.from_mapping({"PULSE_HOME": str(home)})
    try:
        importlib.reload(definitions)  # the code location reads the variables it is loaded with
        first = run_refresh(settings, replay=True)
        assert first.success, first.failure
        assert "crawl" not in first.step_seconds and "health_scores" in first.step_seconds
        before = _read(home, "SELECT * FROM health.package_scores ORDER BY package_id")
        assert set(before["health_version"]) == {"2026.08.1+eol.2026-08-18"}

        monkeypatch.setenv("PULSE_HEALTH_CONFIG", str(_changed_config(tmp_path)))
        importlib.reload(definitions)
        second = run_refresh(settings, replay=True)
    finally:
        monkeypatch.undo()
        importlib.reload(definitions)
    assert second.success, second.failure
    after = _read(home, "SELECT * FROM health.package_scores ORDER BY package_id")
    assert set(after["health_version"]) == {"test-replay.1+eol.2026-08-18"}
    assert after["security_max"].unique().to_list() == [15.0]
    # the stored scores are the new config's, and they moved: compare with both configs scored at
    # the same instant from the same warehouse
    con = connect_writer(home / "warehouse.duckdb")
    try:
        inputs, instant = read_inputs(con), after["computed_at"][0]
        old = compute_scores(inputs, now=instant)["health.package_scores"]
        new = compute_scores(inputs, now=instant, config=load_config(_changed_config(tmp_path)))
    finally:
        con.close()
    assert after["health_uncapped"].to_list() == new["health.package_scores"]["health_uncapped"].to_list()
    change = (after["health_uncapped"] - old["health_uncapped"]).round(6)
    assert (change != 0).sum() >= SAMPLE_PACKAGES - 1  # only a package worth 0 in both weights stays
    history = _read(home, "SELECT m.package_id, m.health_score FROM history.package_metrics m "
                          "JOIN history.refreshes r USING (refresh_id) ORDER BY r.snapshot_at, m.package_id")
    assert history.height == 2 * SAMPLE_PACKAGES
    assert history["health_score"].tail(SAMPLE_PACKAGES).to_list() == after["health_score"].to_list()


def test_now_is_injectable_and_the_same_inputs_give_the_same_scores(home):
    run_config = dg.RunConfig(ops={"health_scores": HealthScoresConfig(now=NOW.isoformat())})
    assert dg.materialize([*core_assets, *health_assets], resources=_resources(home), run_config=run_config).success
    first = _read(home, "SELECT * FROM health.package_scores ORDER BY package_id")
    assert first["computed_at"].unique().to_list() == [NOW]
    assert dg.materialize([*core_assets, *health_assets], resources=_resources(home), run_config=run_config).success
    assert _read(home, "SELECT * FROM health.package_scores ORDER BY package_id").equals(first)
    con = connect_writer(home / "warehouse.duckdb")
    try:
        assert score_warehouse(con, now=NOW, write=False).tables["health.package_scores"].equals(first)
    finally:
        con.close()


def test_distribution_bands():
    text = distribution_markdown(pl.Series([0.0, 9.9, 10.0, 55.5, 100.0, None]))
    rows = {line.split(" | ")[0].lstrip("| "): int(line.split(" | ")[1]) for line in text.splitlines()[2:]}
    assert rows["0-9.9"] == 2 and rows["10-19.9"] == 1 and rows["50-59.9"] == 1 and rows["90-100"] == 1
    assert sum(rows.values()) == 5
