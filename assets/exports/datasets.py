"""Dataset files of the published snapshot: one file per core, health, history and marts relation
and format (the health scores and the marts health tables included, when the snapshot has them).

What a dataset release (`assets.exports.releases`) is made of, and what `pulse export --format`
writes alone. It reads the published snapshot (never the live warehouse), so it needs no writer lock
and exports exactly what `pulse query` shows. DuckDB's COPY writes every format (no row passes
through Python); list columns go into CSV as JSON arrays, since a Table Schema `array` field is JSON
text in CSV (DuckDB's own `[a, b]` rendering is not JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from warehouse.db import connect_reader
from warehouse.ddl import sql_literal

DatasetFormat = Literal["parquet", "csv", "jsonl"]
DATASET_FORMATS: tuple[DatasetFormat, ...] = ("parquet", "csv", "jsonl")
DATASET_SCHEMAS = ("core", "health", "history", "marts")
_COPY_OPTIONS = {"parquet": "(FORMAT parquet, COMPRESSION zstd)", "csv": "(FORMAT csv, HEADER)",
                 "jsonl": "(FORMAT json)"}


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type) in table order
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def file_name(self, fmt: DatasetFormat) -> str:
        return f"{self.qualified}.{fmt}"


def dataset_relations(con: duckdb.DuckDBPyConnection) -> list[Relation]:
    """Every table and view of the dataset schemas, with its columns and row count, by name."""
    names = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        f"WHERE table_schema IN {DATASET_SCHEMAS} ORDER BY 1, 2"
    ).fetchall()
    relations = []
    for schema, table in names:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
        rows = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()[0][0]
        relations.append(Relation(schema, table, tuple(columns), rows))
    return relations


def _select(relation: Relation, fmt: DatasetFormat) -> str:
    if fmt != "csv":
        return f'SELECT * FROM "{relation.schema}"."{relation.name}"'
    cols = [f'to_json("{c}") AS "{c}"' if _is_nested(t) else f'"{c}"' for c, t in relation.columns]
    return f'SELECT {", ".join(cols)} FROM "{relation.schema}"."{relation.name}"'


def _is_nested(duck_type: str) -> bool:
    return duck_type.endswith("]") or duck_type.startswith(("STRUCT", "MAP", "UNION"))


def write_relation(con: duckdb.DuckDBPyConnection, relation: Relation, out_dir: Path, fmt: DatasetFormat) -> Path:
    """One relation as one file `<schema>.<relation>.<fmt>` in `out_dir`."""
    target = Path(out_dir) / relation.file_name(fmt)
    con.execute(f"COPY ({_select(relation, fmt)}) TO {sql_literal(str(target))} {_COPY_OPTIONS[fmt]}")
    return target


def export_datasets(published_db_path: Path, out_dir: Path, fmt: DatasetFormat = "parquet") -> list[Path]:
    """Write `<schema>.<table>.<fmt>` for every dataset relation into `out_dir`; returns the files written.

    Raises FileNotFoundError when there is no published snapshot yet.
    """
    if fmt not in _COPY_OPTIONS:
        raise ValueError(f"unknown dataset format {fmt!r} ({', '.join(DATASET_FORMATS)})")
    out_dir = Path(out_dir).resolve()
    con = connect_reader(Path(published_db_path))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return [write_relation(con, relation, out_dir, fmt) for relation in dataset_relations(con)]
    finally:
        con.close()
