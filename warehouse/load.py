"""Writing polars frames into DuckDB by column name, atomically.

Why not an IO manager: dagster-duckdb / dagster-polars insert positionally and break on duckdb 2 /
polars 2. Here every table is replaced through a staging table inside one transaction, so a failed
load leaves the previous tables intact and a column order change cannot shift data.

Declared tables (`warehouse/schema/*.sql`) keep their declared column types: the staging table is
created from the declaration and filled `INSERT ... BY NAME` (a frame column the table does not
declare is an error, a declared column the frame lacks is NULL). Undeclared tables (e.g. the
catalogue's) take the frame's columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import duckdb
import polars as pl

from warehouse.ddl import table_spec


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_name(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    if not (schema.isidentifier() and table.isidentifier()):
        raise ValueError(f"table name must be schema.table, got {name!r}")
    return schema, table


def _create_staging(con: duckdb.DuckDBPyConnection, name: str, staging: str, view: str) -> None:
    spec = table_spec(name)
    con.execute(f"DROP TABLE IF EXISTS {staging}")
    if spec is None:
        con.execute(f"CREATE TABLE {staging} AS SELECT * FROM {view}")
        return
    columns = ", ".join(f"{_quote(c)} {t}" for c, t in spec.columns)
    con.execute(f"CREATE TABLE {staging} ({columns})")
    con.execute(f"INSERT INTO {staging} BY NAME SELECT * FROM {view}")


def replace_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pl.DataFrame]) -> dict[str, int]:
    """Replace each `schema.table` with the frame's rows, all in one transaction; returns row counts."""
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            schema, table = _check_name(name)
            staging = f"{schema}.{table}__staging"
            view = f"__frame_{schema}_{table}"
            con.register(view, frame)
            try:
                _create_staging(con, name, staging, view)
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


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, pl.DataFrame],
    *,
    by: str | Mapping[str, str],
    values: Iterable[object] | Mapping[str, Iterable[object]] | None = None,
) -> dict[str, int]:
    """Upsert by a partition column, in one transaction: for each table, delete the rows whose `by`
    column is in `values` (default: the values present in the frame) and insert the frame's rows by
    name. `by` and `values` may be given per table (mappings keyed like `tables`).

    Used for history (one partition per refresh id: re-running a refresh replaces it, never
    duplicates it) and for incremental core updates (the changed package ids).
    """
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            _check_name(name)
            column = by[name] if isinstance(by, Mapping) else by
            wanted = values.get(name) if isinstance(values, Mapping) else values
            keys = (
                pl.DataFrame({column: list(wanted)}, schema={column: frame.schema[column]})
                if wanted is not None
                else frame.select(column).unique()
            )
            view, keys_view = f"__rows_{name.replace('.', '_')}", f"__keys_{name.replace('.', '_')}"
            con.register(view, frame)
            con.register(keys_view, keys)
            try:
                con.execute(
                    f"DELETE FROM {name} WHERE {_quote(column)} IN (SELECT {_quote(column)} FROM {keys_view})"
                )
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
            finally:
                con.unregister(view)
                con.unregister(keys_view)
            counts[name] = frame.height
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts


def read_table(con: duckdb.DuckDBPyConnection, name: str, order_by: Sequence[str] = ()) -> pl.DataFrame:
    order = f" ORDER BY {', '.join(_quote(c) for c in order_by)}" if order_by else ""
    return query(con, f"SELECT * FROM {name}{order}")


def query(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
    """Run SQL and return a polars frame (duckdb 2's cursor has no `.pl()`: go through Arrow)."""
    relation = con.sql(sql, params=params) if params is not None else con.sql(sql)
    frame = pl.from_arrow(relation.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    zoned = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone not in (None, "UTC")]
    return frame.with_columns(pl.col(zoned).dt.convert_time_zone("UTC")) if zoned else frame
