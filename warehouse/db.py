"""DuckDB connections: one writer (migrated on open), any number of readers of the snapshot."""

from __future__ import annotations

from pathlib import Path

import duckdb

SCHEMAS = ("catalogue", "raw", "core", "history", "marts")


def connect_writer(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating it and bringing its schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return con


def connect_reader(path: Path) -> duckdb.DuckDBPyConnection:
    """Read-only connection (use it on the published snapshot, which no writer holds)."""
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `pulse refresh` (or `pulse demo`) first")
    return duckdb.connect(str(path), read_only=True)
