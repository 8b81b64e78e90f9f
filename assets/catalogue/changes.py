"""What changed in the catalogue since it was stored: a cheap probe, then the packages new or changed.

The catalogue sensor (pipelines/sensors.py) polls often, so its first look must cost next to nothing:

- a catalogue **file**: its size and mtime, and its sha256 only when those moved (a `touch` with the
  same bytes is no change);
- the djangopackages **API**: one request for the first page of `/api/v4/packages/` (lists are ordered
  by `-id`: the newest packages) with the list's `count`, the newest ids and their `modified` times.

Only when the probe's signature differs from the last one seen does the sensor read the catalogue
fully (as the catalogue step does), pass it through the same guard (`guard.judge_catalogue`: a failed,
incomplete, empty or much shrunk read is never taken for "everything deleted") and compare its
packages with the stored `catalogue.packages` (`changed_package_ids`). Edits of older packages do not
move the API probe; the daily refresh (or `pulse refresh`) picks those up.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from assets.catalogue.transform import PACKAGE_SCHEMA
from pipelines.sources.djangopackages import CatalogueInvalid, CatalogueUnreachable, DjangoPackagesClient

PROBE_SIZE = 20  # newest packages looked at by the API probe (one small request)
Signature = dict[str, Any]


def file_signature(path: Path, previous: Signature | None = None) -> Signature:
    """{"kind": "file", "size", "mtime_ns", "sha256"}; the hash is reused from `previous` when the size
    and mtime did not move. Raises `CatalogueUnreachable` for a missing or unreadable file."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise CatalogueUnreachable(f"catalogue file {path}: {exc.strerror or exc}") from exc
    signature: Signature = {"kind": "file", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if previous and all(previous.get(k) == signature[k] for k in ("kind", "size", "mtime_ns")):
        signature["sha256"] = previous.get("sha256")
        return signature
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CatalogueUnreachable(f"catalogue file {path}: {exc.strerror or exc}") from exc
    signature["sha256"] = digest.hexdigest()
    return signature


def api_signature(base_url: str, client: DjangoPackagesClient | None = None) -> Signature:
    """{"kind": "api", "count", "newest": [[id, modified], ...]} from one request. Raises
    `CatalogueError` when the first page cannot be read."""
    client = client or DjangoPackagesClient(base_url, attempts=2, max_wait=2.0, timeout=15.0)
    count, records = client.probe("packages", PROBE_SIZE)
    if count is None:
        raise CatalogueInvalid(f"catalogue {base_url}: the packages list announces no count")
    newest = [[record.get("id"), str(record.get("modified") or "")] for record in records]
    return {"kind": "api", "count": count, "newest": newest}


def probe_signature(source: str, previous: Signature | None = None) -> Signature:
    """The cheap signature of PULSE_CATALOGUE (a base URL or a file)."""
    if source.startswith(("http://", "https://")):
        return api_signature(source)
    return file_signature(Path(source).expanduser(), previous)


def same_signature(a: Signature | None, b: Signature | None) -> bool:
    """Equal for change detection (a file: its hash, not its mtime)."""
    if not a or not b or a.get("kind") != b.get("kind"):
        return False
    if a["kind"] == "file":
        return a.get("sha256") == b.get("sha256")
    return a.get("count") == b.get("count") and a.get("newest") == b.get("newest")


def stored_packages_frame(paths: list[Path]) -> pl.DataFrame | None:
    """`catalogue.packages` from the first of `paths` (DuckDB files) that can be read now: the warehouse
    (unless a writer holds it), else the published copy. None when none holds a catalogue."""
    for path in paths:
        if not path.exists():
            continue
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:  # a writer holds it: try the next one
            continue
        try:
            return con.sql("SELECT * FROM catalogue.packages").pl()
        except duckdb.Error:  # no catalogue stored in this file yet
            continue
        finally:
            con.close()
    return None


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    columns = [c for c in PACKAGE_SCHEMA.names() if c in frame.columns]
    return frame.select(pl.col(c).cast(PACKAGE_SCHEMA[c]) for c in columns)


def changed_package_ids(new: pl.DataFrame, stored: pl.DataFrame) -> list[int]:
    """Ids of the packages of `new` (the transform's `catalogue.packages`) that are not in `stored` or
    differ from their stored row in any column; sorted. Packages only in `stored` (deleted) are not
    listed: a deletion needs no crawl."""
    new, stored = _comparable(new), _comparable(stored)
    common = [c for c in new.columns if c in stored.columns]
    differing = new.join(stored.select(common), on=common, how="anti", nulls_equal=True)
    return sorted(int(i) for i in differing.get_column("id").unique().to_list())


def change_key(new: pl.DataFrame, ids: list[int]) -> str:
    """A short digest of the changed packages' new rows: the run key of the run that crawls them, so
    the same change never runs twice (whatever the sensor's cursor says)."""
    rows = _comparable(new).filter(pl.col("id").is_in(ids)).sort("id")
    payload = orjson.dumps(rows.to_dicts(), option=orjson.OPT_PASSTHROUGH_DATETIME, default=str)
    return hashlib.sha256(payload).hexdigest()[:16]
