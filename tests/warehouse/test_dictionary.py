"""warehouse/README.md documents every table/view column with its type, and nothing else exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from assets.core.sample import sample_catalogue, write_sample
from assets.core.transform import build_core
from warehouse.archive import latest_responses, scan_archive
from warehouse.db import connect_writer
from warehouse.ddl import create_raw_views
from warehouse.load import replace_tables

README = Path(__file__).resolve().parents[2] / "warehouse" / "README.md"
DOCUMENTED_SCHEMAS = ("raw", "core", "history", "marts")


def documented() -> dict[tuple[str, str], str]:
    columns: dict[tuple[str, str], str] = {}
    current = None
    for line in README.read_text().splitlines():
        if heading := re.match(r"### (\w+\.\w+)\s*$", line):
            current = heading.group(1)
        elif (
            current
            and (row := re.match(r"\| (\w+) \| ([^|]+?) \| [^|]+ \|$", line))
            and row.group(1) != "column"
        ):
            columns[(current, row.group(1))] = row.group(2).strip()
    return columns


def test_dictionary_matches_the_database(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    con = connect_writer(tmp_path / "warehouse.duckdb")
    try:
        replace_tables(con, build_core(sample_catalogue(), latest_responses(raw), now=datetime.now(UTC),
                                       archive=scan_archive(raw)))
        create_raw_views(con, raw)
        actual = {
            (f"{s}.{t}", c): ty
            for s, t, c, ty in con.execute(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                f"WHERE table_schema IN {DOCUMENTED_SCHEMAS}"
            ).fetchall()
        }
    finally:
        con.close()
    docs = documented()
    assert len(docs) > 100
    missing_in_db = {k: v for k, v in docs.items() if k not in actual}
    undocumented = {k: v for k, v in actual.items() if k not in docs}
    wrong_type = {k: (docs[k], actual[k]) for k in docs.keys() & actual.keys() if docs[k] != actual[k]}
    assert not missing_in_db, f"documented but not in the database: {missing_in_db}"
    assert not undocumented, f"in the database but not documented: {undocumented}"
    assert not wrong_type, f"documented type differs (doc, db): {wrong_type}"
