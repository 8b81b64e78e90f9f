"""DuckDB connections: one writer (migrated on open), any number of readers of the snapshot."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.ddl import SCHEMAS, apply_schema

__all__ = ["SCHEMAS", "connect_reader", "connect_writer"]


def connect_writer(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating it and bringing its schema up to date."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        apply_schema(con)
    except Exception:
        con.close()
        raise
    return con


def connect_reader(path: Path) -> duckdb.DuckDBPyConnection:
    """Read-only connection (use it on the published snapshot, which no writer holds)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `pulse refresh` (or `pulse demo`) first")
    return duckdb.connect(str(path), read_only=True)
