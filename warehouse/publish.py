"""Publish a read-only copy of the warehouse atomically (`PULSE_HOME/published.duckdb`).

Readers (`pulse query`, notebooks, `pulse serve`) open the published file read-only, so they never
meet the writer's lock, and never see a half-written file: the copy is made under a temporary name
in the same directory and renamed over the old snapshot (`os.replace` is atomic). A reader that
already has the old snapshot open keeps reading it until it reconnects.

How the copy is made: the writer's connection (or a fresh one) runs CHECKPOINT, which moves the WAL
into the database file, so the file alone is a consistent database; it is then copied byte for byte,
fsynced, checked (same size and DuckDB headers as the source) and renamed into place.
Only the writer step (the `warehouse_writer` pool) calls this, and without a connection of its own
it opens one under the writer lock (`warehouse.db.open_writer`), so nothing writes during the copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb

from warehouse.db import open_writer

# a DuckDB file starts with its main header and two database headers (4 KiB each); the magic
# bytes "DUCK" follow the main header's checksum
HEADER_BYTES = 3 * 4096
MAGIC = (8, b"DUCK")


def _check_copy(source: Path, copy: Path) -> None:
    """The copy is a DuckDB file of the source's size with the source's headers (what a short or
    torn copy would lack). Cheaper than opening it, and the source was checkpointed just before."""
    size = source.stat().st_size
    with open(source, "rb") as a, open(copy, "rb") as b:
        head = b.read(HEADER_BYTES)
        if copy.stat().st_size != size or head != a.read(HEADER_BYTES) or \
                head[MAGIC[0]:MAGIC[0] + len(MAGIC[1])] != MAGIC[1]:
            raise OSError(f"the copy {copy} of {source} is incomplete or not a DuckDB file; not published")


def publish(warehouse_path: Path, published_path: Path, con: duckdb.DuckDBPyConnection | None = None) -> Path:
    """Copy the warehouse to `published_path` atomically; pass the open writer connection if any."""
    warehouse_path, published_path = Path(warehouse_path), Path(published_path)
    if con is None:  # our own connection, under the writer lock
        with open_writer(warehouse_path) as own:
            return publish(warehouse_path, published_path, con=own)
    con.execute("CHECKPOINT")
    published_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = published_path.parent / f".{published_path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        shutil.copyfile(warehouse_path, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        _check_copy(warehouse_path, tmp)  # refuse to publish a broken copy
        os.replace(tmp, published_path)
    finally:
        tmp.unlink(missing_ok=True)
    return published_path
