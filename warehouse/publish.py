"""Publish a read-only copy of the warehouse atomically (`PULSE_HOME/published.duckdb`).

Readers (`pulse query`, notebooks, `pulse serve`) open the published file read-only, so they never
meet the writer's lock, and never see a half-written file: the copy is made under a temporary name
in the same directory and renamed over the old snapshot (`os.replace` is atomic). A reader that
already has the old snapshot open keeps reading it until it reconnects.

How the copy is made: the writer's connection (or a fresh one) runs CHECKPOINT, which moves the WAL
into the database file, so the file alone is a consistent database; it is then copied byte for byte.
Only the writer step (the `warehouse_writer` pool) calls this, so nothing writes during the copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb

from warehouse.db import connect_writer


def publish(warehouse_path: Path, published_path: Path, con: duckdb.DuckDBPyConnection | None = None) -> Path:
    """Copy the warehouse to `published_path` atomically; pass the open writer connection if any."""
    warehouse_path, published_path = Path(warehouse_path), Path(published_path)
    own = con is None
    con = con or connect_writer(warehouse_path)
    try:
        con.execute("CHECKPOINT")
        published_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = published_path.parent / f".{published_path.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            shutil.copyfile(warehouse_path, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            check = duckdb.connect(str(tmp), read_only=True)  # refuse to publish a broken copy
            try:
                check.execute("SELECT count(*) FROM information_schema.tables").fetchall()
            finally:
                check.close()
            os.replace(tmp, published_path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        if own:
            con.close()
    return published_path
