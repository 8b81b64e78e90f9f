"""The `catalogue` multi-asset materialized in-process into a real DuckDB warehouse."""

from __future__ import annotations

import dagster as dg
import duckdb
import orjson
import pytest

from assets.catalogue.assets import CATALOGUE_KEYS, PLAUSIBLE_KEY, catalogue
from pipelines.resources import WRITER_POOL, PulseResource, WarehouseResource
from tests.catalogue.conftest import v4_world


def _materialize(home, monkeypatch, source: str, raise_on_error: bool = True, *, accept: bool = False,
                 max_shrink: str | None = None):
    # the resources are configured by their fields, never the environment: this one must be ignored
    monkeypatch.setenv("PULSE_CATALOGUE", "http://from-the-environment.invalid")
    return dg.materialize(
        [catalogue],
        resources={"pulse": PulseResource(home=str(home), catalogue=source, catalogue_max_shrink=max_shrink),
                   "warehouse": WarehouseResource(home=str(home))},
        raise_on_error=raise_on_error,
        run_config={"ops": {"catalogue": {"config": {"accept_change": accept}}}},
    )


def _check(result) -> dg.AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.asset_check_key == PLAUSIBLE_KEY
    return evaluation


def _packages(home) -> list[int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return [row[0] for row in con.execute("SELECT id FROM catalogue.packages ORDER BY id").fetchall()]
    finally:
        con.close()


def _metadata(result, name: str) -> dict:
    events = result.asset_materializations_for_node("catalogue")
    by_key = {e.asset_key: e.metadata for e in events}
    return by_key[CATALOGUE_KEYS[name]]


def test_asset_definition():
    specs = {spec.key: spec for spec in catalogue.specs}
    assert set(specs) == {dg.AssetKey(["catalogue", n]) for n in
                          ("categories", "grids", "grid_packages", "packages", "rejects")}
    assert {spec.group_name for spec in specs.values()} == {"catalogue"}
    assert all(spec.kinds == {"duckdb", "polars"} for spec in specs.values())
    assert catalogue.op.pool == WRITER_POOL
    assert {"pulse", "warehouse"} <= catalogue.required_resource_keys
    [check] = catalogue.check_specs
    assert check.key == PLAUSIBLE_KEY and check.blocking


def test_materialize_from_the_api_into_duckdb(tmp_path, monkeypatch, v4_server):
    v4_server.data["packages"].append({**v4_server.data["packages"][0], "id": 50, "slug": "package-7"})
    v4_server.data["packages"][1]["repo_url"] = "https://github.com.evil.io/o/r"
    result = _materialize(tmp_path, monkeypatch, v4_server.url)
    assert result.success
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM catalogue.{t}").fetchone()[0]
                  for t in ("categories", "grids", "grid_packages", "packages", "rejects")}
        assert counts == {"categories": 2, "grids": 3, "grid_packages": 7, "packages": 7, "rejects": 1}
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'catalogue' AND table_name = 'packages'").fetchall())
        assert types["id"] == "BIGINT" and types["created"] == "TIMESTAMP WITH TIME ZONE"
        assert types["repo_key"] == "VARCHAR"
        problem = con.execute("SELECT repo_url_problem FROM catalogue.packages WHERE id = 6").fetchone()[0]
        assert problem.startswith("lookalike_host: ")
        reject = con.execute("SELECT kind, source_id, slug, reason, record FROM catalogue.rejects").fetchone()
        assert reject[:3] == ("package", 50, "package-7") and reject[3].startswith("duplicate_slug: ")
        assert orjson.loads(reject[4])["id"] == 50
    finally:
        con.close()
    meta = _metadata(result, "packages")
    assert meta["dagster/row_count"].value == 7
    assert meta["repo_hosts"].data == {"github": 6, "none": 1}
    assert meta["repo_url_problems"].data == {"lookalike_host": 1}
    rejects_meta = _metadata(result, "rejects")
    assert rejects_meta["rejects_by_reason"].data == {"package/duplicate_slug": 1}
    assert "duplicate_slug" in rejects_meta["preview"].value


def test_materialize_replaces_tables_from_a_csv(tmp_path, monkeypatch):
    first = tmp_path / "first.json"
    first.write_bytes(orjson.dumps(v4_world(packages=9)))
    assert _materialize(tmp_path, monkeypatch, str(first)).success
    second = tmp_path / "catalogue.csv"
    second.write_text('dp_slug;dp_category;dp_grids;dp_repo_url\n"x";"apps";"g";"https://gitlab.com/a/b/c"\n')
    # 9 -> 1 package: refused (kept as stored) unless accepted
    refused = _materialize(tmp_path, monkeypatch, str(second), raise_on_error=False)
    assert not refused.success and not refused.asset_materializations_for_node("catalogue")
    evaluation = _check(refused)
    assert not evaluation.passed and evaluation.metadata["kind"].value == "shrink"
    assert evaluation.metadata["reason"].value.startswith("catalogue refused: 1 packages where 9 are stored")
    assert _packages(tmp_path) == list(range(1, 10))
    assert _materialize(tmp_path, monkeypatch, str(second), accept=True).success
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT id, slug, repo_key, pypi_name FROM catalogue.packages").fetchall() == [
            (1, "x", "gitlab:a/b/c", "x")]
        assert con.execute("SELECT count(*) FROM catalogue.grids").fetchone()[0] == 1
    finally:
        con.close()


def test_unreachable_catalogue_fails_the_blocking_check_with_one_line(tmp_path, monkeypatch):
    missing = tmp_path / "missing.json"
    result = _materialize(tmp_path, monkeypatch, str(missing), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
    evaluation = _check(result)
    assert not evaluation.passed and evaluation.metadata["kind"].value == "incomplete"
    reason = evaluation.metadata["reason"].value
    assert "\n" not in reason and reason.endswith(f"catalogue file not found: {missing}")
    with pytest.raises(Exception, match="blocking asset check"):
        _materialize(tmp_path, monkeypatch, str(missing))


def test_small_shrink_is_applied_big_one_by_setting(tmp_path, monkeypatch):
    first = tmp_path / "first.json"
    first.write_bytes(orjson.dumps(v4_world(packages=20)))
    assert _materialize(tmp_path, monkeypatch, str(first)).success
    world = v4_world(packages=20)
    world["packages"] = [p for p in world["packages"] if p["id"] not in (3, 4)]  # -10%: within the default
    second = tmp_path / "second.json"
    second.write_bytes(orjson.dumps(world))
    result = _materialize(tmp_path, monkeypatch, str(second))
    assert _check(result).passed and _check(result).metadata["kind"].value == "ok"
    assert 3 not in _packages(tmp_path) and len(_packages(tmp_path)) == 18
    world["packages"] = world["packages"][:9]  # -50%: PULSE_CATALOGUE_MAX_SHRINK=0.5 allows it
    second.write_bytes(orjson.dumps(world))
    assert not _materialize(tmp_path, monkeypatch, str(second), raise_on_error=False).success
    assert _materialize(tmp_path, monkeypatch, str(second), max_shrink="0.5").success
    assert len(_packages(tmp_path)) == 9


def test_empty_catalogue_is_refused_even_accepted_and_on_a_first_run(tmp_path, monkeypatch):
    empty = tmp_path / "empty.json"
    empty.write_bytes(orjson.dumps({"count": 0, "next": None, "previous": None, "results": []}))
    result = _materialize(tmp_path, monkeypatch, str(empty), raise_on_error=False, accept=True)
    assert not result.success and _check(result).metadata["kind"].value == "empty"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'catalogue'"
                           ).fetchone()[0] == 0  # nothing written
    finally:
        con.close()
