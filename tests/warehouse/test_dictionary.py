"""warehouse/README.md documents every table/view column with its type and key, and nothing else exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.catalogue.readers import CatalogueRecords
from assets.catalogue.transform import build_catalogue
from assets.core.transform import build_core
from assets.health.scoring import score_warehouse
from assets.history.history import snapshot_history
from tests.fixtures.sample import sample_catalogue, write_sample
from warehouse.archive import latest_responses, scan_archive
from warehouse.db import connect_writer
from warehouse.ddl import create_raw_views, declared, relation_keys
from warehouse.load import replace_tables

README = Path(__file__).resolve().parents[2] / "warehouse" / "README.md"
DOCUMENTED_SCHEMAS = ("catalogue", "raw", "core", "health", "history", "marts")


def _sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in README.read_text().splitlines():
        if heading := re.match(r"### (\w+\.\w+)\s*$", line):
            current = heading.group(1)
            sections[current] = []
        elif current:
            sections[current].append(line)
    return sections


def documented() -> dict[tuple[str, str], str]:
    columns: dict[tuple[str, str], str] = {}
    for name, lines in _sections().items():
        for line in lines:
            if (row := re.match(r"\| (\w+) \| ([^|]+?) \| [^|]+ \|$", line)) and row.group(1) != "column":
                columns[(name, row.group(1))] = row.group(2).strip()
    return columns


def documented_keys() -> dict[str, tuple[str, ...] | None]:
    """The first text line under each heading: `key: a.`, `key: (a, b).` or `no key...`
    (None when a section states no key at all)."""
    keys: dict[str, tuple[str, ...] | None] = {}
    for name, lines in _sections().items():
        first = next((line for line in lines if line.strip()), "")
        if first.startswith("no key"):
            keys[name] = ()
        elif match := re.match(r"key: (?:\(([\w, ]+)\)|(\w+))\.", first):
            keys[name] = tuple(k.strip() for k in (match.group(1) or match.group(2)).split(","))
        else:
            keys[name] = None
    return keys


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dictionary")
    raw = tmp_path / "raw"
    write_sample(raw)
    con = connect_writer(tmp_path / "warehouse.duckdb")
    # the catalogue tables exactly as the catalogue asset writes them (build_catalogue's frames)
    replace_tables(con, build_catalogue(CatalogueRecords()).tables())
    replace_tables(con, build_core(sample_catalogue(), latest_responses(raw),
                                   archive=scan_archive(raw)))
    create_raw_views(con, raw)
    score_warehouse(con, now=datetime.now(UTC))  # the health tables, so the health marts have rows
    snapshot_history(con, "r1", datetime.now(UTC))
    yield con
    con.close()


def test_dictionary_matches_the_database(warehouse):
    actual = {
        (f"{s}.{t}", c): ty
        for s, t, c, ty in warehouse.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_catalog = current_database() AND table_schema IN {DOCUMENTED_SCHEMAS}"
        ).fetchall()
    }
    docs = documented()
    assert len(docs) > 150
    missing_in_db = {k: v for k, v in docs.items() if k not in actual}
    undocumented = {k: v for k, v in actual.items() if k not in docs}
    wrong_type = {k: (docs[k], actual[k]) for k in docs.keys() & actual.keys() if docs[k] != actual[k]}
    assert not missing_in_db, f"documented but not in the database: {missing_in_db}"
    assert not undocumented, f"in the database but not documented: {undocumented}"
    assert not wrong_type, f"documented type differs (doc, db): {wrong_type}"
    assert {name.split(".")[0] for name, _ in actual} == set(DOCUMENTED_SCHEMAS)


def test_documented_keys_equal_the_declared_keys():
    docs, declared_keys = documented_keys(), relation_keys()
    no_key_line = sorted(name for name, key in docs.items() if key is None)
    assert not no_key_line, f"sections without a `key:` / `no key` line: {no_key_line}"
    undocumented = sorted(set(declared_keys) - set(docs))
    assert not undocumented, f"declared relations without a README section: {undocumented}"
    undeclared = sorted(set(docs) - set(declared_keys))
    assert not undeclared, f"README sections for relations nobody declares: {undeclared}"
    differ = {name: (docs[name], declared_keys[name]) for name in docs if docs[name] != declared_keys[name]}
    assert not differ, f"README key differs from the declared one (doc, declared): {differ}"
    tables, views = declared()
    assert all(spec.key for spec in tables.values()), "every declared table has a key"
    assert all(spec.key for spec in views.values()), "every declared view has a key"


def test_view_keys_are_unique_on_sample_data(warehouse):
    for name, spec in declared()[1].items():
        cols = ", ".join(spec.key)
        dupes = warehouse.execute(
            f"SELECT {cols}, count(*) FROM {name} GROUP BY ALL HAVING count(*) > 1"
        ).fetchall()
        assert not dupes, (name, dupes)
        assert warehouse.execute(f"SELECT count(*) FROM {name} WHERE {' OR '.join(f'{c} IS NULL' for c in spec.key)}")\
            .fetchall()[0][0] == 0, name
