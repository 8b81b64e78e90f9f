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

An attached warehouse (PULSE_WAREHOUSE_URL: DuckLake, MotherDuck, another DuckDB file) has no local
file to copy, so the writer's connection copies it into a new local file: `ATTACH '<tmp>' AS snapshot;
COPY FROM DATABASE <warehouse> TO snapshot; CHECKPOINT; DETACH` (every schema, table, view and row),
then the file is fsynced, checked (a DuckDB file, no WAL left beside it, the same relations and row
counts as the warehouse) and renamed into place like the byte copy. Readers keep opening a local
`published.duckdb`, wherever the warehouse lives; a copy that fails or does not check is never published.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb

from warehouse.db import WarehouseTarget, as_target, open_writer
from warehouse.ddl import sql_literal

# a DuckDB file starts with its main header and two database headers (4 KiB each); the magic
# bytes "DUCK" follow the main header's checksum
HEADER_BYTES = 3 * 4096
MAGIC = (8, b"DUCK")
SNAPSHOT = "snapshot"  # the catalog name of the copy while it is attached


def _check_copy(source: Path, copy: Path) -> None:
    """The copy is a DuckDB file of the source's size with the source's headers (what a short or
    torn copy would lack). Cheaper than opening it, and the source was checkpointed just before."""
    size = source.stat().st_size
    with open(source, "rb") as a, open(copy, "rb") as b:
        head = b.read(HEADER_BYTES)
        if copy.stat().st_size != size or head != a.read(HEADER_BYTES) or \
                head[MAGIC[0]:MAGIC[0] + len(MAGIC[1])] != MAGIC[1]:
            raise OSError(f"the copy {copy} of {source} is incomplete or not a DuckDB file; not published")


def publish(warehouse: Path | WarehouseTarget, published_path: Path,
            con: duckdb.DuckDBPyConnection | None = None) -> Path:
    """Copy the warehouse to `published_path` atomically; pass the open writer connection if any."""
    target, published_path = as_target(warehouse), Path(published_path)
    if con is None:  # our own connection, under the writer lock
        with open_writer(target) as own:
            return publish(target, published_path, con=own)
    published_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = published_path.parent / f".{published_path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if target.attached:
            _copy_database(con, target, tmp)
        else:
            assert target.path is not None
            con.execute("CHECKPOINT")
            shutil.copyfile(target.path, tmp)
            _fsync(tmp)
            _check_copy(target.path, tmp)  # refuse to publish a broken copy
        os.replace(tmp, published_path)
    finally:
        tmp.unlink(missing_ok=True)
        _wal(tmp).unlink(missing_ok=True)
    return published_path


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, int | None]:
    """schema.name -> row count (tables) or None (views) of one attached catalog."""
    rows = con.execute(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_catalog = ? "
        "ORDER BY ALL", [catalog]).fetchall()
    return {f"{schema}.{name}": con.execute(f'SELECT count(*) FROM "{catalog}"."{schema}"."{name}"').fetchone()[0]
            if kind == "BASE TABLE" else None for schema, name, kind in rows}


def _copy_database(con: duckdb.DuckDBPyConnection, target: WarehouseTarget, tmp: Path) -> None:
    """The attached warehouse into the new DuckDB file `tmp`, checked (see the module doc)."""
    source = target.catalog
    con.execute(f"ATTACH {sql_literal(str(tmp))} AS {SNAPSHOT}")
    try:
        con.execute(f"COPY FROM DATABASE {source} TO {SNAPSHOT}")
        con.execute(f"CHECKPOINT {SNAPSHOT}")
        expected, copied = _relations(con, source), _relations(con, SNAPSHOT)
    finally:
        con.execute(f"DETACH {SNAPSHOT}")
    _fsync(tmp)
    with open(tmp, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    if head[MAGIC[0]:MAGIC[0] + len(MAGIC[1])] != MAGIC[1] or _wal(tmp).exists():
        raise OSError(f"the copy {tmp} of {target.label} is not a complete DuckDB file; not published")
    if copied != expected:
        differ = sorted(name for name in expected.keys() | copied.keys()
                        if name not in expected or name not in copied or expected[name] != copied[name])
        raise OSError(f"the copy {tmp} of {target.label} differs from it ({', '.join(differ[:5])}); not published")
