"""Loading by name, atomic replacement, migrations, idempotent history and the published snapshot."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from assets.core.transform import build_core
from assets.history.history import snapshot_history
from tests.fixtures.sample import sample_catalogue, write_sample
from warehouse.archive import latest_responses, scan_archive
from warehouse.db import connect_reader, connect_writer
from warehouse.ddl import create_raw_views, declared, declared_keys
from warehouse.load import query, read_table, replace_rows, replace_tables
from warehouse.publish import publish

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture
def built(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    core = build_core(sample_catalogue(), latest_responses(raw), archive=scan_archive(raw))
    con = connect_writer(tmp_path / "warehouse.duckdb")
    replace_tables(con, {f"catalogue.{k}": v for k, v in sample_catalogue().items()})
    replace_tables(con, core)
    create_raw_views(con, raw)
    yield con, core
    con.close()


def test_round_trip_by_name_keeps_declared_types(built):
    con, core = built
    for name, frame in core.items():
        assert read_table(con, name).equals(frame), name
    # a frame whose columns come in another order still lands by name
    shuffled = core["core.grid_packages"].select("package_id", "position", "grid_id")
    replace_tables(con, {"core.grid_packages": shuffled})
    assert read_table(con, "core.grid_packages").columns == ["grid_id", "package_id", "position"]
    assert read_table(con, "core.grid_packages", order_by=["grid_id", "package_id"]).equals(
        core["core.grid_packages"]
    )


def test_idempotent_reload_adds_no_rows(built):
    con, core = built
    before = {n: con.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0] for n in core}
    replace_tables(con, core)
    after = {n: con.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0] for n in core}
    assert before == after == {n: f.height for n, f in core.items()}


def test_failed_load_leaves_previous_tables_intact(built):
    con, core = built
    bad = core["core.participants"].with_columns(pl.lit("x").alias("not_a_declared_column"))
    with pytest.raises(duckdb.Error):
        replace_tables(con, {"core.packages": core["core.packages"].head(1), "core.participants": bad})
    assert read_table(con, "core.packages").equals(core["core.packages"])  # first table rolled back too
    assert read_table(con, "core.participants").equals(core["core.participants"])
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not any(t.endswith("__staging") for t in tables)


def test_adding_a_declared_column_is_migrated_on_open(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    con = connect_writer(path)
    con.execute("ALTER TABLE history.package_metrics DROP COLUMN health_score")  # an "old" file
    con.execute("INSERT INTO history.refreshes VALUES ('r1', now(), 0)")
    con.close()
    con = connect_writer(path)
    try:
        cols = [r[0] for r in con.execute("DESCRIBE history.package_metrics").fetchall()]
        assert "health_score" in cols
        assert con.execute("SELECT count(*) FROM history.refreshes").fetchall()[0][0] == 1  # data kept
    finally:
        con.close()


def test_one_off_migrations_run_once(tmp_path, monkeypatch):
    from warehouse import ddl

    monkeypatch.setattr(ddl, "MIGRATIONS", [(1, "seed", "INSERT INTO history.refreshes VALUES ('m', now(), 0)")])
    for _ in range(2):
        connect_writer(tmp_path / "w.duckdb").close()
    con = connect_writer(tmp_path / "w.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM history.refreshes").fetchall()[0][0] == 1
    finally:
        con.close()


def test_history_is_idempotent_per_refresh(built):
    con, _core = built
    assert snapshot_history(con, "run-1", NOW) == 9
    assert snapshot_history(con, "run-1", NOW) == 9  # replaced, not duplicated
    assert snapshot_history(con, "run-2", NOW.replace(day=29)) == 9
    counts = query(con, "SELECT refresh_id, count(*) AS n FROM history.package_metrics GROUP BY 1 ORDER BY 1")
    assert counts.rows() == [("run-1", 9), ("run-2", 9)]
    alpha = query(con, "SELECT * FROM history.package_metrics WHERE refresh_id = 'run-2' AND package_id = 1")
    row = alpha.row(0, named=True)
    assert (row["stars"], row["contributors"], row["latest_release"]) == (120, 4, "2.0")
    assert row["commits_52w"] == sum((1 + i) % 5 for i in range(52))


def test_newly_archived_mart(built):
    con, _ = built
    snapshot_history(con, "run-1", NOW)
    con.execute("UPDATE history.package_metrics SET archived = FALSE WHERE refresh_id = 'run-1'")
    snapshot_history(con, "run-2", NOW.replace(day=29))
    assert query(con, "SELECT slug FROM marts.newly_archived")["slug"].to_list() == ["zeta"]
    leaders = query(
        con, "SELECT package_slug, rank FROM marts.grid_leaderboard WHERE grid_slug = 'forms' ORDER BY rank"
    )
    assert leaders.rows() == [("alpha", 1), ("gamma", 2)]


def test_replace_rows_upserts_a_partition(built):
    con, core = built
    changed = core["core.participants"].filter(pl.col("package_id") == 6).with_columns(pl.lit("zoe").alias("login"))
    replace_rows(con, {"core.participants": changed}, by="package_id")
    logins = query(con, "SELECT login FROM core.participants WHERE package_id = 6")["login"].to_list()
    assert logins == ["zoe"]
    assert con.execute("SELECT count(*) FROM core.participants").fetchall()[0][0] == core["core.participants"].height


def test_raw_view_over_the_archive(built):
    con, _ = built
    n = con.execute("SELECT count(*) FROM raw.responses WHERE source = 'github'").fetchall()[0][0]
    assert n == 15  # 13 + iota repo and commits
    latest = con.execute("SELECT status FROM raw.latest_attempts WHERE request_key = 'github:repo:old/gamma'")
    assert latest.fetchall() == [(502,)]


def test_reader_queries_published_copy_while_writer_writes(built, tmp_path):
    con, _core = built
    published = publish(tmp_path / "warehouse.duckdb", tmp_path / "published.duckdb", con=con)
    big = pl.DataFrame({"package_id": range(300_000), "week_index": [0] * 300_000}).with_columns(
        pl.lit(None, pl.Date).alias("week_start"), pl.lit(1, pl.Int32).alias("commits")
    )
    stop = threading.Event()
    writes = []

    def writer():  # keeps the warehouse busy (and locked) the whole time
        while not stop.is_set():
            replace_tables(con, {"core.commit_weeks": big})
            writes.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 1.0
        reads = 0
        while time.monotonic() < deadline or not writes:
            reader = connect_reader(published)
            try:
                assert reader.execute("SELECT count(*) FROM core.packages").fetchall()[0][0] == 9
                assert reader.execute("SELECT count(*) FROM core.commit_weeks").fetchall()[0][0] == 156
            finally:
                reader.close()
            reads += 1
        # a reader of the warehouse itself would meet the writer's lock from another process;
        # the published copy is never locked
        with pytest.raises(duckdb.Error):
            reader = connect_reader(published)
            try:
                reader.execute("CREATE TABLE core.x (a INT)")
            finally:
                reader.close()
    finally:
        stop.set()
        thread.join()
    assert reads > 0 and writes
    # re-publishing replaces the file atomically with the new content
    publish(tmp_path / "warehouse.duckdb", published, con=con)
    reader = connect_reader(published)
    try:
        assert reader.execute("SELECT count(*) FROM core.commit_weeks").fetchall()[0][0] == 300_000
    finally:
        reader.close()


def test_keys_read_from_the_text_are_the_declared_ones():
    """`declared_keys` (text only, for import time) and `declared` (through DuckDB) read the same keys."""
    tables = declared()[0]
    for file in ("core.sql", "history.sql"):
        keys = declared_keys(file)
        assert keys and all(keys.values()), file
        assert keys == {name: tables[name].key for name in keys}, file
    assert set(declared_keys("core.sql")) == {name for name in tables if name.startswith("core.")}


def test_every_declared_view_queries_and_keeps_its_key(built):
    con, _ = built
    views = declared()[1]
    assert views
    for name, view in views.items():
        assert view.key, f"{name} declares no `-- key:` line"
        key = ", ".join(view.key)
        rows, keys = con.execute(f"SELECT count(*), count(DISTINCT ({key})) FROM {name}").fetchone()
        assert rows == keys, f"{name}: {rows - keys} rows repeat a key ({key})"


def test_an_old_warehouse_gains_the_pypi_and_severity_columns_on_open(tmp_path):
    """A file written before the PyPI status/classifier columns (and crawl_errors.severity, history's
    deprecated/pypi_status, the health inputs usage/catalogue_deprecated/pypi_vulnerabilities and
    repositories.created_at) existed is migrated by ALTER TABLE ADD COLUMN and keeps its data."""
    from assets.core.refresh import refresh_core

    added = {
        "core.packages": ["pypi_status", "pypi_status_reason", "pypi_requires_python", "pypi_classifiers",
                          "pypi_inactive", "python_versions", "django_versions", "is_deprecated", "usage",
                          "catalogue_deprecated", "pypi_vulnerabilities"],
        "core.repositories": ["created_at"],
        "core.crawl_errors": ["severity"],
        "history.package_metrics": ["deprecated", "pypi_status"],
    }
    raw = tmp_path / "raw"
    write_sample(raw)
    path = tmp_path / "warehouse.duckdb"
    con = connect_writer(path)
    refresh_core(con, sample_catalogue(), raw, now=datetime.now(UTC))
    snapshot_history(con, "r1", NOW)
    for view in declared()[1]:  # the views read the new columns: an old file had none of them
        con.execute(f"DROP VIEW {view}")
    for table, columns in added.items():
        for column in columns:
            con.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    con.close()
    con = connect_writer(path)
    try:
        for table, columns in added.items():
            have = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            assert have[-len(columns):] == columns, table  # appended, as a fresh file declares them
        assert con.execute("SELECT count(*) FROM core.packages WHERE pypi_status IS NULL").fetchall()[0][0] == 9
        assert con.execute("SELECT count(*) FROM core.packages WHERE usage IS NULL").fetchall()[0][0] == 9
        assert con.execute("SELECT count(*) FROM history.package_metrics").fetchall()[0][0] == 9
        assert refresh_core(con, sample_catalogue(), raw, now=NOW, full=True).mode == "full"
        assert con.execute("SELECT pypi_status FROM core.packages WHERE id = 6").fetchall() == [("archived",)]
        assert con.execute("SELECT usage, catalogue_deprecated, pypi_vulnerabilities FROM core.packages "
                           "WHERE id IN (1, 5, 9) ORDER BY id").fetchall() == [(42, False, 0), (0, True, None),
                                                                               (3, False, 2)]
        assert con.execute("SELECT created_at IS NOT NULL FROM core.repositories "
                           "WHERE repo_key = 'github:acme/iota'").fetchall() == [(True,)]
        assert con.execute("SELECT count(*) FROM core.crawl_errors WHERE severity IS NULL").fetchall()[0][0] == 0
        snapshot_history(con, "r2", NOW.replace(day=29))
        assert con.execute("SELECT deprecated FROM history.package_metrics WHERE refresh_id = 'r2' "
                           "AND package_id = 4").fetchall() == [(True,)]
        for view in declared()[1]:
            con.execute(f"SELECT * FROM {view}").fetchall()
    finally:
        con.close()
