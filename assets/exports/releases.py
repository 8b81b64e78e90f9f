"""Versioned dataset releases under PULSE_HOME/releases/: one folder per refresh, a `latest` pointer.

A release is written whole into a staging folder beside the others, renamed to its id (a rename
within one directory is atomic), then `latest` is moved: a relative symlink made under a temporary
name and `os.replace`d over the old one, and a `LATEST` text file (written the same way) for
filesystems or clients without symlinks. A failure anywhere before the pointer moves leaves the
previous release and pointer exactly as they were. Old releases are pruned down to
`PULSE_RELEASES_KEEP`; the one `latest` names is never pruned.

Release ids sort by time: `<refresh time, UTC, %Y%m%dT%H%M%SZ>-<first 8 characters of the refresh
id>` from the snapshot's newest `history.refreshes` row (its file's mtime and `snapshot` when the
snapshot has no refresh yet).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from assets.exports.datapackage import FileFacts, build_descriptor
from assets.exports.datasets import DATASET_FORMATS, DatasetFormat, Relation, dataset_relations, write_relation
from warehouse.db import connect_reader

LATEST = "latest"
LATEST_FILE = "LATEST"
DESCRIPTOR = "datapackage.json"
RELEASE_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9A-Za-z_-]+$")
STAGING_PREFIX = ".staging-"
STALE_STAGING_S = 3600.0  # staging folders older than this were left by a killed writer


@dataclass(frozen=True)
class Release:
    release_id: str
    path: Path
    refresh_id: str | None
    refreshed_at: datetime | None
    files: dict[str, FileFacts]  # file name -> facts (datapackage.json excluded)
    rows: dict[str, int]  # relation -> rows
    pruned: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files.values())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def newest_refresh(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime] | None:
    """(refresh_id, snapshot_at) of the snapshot's newest refresh, if it has one."""
    try:
        row = con.execute("SELECT refresh_id, snapshot_at FROM history.refreshes "
                          "ORDER BY snapshot_at DESC, refresh_id DESC LIMIT 1").fetchall()
    except duckdb.CatalogException:
        return None
    return (row[0][0], row[0][1].astimezone(UTC)) if row else None


def release_id_for(refresh: tuple[str, datetime] | None, published: Path) -> str:
    if refresh is None:
        mtime = datetime.fromtimestamp(Path(published).stat().st_mtime, UTC)
        return f"{mtime:%Y%m%dT%H%M%SZ}-snapshot"
    refresh_id, at = refresh
    short = re.sub(r"[^0-9A-Za-z_-]", "", refresh_id)[:8] or "refresh"
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{short}"


def write_release_files(
    published: Path, out_dir: Path, formats: tuple[DatasetFormat, ...] = DATASET_FORMATS,
    now: datetime | None = None, after_file: Callable[[Path], None] | None = None,
) -> Release:
    """Every dataset relation in every format into `out_dir` (which must exist), plus datapackage.json
    when CSV is among the formats (its resources are the CSV files). `after_file` is called after each
    file (tests use it to fail mid-write)."""
    con = connect_reader(Path(published))
    try:
        refresh = newest_refresh(con)
        release_id = release_id_for(refresh, published)
        relations = dataset_relations(con)
        files: dict[tuple[str, DatasetFormat], FileFacts] = {}
        for relation in relations:
            for fmt in formats:
                path = write_relation(con, relation, out_dir, fmt)
                files[(relation.qualified, fmt)] = FileFacts(path.name, path.stat().st_size, sha256_of(path))
                if after_file:
                    after_file(path)
    finally:
        con.close()
    refresh_id, refreshed_at = refresh if refresh else (None, None)
    if "csv" in formats:
        descriptor = build_descriptor(release_id, refresh_id, refreshed_at, now or datetime.now(UTC),
                                      relations, files)
        (Path(out_dir) / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")
    return Release(release_id, Path(out_dir), refresh_id, refreshed_at,
                   {f.name: f for f in files.values()}, _rows(relations))


def _rows(relations: list[Relation]) -> dict[str, int]:
    return {r.qualified: r.rows for r in relations}


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()


def point_latest(releases_dir: Path, release_id: str) -> None:
    """Move `latest` (symlink, where the filesystem has them) and `LATEST` (text) to `release_id`."""
    def text(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(release_id + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    _replace_atomically(releases_dir / LATEST_FILE, text)
    # no symlinks on some network or Windows filesystems: LATEST alone names the release there
    with contextlib.suppress(OSError, NotImplementedError):
        _replace_atomically(releases_dir / LATEST, lambda tmp: os.symlink(release_id, tmp, target_is_directory=True))


def latest_release(releases_dir: Path) -> str | None:
    """The id `latest` points to (the symlink first, else the LATEST file), or None."""
    link = Path(releases_dir) / LATEST
    if link.is_symlink():
        return os.readlink(link).rstrip("/").split("/")[-1]
    text = Path(releases_dir) / LATEST_FILE
    if text.exists():
        return text.read_text(encoding="utf-8").strip() or None
    return None


def prune_releases(releases_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` releases (never the latest one) and stale staging folders;
    returns the ids deleted."""
    releases_dir = Path(releases_dir)
    latest = latest_release(releases_dir)
    ids = sorted((p.name for p in releases_dir.iterdir() if p.is_dir() and not p.is_symlink()
                  and RELEASE_ID.match(p.name)), reverse=True)
    doomed = [i for i in ids[max(keep, 0):] if i != latest]
    for release_id in doomed:
        shutil.rmtree(releases_dir / release_id)
    for staging in releases_dir.glob(f"{STAGING_PREFIX}*"):
        if time.time() - staging.stat().st_mtime > STALE_STAGING_S:
            shutil.rmtree(staging, ignore_errors=True)
    return doomed


def publish_release(
    published: Path, releases_dir: Path, keep: int, now: datetime | None = None,
    after_file: Callable[[Path], None] | None = None,
) -> Release:
    """Write the snapshot's release (staging -> rename -> move `latest` -> prune); returns it.

    Re-publishing the same refresh replaces that release's folder (the old one moves aside first, so
    the name never holds a partial release)."""
    releases_dir = Path(releases_dir)
    releases_dir.mkdir(parents=True, exist_ok=True)
    staging = releases_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        release = write_release_files(published, staging, now=now, after_file=after_file)
        final = releases_dir / release.release_id
        if final.exists():
            aside = releases_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}-old"
            os.replace(final, aside)
            os.replace(staging, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    point_latest(releases_dir, release.release_id)
    pruned = prune_releases(releases_dir, keep)
    return Release(release.release_id, final, release.refresh_id, release.refreshed_at, release.files,
                   release.rows, tuple(pruned))
