"""Writing polars frames into DuckDB by column name, atomically.

Why not an IO manager: dagster-duckdb / dagster-polars insert positionally and break on duckdb 2 /
polars 2. Here every table is replaced through a staging table inside one transaction, so a failed
load leaves the previous tables intact and a column order change cannot shift data.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import polars as pl


def replace_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pl.DataFrame]) -> dict[str, int]:
    """Replace each `schema.table` with the frame's rows, all in one transaction; returns row counts."""
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            schema, table = name.split(".")
            staging = f"{schema}.{table}__staging"
            view = f"__frame_{schema}_{table}"
            con.register(view, frame)
            try:
                con.execute(f"DROP TABLE IF EXISTS {staging}")
                con.execute(f"CREATE TABLE {staging} AS SELECT * FROM {view}")
                con.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
                con.execute(f"ALTER TABLE {staging} RENAME TO {table}")
            finally:
                con.unregister(view)
            counts[name] = frame.height
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts


def read_table(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
    return con.execute(f"SELECT * FROM {name}").pl()
