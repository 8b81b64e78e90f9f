"""The DuckDB warehouse as a Dagster resource, and the pool its writers share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.settings import Settings
from warehouse.db import connect_reader, open_writer

WRITER_POOL = "warehouse_writer"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse. Steps that use `writer()` run in the `warehouse_writer` pool (size 1),
    and `writer()` also holds the warehouse's exclusive file lock (`warehouse.db.open_writer`), so
    two writers never collide even on a Dagster instance without the pool limit."""

    home: str | None = None  # PULSE_HOME (None: its default)
    lock_timeout_s: float | None = None  # seconds to wait for another writer; None: PULSE_WRITER_LOCK_TIMEOUT/600

    def path(self) -> Path:
        return Settings.from_mapping({"PULSE_HOME": self.home}).warehouse_path

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_writer(self.path(), lock_timeout=self.lock_timeout_s) as con:
            yield con

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect_reader(self.path())
        try:
            yield con
        finally:
            con.close()
