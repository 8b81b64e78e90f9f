"""The raw response archive: every upstream answer, kept before it is parsed.

Why files and not a DuckDB table: the crawl must not hold the warehouse's single write lock for
minutes, and a batch must be durable the moment it is written (a SIGKILL loses at most the requests
in flight). Each batch is one Parquet file written under a temporary name and renamed into place,
so a reader sees whole batches or nothing. The same layout moves to object storage unchanged.

Layout: ``PULSE_HOME/raw/<source>/<batch_id>[.<partition>].parquet``; see ``RAW_SCHEMA`` for the columns. The
archive knows no source by name: a folder is whatever source name a batch is written under, and
readers read the folders they are given (every folder when none are named).

With PULSE_RAW_URL set, this folder is a cache of the archive on object storage: `warehouse.raw_store`
uploads each batch as it is written (`after_write`), pushes and pulls the batches missing on either side.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl

SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")  # a source name is a folder name under raw/
# a batch file name as `write_batch` makes it: `<UTC timestamp>-<8 hex>[.<partition>].parquet`
BATCH_NAME = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{8}(?:\.(?P<partition>[a-z][a-z0-9_-]{0,63}))?\.parquet$")

RAW_SCHEMA: dict[str, pl.DataType] = {
    # what was asked: a stable key per logical request, e.g. "github:repo:django/django"
    "request_key": pl.String(),
    "source": pl.String(),  # the source's registry name (pipelines.sources.registry), its folder
    "endpoint": pl.String(),  # repo, participation, contributors, commits, graphql_repo, pypi_json, ...
    "subject": pl.String(),  # repo key "github:owner/name" (lower-cased) or "pypi:<pep503 name>"
    "url": pl.String(),  # path and query below the configured base URL; never a token
    # what came back
    "status": pl.Int32(),  # HTTP status, or 0 when no answer (timeout, reset)
    "etag": pl.String(),
    "headers": pl.String(),  # JSON object of the headers worth keeping (lower-case names)
    "body": pl.String(),  # response text; null for 304 / no answer
    "error_kind": pl.String(),  # null when usable; else transient|rate_limited|gone|renamed|blocked|
    #                             malformed|computing|not_found|bad_entry
    "error": pl.String(),  # human-readable message (never a token)
    "attempts": pl.Int32(),
    "fetched_at": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
}


@dataclass(slots=True)
class RawResponse:
    request_key: str
    source: str
    endpoint: str
    subject: str
    url: str
    status: int
    body: str | None = None
    etag: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_kind: str | None = None
    error: str | None = None
    attempts: int = 1
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _batch_frame(rows: Iterable[RawResponse], run_id: str) -> pl.DataFrame:
    rows = list(rows)
    return pl.DataFrame(
        {
            "request_key": [r.request_key for r in rows],
            "source": [r.source for r in rows],
            "endpoint": [r.endpoint for r in rows],
            "subject": [r.subject for r in rows],
            "url": [r.url for r in rows],
            "status": [r.status for r in rows],
            "etag": [r.etag for r in rows],
            "headers": [orjson.dumps(dict(r.headers)).decode() for r in rows],
            "body": [r.body for r in rows],
            "error_kind": [r.error_kind for r in rows],
            "error": [r.error for r in rows],
            "attempts": [r.attempts for r in rows],
            "fetched_at": [r.fetched_at for r in rows],
            "run_id": [run_id] * len(rows),
        },
        schema=RAW_SCHEMA,
    )


def write_batch(raw_dir: Path, source: str, rows: Iterable[RawResponse], run_id: str,
                partition: str | None = None) -> Path | None:
    """Write one durable batch; returns its path (None when there was nothing to write).

    `partition` (a crawl partition key such as `github-2`) is appended to the file name, so the batches
    of one partition of a partitioned crawl can be told apart; readers read every batch alike.
    """
    if not SOURCE_NAME.match(source):
        raise ValueError(f"not a usable raw source name {source!r}")
    if partition is not None and not SOURCE_NAME.match(partition):
        raise ValueError(f"not a usable raw partition name {partition!r}")
    frame = _batch_frame(rows, run_id)
    if frame.is_empty():
        return None
    folder = raw_dir / source
    folder.mkdir(parents=True, exist_ok=True)
    batch_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    if partition is not None:
        batch_id += f".{partition}"
    final = folder / f"{batch_id}.parquet"
    tmp = folder / f".{batch_id}.parquet.tmp"
    frame.write_parquet(tmp, compression="zstd")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    hook = _AFTER_WRITE.get(Path(raw_dir).resolve())
    if hook is not None:  # PULSE_RAW_URL: upload the batch now (warehouse.raw_store.mirroring)
        hook(final)
    return final


# raw folder -> what runs after each batch is renamed into place there (the object-storage upload of
# `warehouse.raw_store`; a process-wide table because the crawl writes from its archive thread)
_AFTER_WRITE: dict[Path, Callable[[Path], None]] = {}


@contextlib.contextmanager
def after_write(raw_dir: Path, hook: Callable[[Path], None]) -> Iterator[None]:
    """Run `hook(path)` after every batch written under `raw_dir` while the block runs (it must not raise)."""
    key = Path(raw_dir).resolve()
    previous = _AFTER_WRITE.get(key)
    _AFTER_WRITE[key] = hook
    try:
        yield
    finally:
        if previous is None:
            _AFTER_WRITE.pop(key, None)
        else:
            _AFTER_WRITE[key] = previous


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable too (POSIX: the directory entry lives in the folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def source_folders(raw_dir: Path) -> list[str]:
    """The source names the archive holds batches for."""
    if not raw_dir.is_dir():
        return []
    return sorted(p.name for p in raw_dir.iterdir() if p.is_dir() and SOURCE_NAME.match(p.name))


def batch_files(raw_dir: Path, sources: Iterable[str] | None = None) -> list[Path]:
    names = source_folders(raw_dir) if sources is None else sources
    return sorted(p for s in names for p in (raw_dir / s).glob("*.parquet"))


def scan_archive(raw_dir: Path, sources: Iterable[str] | None = None) -> pl.LazyFrame:
    """All archived responses (an empty frame with the right schema when there are none)."""
    files = batch_files(raw_dir, sources)
    if not files:
        return pl.LazyFrame(schema=RAW_SCHEMA)
    return pl.scan_parquet(files, schema=RAW_SCHEMA)


def latest_responses(raw_dir: Path, sources: Iterable[str] | None = None) -> pl.LazyFrame:
    """The newest archived response per request key, plus the newest *usable* body per key.

    A 304 or a failed fetch does not erase what was learnt before: `body` is the newest body that
    came with a 2xx status, `status`/`error_kind`/`fetched_at` describe the newest attempt, and
    `good_fetched_at` says when the body was fetched. This is what keeps last good data alive.
    """
    scan = scan_archive(raw_dir, sources)
    newest = scan.sort("fetched_at").group_by("request_key").agg(
        pl.all().exclude("body").last(),
    )
    good = (
        scan.filter(pl.col("status").is_between(200, 299) & pl.col("error_kind").is_null())
        .sort("fetched_at")
        .group_by("request_key")
        .agg(
            pl.col("body").last(),
            pl.col("etag").last().alias("good_etag"),
            pl.col("status").last().alias("good_status"),
            pl.col("fetched_at").last().alias("good_fetched_at"),
        )
    )
    return newest.join(good, on="request_key", how="left")
