"""What the Dagster UI shows about a warehouse table: schema, description, owners, name and size.

The data dictionary (`warehouse/README.md`, read by `warehouse.dictionary`) is the one place a table
and its columns are explained, so the asset definitions take their description and column schema
from it (visible before any run), and each materialization reports the table as it really is: its
row count and its columns as DuckDB lists them, described by the dictionary. Dagster's well-known
metadata keys (`dagster/row_count`, `dagster/column_schema`, `dagster/table_name`) make the UI show
them in its own places (the asset's Columns tab, row-count plot, table name).

Use: `dg.AssetSpec(key, ..., **table_definition("core.packages"))` and, at materialization,
`{**table_metadata(con, "core.packages"), ...}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import duckdb

from warehouse.ddl import existing_columns
from warehouse.dictionary import Relation, relations

OWNERS = ["team:package-pulse"]  # who answers for every table asset (Dagster owners: an e-mail or `team:`)
WAREHOUSE_CATALOG = "warehouse"  # DuckDB names a file's catalog after it: PULSE_HOME/warehouse.duckdb

_NAME = re.compile(r"^\w+\.\w+$")


def table_name(name: str, catalog: str = WAREHOUSE_CATALOG) -> str:
    """The fully qualified DuckDB name (`warehouse.core.packages`), what `dagster/table_name` expects."""
    return f"{catalog}.{name}"


def _relation(name: str) -> Relation:
    """The dictionary's entry, or an empty one: an undocumented table still loads and runs (a test
    keeps every table asset documented), it just shows no meanings."""
    return relations().get(name) or Relation(name, f"{name}: not in the data dictionary (warehouse/README.md) yet.",
                                             (), ())


def _constraints(rel: Relation, column: str) -> dg.TableColumnConstraints | None:
    if column not in rel.key:
        return None
    if len(rel.key) == 1:
        return dg.TableColumnConstraints(nullable=False, unique=True, other=["key"])
    return dg.TableColumnConstraints(nullable=False, other=[f"part of the key ({', '.join(rel.key)})"])


def column_schema(name: str, actual: Mapping[str, str] | None = None) -> dg.TableSchema:
    """The documented columns of `name` (schema.table) with types, meanings and key constraints.

    With `actual` (column -> DuckDB type, as the database lists them) the columns and types are the
    real ones, in the table's order, described by the dictionary where it documents them.
    """
    rel = _relation(name)
    columns = actual if actual is not None else {c.name: c.type for c in rel.columns}
    documented = name in relations()
    key = f"key: ({', '.join(rel.key)})" if rel.key else "no key" if documented else "key not documented"
    table_constraints = dg.TableConstraints(other=[key])
    return dg.TableSchema(
        columns=[
            dg.TableColumn(column, kind, description=(doc.meaning if (doc := rel.column(column)) else None),
                           constraints=_constraints(rel, column))
            for column, kind in columns.items()
        ],
        constraints=table_constraints,
    )


def table_definition(name: str, *, description: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `dg.AssetSpec` / `@dg.asset` of the asset that writes `name`: the
    dictionary's description (or `description`), the static column schema, the table name, owners."""
    rel = _relation(name)
    return {
        "description": description or rel.description,
        "metadata": {"dagster/column_schema": column_schema(name), "dagster/table_name": table_name(name)},
        "owners": OWNERS,
    }


def table_metadata(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    """Materialization metadata of table or view `name` on an open warehouse connection: row count,
    the real column schema (described from the dictionary) and the fully qualified name."""
    if not _NAME.match(name):
        raise ValueError(f"table_metadata: {name!r} is not a schema.table name")
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    metadata: dict[str, Any] = {"dagster/table_name": table_name(name, catalog)}
    actual = existing_columns(con, name)
    if not actual:  # not written (yet): say what is documented, count nothing
        metadata["dagster/column_schema"] = column_schema(name)
        return metadata
    metadata["dagster/column_schema"] = column_schema(name, actual)
    metadata["dagster/row_count"] = int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
    return metadata


def tables_metadata(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`table_metadata` of several tables, by name (one call inside an asset's writer block)."""
    return {name: table_metadata(con, name) for name in names}
