"""PULSE_WAREHOUSE_URL: the warehouse attached instead of opened directly (warehouse/db.py, publish.py).

What runs here for real: URL validation; the attached-catalog code path with a local DuckDB file as the
attached warehouse (writer, lock, live reader, publish by COPY FROM DATABASE), including a whole
`pulse refresh` against the simulator whose published snapshot equals a default run's on the same world;
and `ducklake:` / `md:`, whose extensions cannot be installed on this machine (DuckDB 2.0.1, no
extension repository), failing with one clear message and creating nothing. Nothing is monkeypatched:
the extensions really fail to load. The DuckLake and MotherDuck services themselves are on paper
(deploy/README.md, "Warehouse on DuckLake or MotherDuck").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.core.columns import CORE_KEYS, CORE_TABLES
from assets.raw.assets import ALL_PARTITIONS_TAGS
from pipelines.resources import WarehouseResource
from pipelines.settings import Settings, SettingsError
from simulator.server import start_in_thread
from tests.crawl.simjob import TIME_COLUMNS, export_records, sim_refresh_job
from tests.e2e.conftest import PULSE, pulse_env, run_pulse
from warehouse.db import (
    CATALOG,
    WarehouseUnavailable,
    WarehouseUrlError,
    connect_live_reader,
    connect_reader,
    ducklake_incompatibilities,
    lock_path,
    open_writer,
    parse_warehouse_url,
)
from warehouse.publish import publish

SECRET = "hunter2-not-a-real-password"
TOKEN = "md-test-token-not-real-0123456789"


def _loadable(extension: str) -> bool:
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        con.execute(f"LOAD {extension}")
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# --- parsing ---------------------------------------------------------------------------------------------

def test_unset_is_the_local_file_opened_directly(tmp_path):
    target = parse_warehouse_url(None, None, tmp_path)
    assert (target.kind, target.path, target.attached) == ("file", tmp_path / "warehouse.duckdb", False)
    assert Settings.from_mapping({"PULSE_HOME": str(tmp_path)}).target == target
    assert WarehouseResource(home=str(tmp_path)).target() == target
    assert lock_path(target) == tmp_path / "warehouse.duckdb.writer.lock"  # where it always was


def test_the_accepted_forms(tmp_path):
    home = tmp_path / "home"
    for url in (f"duckdb:{tmp_path}/else.duckdb", f"{tmp_path}/else.duckdb"):
        target = parse_warehouse_url(url, None, home)
        assert (target.kind, target.path, target.attached, target.catalog) == \
            ("duckdb", tmp_path / "else.duckdb", True, CATALOG)
        assert lock_path(target) == tmp_path / "else.duckdb.writer.lock"
    lake = parse_warehouse_url(f"ducklake:{tmp_path}/meta.ducklake", None, home)
    assert (lake.kind, lake.path, lake.extensions, lake.data_path) == ("ducklake", None, ("ducklake",), None)
    assert lock_path(lake) == home / "state" / "warehouse.writer.lock"  # remote: the lock under PULSE_HOME/state
    pg = parse_warehouse_url("ducklake:postgres:dbname=pulse host=db", "s3://bucket/lake/", home)
    assert pg.extensions == ("ducklake", "postgres", "httpfs") and pg.data_path == "s3://bucket/lake/"
    assert pg.attach_uri == "ducklake:postgres:dbname=pulse host=db"
    local_data = parse_warehouse_url("ducklake:sqlite:/x/meta.sqlite", str(tmp_path / "lake"), home)
    assert local_data.data_path == f"{tmp_path}/lake/" and local_data.extensions == ("ducklake", "sqlite")
    md = parse_warehouse_url("md:pulse", None, home)
    assert (md.kind, md.catalog, md.extensions, md.path) == ("motherduck", "pulse", ("motherduck",), None)


@pytest.mark.parametrize(("url", "data_path", "expected"), [
    ("s3://bucket/warehouse", None, "unknown scheme 's3'"),
    (f"postgres://pulse:{SECRET}@db/pulse", None, "unknown scheme 'postgres'"),
    ("ducklake:postgres:dbname=pulse host=db", None, "PULSE_WAREHOUSE_DATA_PATH is required"),
    (f"ducklake:postgres:dbname=pulse password={SECRET}", None, "PULSE_WAREHOUSE_DATA_PATH is required"),
    ("ducklake:", None, "names no metadata catalog"),
    ("ducklake:oracle:thing", "s3://b/l/", "unknown DuckLake catalog type 'oracle'"),
    ("ducklake:postgres:dbname=pulse", f"s3://AKIAEXAMPLE:{SECRET}@bucket/lake/", "carries credentials"),
    ("ducklake:postgres:dbname=pulse", "ftp://host/lake/", "unknown storage scheme 'ftp'"),
    ("md:", None, "names no MotherDuck database"),
    (f"md:pulse?motherduck_token={SECRET}", None, "MOTHERDUCK_TOKEN"),
    ("md:pulse", "s3://bucket/lake/", "only used with PULSE_WAREHOUSE_URL=ducklake"),
    (None, "s3://bucket/lake/", "PULSE_WAREHOUSE_URL is unset"),
    ("{home}/published.duckdb", None, "is the published snapshot"),
    ("duckdb:", None, "path is missing"),
])
def test_unusable_settings_are_refused_naming_the_variable_never_a_secret(tmp_path, url, data_path, expected):
    home = tmp_path / "home"
    url = url.format(home=home) if url else url
    with pytest.raises(WarehouseUrlError) as caught:
        parse_warehouse_url(url, data_path, home)
    message = str(caught.value)
    assert expected in message and "PULSE_WAREHOUSE_" in message
    assert SECRET not in message
    env = {"PULSE_HOME": str(home), "PULSE_WAREHOUSE_URL": url, "PULSE_WAREHOUSE_DATA_PATH": data_path}
    with pytest.raises(SettingsError, match="PULSE_WAREHOUSE_"):  # the settings give the same message
        Settings.from_mapping(env)
    assert not home.exists()  # nothing created


def test_the_cli_refuses_an_unusable_url_in_one_line_without_the_secret(tmp_path):
    env = {**os.environ, "PULSE_HOME": str(tmp_path / "home"),
           "PULSE_WAREHOUSE_URL": f"postgresql://pulse:{SECRET}@db.example/pulse"}
    result = run_pulse("refresh", env=env, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "PULSE_WAREHOUSE_URL" in output and "unknown scheme 'postgresql'" in output
    assert SECRET not in output
    assert not (tmp_path / "home").exists()


# --- ducklake: and md: on a machine without their extensions ---------------------------------------------

def _unavailable(target, tmp_path: Path) -> str:
    before = _files(tmp_path)
    with pytest.raises(WarehouseUnavailable) as caught, open_writer(target):
        pass
    assert _files(tmp_path) == before  # no lock file, no catalog file, no local fallback
    return " ".join(str(caught.value).split())


@pytest.mark.skipif(_loadable("ducklake"), reason="the ducklake extension is installed here: this checks its absence")
def test_ducklake_without_its_extension_fails_clearly_and_creates_nothing(tmp_path):
    home = tmp_path / "home"
    for url, data in ((f"ducklake:{tmp_path}/meta.ducklake", None),
                      (f"ducklake:postgres:dbname=pulse host=db password={SECRET}", "s3://bucket/lake/")):
        message = _unavailable(parse_warehouse_url(url, data, home), tmp_path)
        assert "PULSE_WAREHOUSE_URL" in message and "`ducklake` extension" in message
        assert f"DuckDB {duckdb.__version__}" in message
        assert "INSTALL ducklake" in message and "extension directory" in message
        assert "Nothing was created" in message
        assert SECRET not in message
    assert not home.exists() and not (tmp_path / "meta.ducklake").exists()


@pytest.mark.skipif(_loadable("motherduck"), reason="the motherduck extension is installed here")
def test_motherduck_without_its_extension_fails_clearly_and_never_shows_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTHERDUCK_TOKEN", TOKEN)  # the environment a pod would have, not a patched function
    message = _unavailable(parse_warehouse_url("md:pulse", None, tmp_path / "home"), tmp_path)
    assert "PULSE_WAREHOUSE_URL" in message and "`motherduck` extension" in message
    assert f"DuckDB {duckdb.__version__}" in message and "INSTALL motherduck" in message
    assert TOKEN not in message


@pytest.mark.skipif(_loadable("ducklake"), reason="the ducklake extension is installed here")
def test_pulse_refresh_on_ducklake_stops_before_dagster_with_the_message(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "PULSE_HOME": str(home), "PULSE_WAREHOUSE_URL": f"ducklake:{tmp_path}/meta.ducklake",
           "PULSE_WAREHOUSE_DATA_PATH": str(tmp_path / "lake"), "MOTHERDUCK_TOKEN": TOKEN}
    result = run_pulse("refresh", env=env, timeout=120)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert "pulse: PULSE_WAREHOUSE_URL asks for DuckLake" in output and "INSTALL ducklake" in output
    assert _files(home) == [] and _files(tmp_path) == ["home"]  # no warehouse, no lake, no Dagster run


# --- the attached path, with a local DuckDB file as the warehouse ------------------------------------------

def test_an_attached_file_is_written_locked_read_and_published_by_copy(tmp_path):
    home = tmp_path / "home"
    target = parse_warehouse_url(f"duckdb:{tmp_path}/elsewhere/lake.duckdb", None, home)
    with open_writer(target) as con:
        assert con.execute("SELECT current_database()").fetchone()[0] == CATALOG
        assert lock_path(target).exists() and lock_path(target).parent == tmp_path / "elsewhere"
        con.execute("CREATE OR REPLACE TABLE core.probe AS SELECT range AS n FROM range(5)")
        con.execute("CREATE OR REPLACE VIEW marts.probe_view AS SELECT n * 2 AS twice FROM core.probe")
        published = publish(target, home / "published.duckdb", con=con)
    assert not (home / "warehouse.duckdb").exists()  # the default file is not involved
    reader = connect_reader(published)
    try:
        assert reader.execute("SELECT sum(twice) FROM marts.probe_view").fetchone()[0] == 20
        assert reader.execute("SELECT count(*) FROM core.packages").fetchone()[0] == 0  # the whole schema
    finally:
        reader.close()
    assert sorted(p.name for p in home.iterdir()) == ["published.duckdb"]  # no temporary file left
    live = connect_live_reader(target)
    try:
        assert live.execute("SELECT count(*) FROM core.probe").fetchone()[0] == 5
        with pytest.raises(duckdb.Error):  # read-only
            live.execute("CREATE TABLE core.nope (a INTEGER)")
    finally:
        live.close()
    # without a connection of its own, publish opens the writer (under the lock) itself
    assert publish(target, home / "again.duckdb") == home / "again.duckdb"


def test_a_failed_copy_is_never_published(tmp_path):
    home = tmp_path / "home"
    target = parse_warehouse_url(str(tmp_path / "lake.duckdb"), None, home)
    with open_writer(target) as con:
        publish(target, home / "published.duckdb", con=con)
    before = (home / "published.duckdb").read_bytes()
    other = duckdb.connect()  # a connection where the warehouse is not attached: COPY FROM DATABASE fails
    try:
        with pytest.raises(duckdb.Error):
            publish(target, home / "published.duckdb", con=other)
    finally:
        other.close()
    assert (home / "published.duckdb").read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["published.duckdb"]


def test_the_incompatibility_check_finds_what_ducklake_cannot_store():
    con = duckdb.connect()
    try:
        con.execute("CREATE TYPE mood AS ENUM ('a', 'b')")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, big HUGEINT, m mood, fixed INTEGER[3], ok VARCHAR[], "
                    "stamp TIMESTAMPTZ DEFAULT now(), n INTEGER DEFAULT 0 NOT NULL)")
        con.execute("CREATE SEQUENCE s")
        con.execute("CREATE MACRO twice(x) AS x * 2")
        con.execute("CREATE VIEW v AS SELECT sum(big) AS total FROM t")  # views are skipped: DuckLake keeps SQL
        found = ducklake_incompatibilities(con)
    finally:
        con.close()
    assert any("t.big: type HUGEINT" in p for p in found) and any("t.m: type" in p for p in found)
    assert any("t.fixed: type INTEGER[3]" in p for p in found) and any("t.stamp: default" in p for p in found)
    assert any("PRIMARY KEY" in p for p in found) and "sequence s" in found and "macro twice" in found
    assert not any(".ok:" in p or ".n:" in p or "main.v." in p for p in found), found


# --- a whole refresh on an attached warehouse vs the default ---------------------------------------------

PACKAGES = 20
SEED = 41
PUBLIC_URL = "https://pulse.example"
BY_CRAWL_TIMING = ("main.core_files",)  # the raw batch files the core build read: one per crawl flush


@pytest.fixture(scope="module")
def two_refreshes(tmp_path_factory):
    """The same simulator world refreshed twice at once: by the real `pulse refresh` CLI with the warehouse
    attached from another folder (PULSE_WAREHOUSE_URL=duckdb:...), and by the `refresh` job in-process
    with the setting unset (the default file)."""
    sims = [start_in_thread(packages=PACKAGES, seed=SEED) for _ in range(2)]
    default_home, url_home = tmp_path_factory.mktemp("default_home"), tmp_path_factory.mktemp("url_home")
    lake = tmp_path_factory.mktemp("elsewhere") / "lake.duckdb"
    try:
        process = subprocess.Popen([PULSE, "refresh"], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=pulse_env(sims[1], url_home, PULSE_PUBLIC_URL=PUBLIC_URL,
                                                 PULSE_WAREHOUSE_URL=f"duckdb:{lake}"))
        with dg.DagsterInstance.ephemeral() as instance:
            env = pulse_env(sims[0], default_home)
            job = sim_refresh_job(sims[0], default_home, public_url=PUBLIC_URL, tokens=env["GITHUB_TOKEN"],
                                  timezone=env["PULSE_TIMEZONE"])
            assert job.execute_in_process(instance=instance, tags=ALL_PARTITIONS_TAGS).success
        out, err = process.communicate(timeout=300)
        yield default_home, url_home, lake, subprocess.CompletedProcess(process.args, process.returncode, out, err)
    finally:
        for sim in sims:
            sim.stop()


def _relations(path: Path) -> dict[str, tuple]:
    """schema.name -> (kind, columns and types, rows) of every table and view of a DuckDB file."""
    con = connect_reader(path)
    try:
        rows = con.execute("SELECT table_schema, table_name, table_type FROM information_schema.tables "
                           "WHERE table_catalog = current_database() ORDER BY ALL").fetchall()
        out = {}
        for schema, name, kind in rows:
            columns = tuple(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_catalog = current_database() AND table_schema = ? AND "
                                        "table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall())
            count = con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]
            out[f"{schema}.{name}"] = (kind, columns, count)
        return out
    finally:
        con.close()


def _table(path: Path, name: str, order: tuple[str, ...] | None = None) -> pl.DataFrame:
    con = connect_reader(path)
    try:
        frame = con.sql(f"SELECT * FROM {name}").pl()
    finally:
        con.close()
    return frame.sort(list(order) if order else frame.columns)


@pytest.mark.slow  # two real refreshes of a small world
def test_a_refresh_on_an_attached_warehouse_publishes_what_the_default_does(two_refreshes):
    default_home, url_home, lake, result = two_refreshes
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"warehouse DuckDB file {lake} (attached)" in " ".join(result.stderr.split())
    assert lake.exists() and lock_path(lake).exists()  # the warehouse and its lock live elsewhere
    assert not (url_home / "warehouse.duckdb").exists()  # nothing fell back to the default file
    got, expected = url_home / "published.duckdb", default_home / "published.duckdb"
    got_relations, expected_relations = _relations(got), _relations(expected)
    for name in BY_CRAWL_TIMING:  # same shape; how many raw batches a crawl wrote depends on its timing
        assert got_relations.pop(name)[:2] == expected_relations.pop(name)[:2]
    assert got_relations == expected_relations  # every schema, table and view: columns, types, rows
    assert got_relations["core.packages"][2] == PACKAGES
    for name in CORE_TABLES:
        drop = TIME_COLUMNS.get(name, ())
        left = _table(got, name, CORE_KEYS[name]).drop(drop)
        right = _table(expected, name, CORE_KEYS[name]).drop(drop)
        assert left.equals(right), name
    for name in ("catalogue.packages", "catalogue.grids", "catalogue.categories", "catalogue.grid_packages"):
        assert _table(got, name).equals(_table(expected, name)), name
    assert export_records(url_home) == export_records(default_home)  # what readers and the API get


@pytest.mark.slow
def test_the_warehouse_holds_nothing_ducklake_could_not_store(two_refreshes):
    default_home, _, lake, result = two_refreshes
    assert result.returncode == 0, result.stderr[-3000:]
    for path in (default_home / "warehouse.duckdb", lake):
        con = connect_reader(path)
        try:
            assert ducklake_incompatibilities(con) == [], path
        finally:
            con.close()
