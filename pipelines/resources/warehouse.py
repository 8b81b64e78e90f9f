"""The DuckDB warehouse as a Dagster resource, and the pool its writers share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.settings import Settings
from warehouse.db import WarehouseTarget, connect_live_reader, open_writer
from warehouse.publish import publish

WRITER_POOL = "warehouse_writer"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse. Steps that use `writer()` run in the `warehouse_writer` pool (size 1),
    and `writer()` also holds the warehouse's exclusive file lock (`warehouse.db.open_writer`), so
    two writers never collide even on a Dagster instance without the pool limit.

    `url`/`data_path` are PULSE_WAREHOUSE_URL/PULSE_WAREHOUSE_DATA_PATH (given as `dg.EnvVar` by the
    code location, so a connection string never shows in the UI or run config); None: the local file
    PULSE_HOME/warehouse.duckdb, as before."""

    home: str | None = None  # PULSE_HOME (None: its default)
    lock_timeout_s: float | None = None  # seconds to wait for another writer; None: PULSE_WRITER_LOCK_TIMEOUT/600
    url: str | None = None  # PULSE_WAREHOUSE_URL (None: PULSE_HOME/warehouse.duckdb)
    data_path: str | None = None  # PULSE_WAREHOUSE_DATA_PATH (DuckLake's DATA_PATH)

    def target(self) -> WarehouseTarget:
        return Settings.from_mapping({"PULSE_HOME": self.home, "PULSE_WAREHOUSE_URL": self.url,
                                      "PULSE_WAREHOUSE_DATA_PATH": self.data_path}).target

    def path(self) -> Path:
        """The warehouse's local DuckDB file (a remote warehouse has none: use `target()`)."""
        target = self.target()
        if target.path is None:
            raise ValueError(f"the warehouse is {target.label} (PULSE_WAREHOUSE_URL), not a local file")
        return target.path

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_writer(self.target(), lock_timeout=self.lock_timeout_s) as con:
            yield con

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect_live_reader(self.target())
        try:
            yield con
        finally:
            con.close()

    def publish(self, published_path: Path) -> Path:
        """The read-only snapshot for readers (warehouse.publish), under the writer lock."""
        with self.writer() as con:
            return publish(self.target(), published_path, con=con)
