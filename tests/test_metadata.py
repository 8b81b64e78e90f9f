"""What the Dagster UI is told about tables and crawls: the data dictionary read as data, the asset
definitions carrying it, materialization metadata from a real DuckDB file, the crawl's plotted numbers
and the Markdown previews (fast; the webserver test reads the same through GraphQL after a real run)."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from assets.metadata import OWNERS, column_schema, table_definition, table_metadata
from assets.previews import markdown_table, most_starred, newest_crawl_errors, table_sizes
from assets.raw.metrics import crawl_metrics
from pipelines.crawler.crawl import CrawlReport
from pipelines.definitions import defs
from pipelines.sources.crawling import SourceStats
from pipelines.sources.http.fetched import ERROR_KINDS
from warehouse.db import connect_writer
from warehouse.ddl import relation_keys
from warehouse.dictionary import parse, relations

TABLE_GROUPS = ("catalogue", "core", "health", "history", "marts")


def test_dictionary_text_is_read_into_description_key_and_columns():
    text = """
## Tables

### core.things

key: (a, b). One row per thing,
over two lines.

A second paragraph that is not the description.

| column | type | meaning |
|---|---|---|
| a | BIGINT | the first |
| b | TIMESTAMP WITH TIME ZONE | when (UTC) |

### raw.log

no key: every attempt.

| column | type | meaning |
|---|---|---|
| tags | VARCHAR[] | labels, `x` or `y` |

## Another chapter

| c | INTEGER | not a column of raw.log |
"""
    things, log = parse(text)["core.things"], parse(text)["raw.log"]
    assert things.key == ("a", "b") and things.description == "One row per thing, over two lines."
    assert [(c.name, c.type, c.meaning) for c in things.columns] == [
        ("a", "BIGINT", "the first"), ("b", "TIMESTAMP WITH TIME ZONE", "when (UTC)")]
    assert log.key == () and log.description == "Every attempt."
    assert [c.name for c in log.columns] == ["tags"] and log.columns[0].type == "VARCHAR[]"


def test_the_shipped_dictionary_describes_every_relation_with_its_declared_key():
    documented = relations()
    assert {name: rel.key for name, rel in documented.items()} == relation_keys()
    for name, rel in documented.items():
        assert rel.description and rel.columns, name
        assert all(c.meaning for c in rel.columns), name


def test_every_table_asset_definition_carries_its_dictionary_entry():
    specs = [s for s in defs.resolve_all_asset_specs() if s.group_name in TABLE_GROUPS]
    assert len(specs) == len([n for n in relations() if n.split(".")[0] in TABLE_GROUPS]) - 1  # history.refreshes
    for spec in specs:
        name = ".".join(spec.key.path)
        rel = relations()[name]
        schema = spec.metadata["dagster/column_schema"]
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (c.name, c.type, c.meaning) for c in rel.columns], name
        assert spec.metadata["dagster/table_name"] == f"warehouse.{name}"
        assert spec.description == rel.description and list(spec.owners) == OWNERS, name
        assert "duckdb" in spec.kinds, name
    assert all(list(s.owners) == OWNERS for s in defs.resolve_all_asset_specs())  # raw and exports too


def test_key_columns_carry_their_constraints():
    single = {c.name: c.constraints for c in column_schema("core.packages").columns}
    assert single["id"] == dg.TableColumnConstraints(nullable=False, unique=True, other=["key"])
    assert single["slug"] == dg.TableColumnConstraints()  # not part of the key: no constraint stated
    pair = {c.name: c.constraints for c in column_schema("core.grid_packages").columns}
    assert pair["grid_id"] == dg.TableColumnConstraints(nullable=False, other=["part of the key (grid_id, package_id)"])
    assert column_schema("catalogue.rejects").constraints.other == ["no key"]
    assert table_definition("core.packages", description="mine")["description"] == "mine"


def test_an_undocumented_table_still_loads_without_meanings(con):
    """A table the README does not describe yet must not stop the code location from loading."""
    definition = table_definition("core.not_documented")
    assert "not in the data dictionary" in definition["description"]
    assert definition["metadata"]["dagster/column_schema"].constraints.other == ["key not documented"]
    con.execute("CREATE TABLE core.not_documented AS SELECT 1 AS id")
    try:
        meta = table_metadata(con, "core.not_documented")
        assert meta["dagster/row_count"] == 1
        assert [(c.name, c.description) for c in meta["dagster/column_schema"].columns] == [("id", None)]
    finally:
        con.execute("DROP TABLE core.not_documented")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    connection = connect_writer(tmp_path_factory.mktemp("metadata") / "warehouse.duckdb")
    yield connection
    connection.close()


def test_table_metadata_reports_the_table_as_the_database_has_it(con):
    con.execute("INSERT INTO core.grid_packages BY NAME "
                "SELECT * FROM (VALUES (1, 10), (1, 11), (2, 10)) t(grid_id, package_id)")
    meta = table_metadata(con, "core.grid_packages")
    assert meta["dagster/row_count"] == 3 and meta["dagster/table_name"] == "warehouse.core.grid_packages"
    assert [(c.name, c.type) for c in meta["dagster/column_schema"].columns] == [
        ("grid_id", "BIGINT"), ("package_id", "BIGINT"), ("position", "INTEGER")]
    # a column the database has and the dictionary lacks is shown as it is, undescribed
    con.execute("ALTER TABLE core.grids ADD COLUMN extra INTEGER")
    try:
        columns = {c.name: c for c in table_metadata(con, "core.grids")["dagster/column_schema"].columns}
        assert columns["extra"].description is None and columns["slug"].description == "URL slug"
    finally:
        con.execute("ALTER TABLE core.grids DROP COLUMN extra")
    assert table_metadata(con, "marts.grid_health")["dagster/row_count"] == 0  # views too
    with pytest.raises(ValueError, match=r"schema\.table"):
        table_metadata(con, "core.packages; DROP TABLE core.packages")


def test_markdown_previews(con):
    con.execute("INSERT INTO core.packages (id, slug, repo_watchers) "
                "SELECT i, 'pkg-' || i, i % 13 FROM range(1, 31) t(i)")
    con.execute("INSERT INTO core.crawl_errors (package_id, source, request_key, kind, http_status, message, "
                "last_seen, severity) VALUES "
                "(1, 'github', 'github:repo:a/b', 'gone', 404, 'gone | with a pipe\nand a newline', "
                "'2026-01-02 03:04:00+00', 'error'), "
                "(2, 'github', 'github:repo:c/d', 'renamed', 301, 'notice', '2026-02-01 00:00:00+00', 'info')")
    starred = most_starred(con).value.splitlines()
    assert len(starred) == 12  # header, rule, ten rows
    assert [row.split(" | ")[2] for row in starred[2:5]] == ["12", "12", "11"]  # ties by id: 12, 25, then 11
    assert [row.split(" | ")[1] for row in starred[2:4]] == ["pkg-12", "pkg-25"]
    errors = newest_crawl_errors(con).value
    assert "pkg-1 | gone \\| with a pipe and a newline |" in errors and "notice" not in errors
    sizes = table_sizes(con, ["core", "marts"]).value
    assert "| core.packages | 30 |" in sizes and "marts." not in sizes  # views are not counted
    assert markdown_table(["a"], [], "nothing") == "nothing"
    assert markdown_table(["a"], [("x" * 500,)]).splitlines()[2].endswith("… |")


def test_crawl_metrics_are_flat_numbers_under_stable_names():
    report = CrawlReport(
        sources={"github": SourceStats(requests=10, statuses=Counter({200: 6, 304: 3, 404: 1}), quota_spent=12.0,
                                       quota_wait_s=1.5, backoffs=[2.0, 0.5], pace_wait_s=0.75,
                                       slot_wait_s=0.25)},
        errors=[("github:a/b", "github", "not_found", 404, "no"), ("pypi:x", "pypi", "gone", 404, "no")],
        jobs_by_source={"github": 5, "pypi": 7}, done_by_source={"github": 4, "pypi": 7},
    )
    github = crawl_metrics(report, "github")
    assert github == {
        "requests": 10, "answers_304": 3, "ratio_304": 0.3, "quota_spent": 12.0, "quota_wait_s": 1.5,
        "backoff_s": 2.5, "backoffs": 2, "pace_wait_s": 0.75, "slot_wait_s": 0.25, "waited_s": 5.0,
        "errors": 1,
        **{f"errors_{kind}": int(kind == "not_found") for kind in ERROR_KINDS},
        "packages_due": 5, "packages_done": 4,
    }
    quiet = crawl_metrics(report, "codeberg")  # a source with nothing this run: the same names, zeros
    assert quiet.keys() == github.keys() and not any(quiet.values())
    assert all(type(v) in (int, float) for v in github.values())
