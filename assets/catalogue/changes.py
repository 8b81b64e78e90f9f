"""What changed in the catalogue since it was stored: a cheap probe, then the packages new or changed.

The catalogue sensor (pipelines/sensors.py) polls often, so its first look must cost next to nothing:

- a catalogue **file**: its size and mtime, and its sha256 only when those moved (a `touch` with the
  same bytes is no change);
- the djangopackages **API**: two small requests to `/api/v4/packages/`. The **head**, the first
  PROBE_SIZE records (lists are ordered by `-id`: the newest packages), gives the list's `count` and
  the newest ids with their `modified` times: new packages, deletions and edits of recent ones. The
  **window**, the next PROBE_WINDOW records of a window that moves down the list one step a tick
  (its offset is kept in the sensor's cursor) and wraps to the top: every older package is looked
  at within ceil((count - PROBE_SIZE) / PROBE_WINDOW) ticks (5,500 packages: 55 ticks, under 14 h at
  one tick per 15 minutes), and one whose `modified` differs from the stored row is an edit.

Why a window and not "what changed since": the real API v4 offers nothing else. djangopackages'
`apiv4/viewsets.py` serves `PackageViewSet` as a `ReadOnlyModelViewSet` over `Package.objects...
.order_by("-id")` with no `filter_backends`, and settings.py's `REST_FRAMEWORK` sets only
`LimitOffsetPagination` with `PAGE_SIZE` 20 (no `DEFAULT_FILTER_BACKENDS`, no `max_limit`): no
`ordering`, no `modified` filter (DRF ignores `?ordering=-modified` or `?modified__gt=` silently and
answers by `-id`), only `limit`/`offset`. The site's `modified` is django-extensions'
`ModificationDateTimeField` (core/models.py `BaseModel`): any save moves it, an editor's and the
site's own updater's alike.

Only when the head's signature differs from the last one seen, or a package of the window was edited
(or is not stored), does the sensor read the catalogue fully (as the catalogue step does), pass it
through the same guard (`guard.judge_catalogue`: a failed, incomplete, empty or much shrunk read is
never taken for "everything deleted") and compare its packages with the stored `catalogue.packages`
(`changed_package_ids`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from assets.catalogue.transform import PACKAGE_SCHEMA
from pipelines.sources.djangopackages import CatalogueInvalid, CatalogueUnreachable, DjangoPackagesClient
from pipelines.sources.times import parse_iso

PROBE_SIZE = 20  # newest packages looked at by the API probe's head (one small request)
PROBE_WINDOW = 100  # older packages looked at by its window each tick (a second request)
Signature = dict[str, Any]


@dataclass
class Probe:
    """One tick's cheap look: the comparable `signature`, and (API) the window of older packages seen
    (`window`, from `window_offset`) and where the next tick's window starts (`next_window`)."""

    signature: Signature
    window: list[dict[str, Any]] = field(default_factory=list)
    window_offset: int | None = None
    next_window: int | None = None


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


def _client(base_url: str) -> DjangoPackagesClient:
    return DjangoPackagesClient(base_url, attempts=2, max_wait=2.0, timeout=15.0)


def api_signature(base_url: str, client: DjangoPackagesClient | None = None) -> Signature:
    """{"kind": "api", "count", "newest": [[id, modified], ...]} from one request (the head). Raises
    `CatalogueError` when the first page cannot be read."""
    client = client or _client(base_url)
    count, records = client.probe("packages", PROBE_SIZE)
    if count is None:
        raise CatalogueInvalid(f"catalogue {base_url}: the packages list announces no count")
    newest = [[record.get("id"), str(record.get("modified") or "")] for record in records]
    return {"kind": "api", "count": count, "newest": newest}


def window_start(offset: Any, count: int) -> int:
    """Where this tick's window starts: the cursor's offset while it is inside the older packages,
    else the first one after the head (a first tick, a shrunk list, a wrap)."""
    if isinstance(offset, int) and not isinstance(offset, bool) and PROBE_SIZE <= offset < count:
        return offset
    return PROBE_SIZE


def api_probe(base_url: str, window_offset: Any = None, client: DjangoPackagesClient | None = None,
              window: int = PROBE_WINDOW) -> Probe:
    """The head (`api_signature`), then `window` older packages from `window_offset` (one request more;
    none when the head holds the whole list). Raises `CatalogueError` when a page cannot be read."""
    client = client or _client(base_url)
    signature = api_signature(base_url, client)
    count = signature["count"]
    if window <= 0 or count <= PROBE_SIZE:
        return Probe(signature)
    offset = window_start(window_offset, count)
    _, records = client.probe("packages", window, offset)
    following = offset + window
    return Probe(signature, records, offset, following if following < count else PROBE_SIZE)


def edited_in_window(window: list[dict[str, Any]], stored: pl.DataFrame | None) -> list[int]:
    """Ids of the window's packages whose `modified` differs from the stored row's, or that are not
    stored at all; sorted. A record without a readable id or `modified` is the catalogue step's to
    reject, not an edit."""
    if not window or stored is None or "modified" not in stored.columns:
        return []
    known = dict(zip(stored.get_column("id").to_list(), stored.get_column("modified").to_list(), strict=True))
    edited = set()
    for record in window:
        ident, modified = record.get("id"), parse_iso(record.get("modified"))
        if not isinstance(ident, int) or isinstance(ident, bool) or modified is None:
            continue
        before = known.get(ident)
        if before is None or parse_iso(before) != modified:
            edited.add(ident)
    return sorted(edited)


def probe(source: str, previous: Signature | None = None, window_offset: Any = None) -> Probe:
    """The cheap look at PULSE_CATALOGUE (a base URL: head and window; a file: its signature)."""
    if source.startswith(("http://", "https://")):
        return api_probe(source, window_offset)
    return Probe(file_signature(Path(source).expanduser(), previous))


def probe_signature(source: str, previous: Signature | None = None) -> Signature:
    """The cheap signature of PULSE_CATALOGUE (a base URL or a file), without the API's window."""
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
