"""DuckDB connections: one writer (migrated on open), any number of readers of the snapshot.

One writer at a time is enforced twice. Dagster runs every writing step in the `warehouse_writer`
pool (limit 1 on an instance configured by `pulse`), and, whatever the instance, `open_writer` holds
an exclusive OS file lock (`<warehouse>.writer.lock`, via `filelock`) for as long as the read-write
connection is open: a second writer, in another process or thread, waits for it (bounded by
`PULSE_WRITER_LOCK_TIMEOUT` seconds, default 600) instead of failing on DuckDB's own lock. The lock
is re-entrant within a thread, and the kernel releases it when its process dies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from warehouse.ddl import apply_schema

LOCK_TIMEOUT_ENV = "PULSE_WRITER_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 600.0


class WriterLockTimeout(RuntimeError):
    """Another writer held the warehouse's lock for longer than the timeout."""


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".writer.lock")


def lock_timeout_s(timeout: float | None = None) -> float:
    """`timeout`, else PULSE_WRITER_LOCK_TIMEOUT, else 600 s (negative: wait forever)."""
    if timeout is not None:
        return float(timeout)
    value = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT_S
    except ValueError as exc:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}={value!r} is not a number of seconds") from exc


@contextmanager
def writer_lock(path: Path, timeout: float | None = None) -> Iterator[Path]:
    """Hold the warehouse's exclusive writer lock (waiting at most `timeout` seconds); yields its path."""
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    wait = lock_timeout_s(timeout)
    # one FileLock object per lock file and process (is_singleton), thread-local: re-entrant within
    # a thread, exclusive between threads (each thread gets its own descriptor) and processes
    lock = FileLock(lock_file, is_singleton=True, thread_local=True)
    started = time.monotonic()
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise WriterLockTimeout(
            f"timed out after {time.monotonic() - started:.1f}s waiting for the warehouse writer lock "
            f"{lock_file}: another writer (a step or process) still holds it; set {LOCK_TIMEOUT_ENV} "
            "(seconds) to wait longer"
        ) from None
    try:
        yield lock_file
    finally:
        lock.release()


def connect_writer(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating it and bringing its schema up to date.

    No lock is taken here: prefer `open_writer`, unless the caller holds `writer_lock` itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        apply_schema(con)
    except Exception:
        con.close()
        raise
    return con


@contextmanager
def open_writer(path: Path, *, lock_timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The read-write connection, under the exclusive writer lock for as long as it is open."""
    with writer_lock(path, lock_timeout):
        con = connect_writer(path)
        try:
            yield con
        finally:
            con.close()


def connect_reader(path: Path) -> duckdb.DuckDBPyConnection:
    """Read-only connection (use it on the published snapshot, which no writer holds)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `pulse refresh` (or `pulse demo`) first")
    return duckdb.connect(str(path), read_only=True)
