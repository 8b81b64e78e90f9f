"""Full or incremental core refresh against the warehouse (what the core asset runs).

A full build parses every newest good body (`build_core_from_archive`) and replaces all core tables.
After it, core remembers which archive batch files it has seen and a fingerprint of the catalogue
(`CoreState`). The next refresh, when the catalogue is unchanged and batches were only added, is
incremental:

1. the subjects (repo keys, `pypi:<name>`, `pypistats:<name>`) named in the new batch files -> the packages they belong
   to (packages sharing a repository included) -> every subject of those packages;
2. only the requests about those subjects are re-parsed from the archive (newest attempt and newest
   good body over the *whole* archive, so a failed new attempt keeps the old body and marks it stale);
3. those packages' rows are rebuilt with the same `assemble_core` and swapped in by key
   (`replace_rows`: delete + insert in one transaction).

The result equals a full rebuild (tests/core/test_refresh.py checks it table by table); only the
physical row order of the DuckDB tables differs (query with ORDER BY).

Core's change log: every refresh gets the next core version, logged (with the package ids it
rebuilt, or as a full rebuild) *before* the tables are written, so a crash in between can only make a
reader recompute too much, never too little. A downstream layer keeps the last version it consumed
in its own tables and asks `core_changes(con, since=that version)`, which returns a typed
`CoreChanges` covering every refresh since, however many ran in between (e.g. while history failed).
Core's bookkeeping lives in core-private `main.core_*` tables that no other layer writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from assets.core.assemble import ENDPOINT_SUBJECT, assemble_core, subject_map
from assets.core.columns import CATALOGUE_PACKAGE_COLUMNS, CORE_KEYS, CORE_TABLES
from assets.core.parse import parse_archive
from assets.core.transform import build_core_from_archive
from pipelines.sources.facts import cast_columns
from warehouse.archive import batch_files
from warehouse.load import query, replace_rows, replace_tables

RefreshMode = Literal["full", "incremental", "unchanged"]

STATE_DDL = (
    # one row per core refresh; `catalogue` is set once its tables are written (NULL: not completed)
    "CREATE TABLE IF NOT EXISTS main.core_refreshes "
    "(version BIGINT, mode VARCHAR, catalogue VARCHAR, refreshed_at TIMESTAMPTZ)",
    # the packages each incremental refresh rebuilt (those before the newest full one are dropped)
    "CREATE TABLE IF NOT EXISTS main.core_changed_packages (version BIGINT, package_id BIGINT)",
    # the archive batch files the newest completed refresh had seen
    "CREATE TABLE IF NOT EXISTS main.core_files (filename VARCHAR)",
)
PER_PACKAGE = ("core.commit_weeks", "core.participants", "core.releases", "core.downloads_daily", "core.crawl_errors")


@dataclass(frozen=True)
class CoreState:
    """What the newest completed core refresh saw (version 0, nothing seen, before the first)."""

    version: int = 0
    mode: RefreshMode | None = None
    catalogue: str | None = None
    files: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CoreChanges:
    """What core rebuilt after a reader's version, up to `version` (core's newest): every package
    (`full`) or only `package_ids` (sorted; empty when nothing changed)."""

    version: int
    full: bool
    package_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CoreRefresh:
    """The outcome of one `refresh_core`: its mode, rows written per table and its core version."""

    mode: RefreshMode
    written: dict[str, int]
    version: int


def catalogue_fingerprint(catalogue: dict[str, pl.DataFrame]) -> str:
    parts = []
    for name in sorted(catalogue):
        frame = catalogue[name]
        frame = frame.select(sorted(frame.columns))
        parts.append(f"{name}:{frame.height}:{int(frame.hash_rows(seed=7).sum()) if frame.height else 0}")
    return "|".join(parts)


def _ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in STATE_DDL:
        con.execute(ddl)


def core_state(con: duckdb.DuckDBPyConnection) -> CoreState:
    _ensure_state_tables(con)
    rows = con.execute(
        "SELECT version, mode, catalogue FROM main.core_refreshes WHERE catalogue IS NOT NULL "
        "ORDER BY version DESC LIMIT 1"
    ).fetchall()
    if not rows:
        return CoreState()
    files = frozenset(r[0] for r in con.execute("SELECT filename FROM main.core_files").fetchall())
    version, mode, catalogue = rows[0]
    return CoreState(version=int(version), mode=mode, catalogue=catalogue, files=files)


def _transaction(con: duckdb.DuckDBPyConnection, statements) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        statements()
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _log_version(con: duckdb.DuckDBPyConnection, mode: RefreshMode, changed: pl.Series | None, now: datetime) -> int:
    """Give this refresh the next core version and log what it is about to rebuild (before writing)."""
    _ensure_state_tables(con)
    version = int(con.execute("SELECT coalesce(max(version), 0) + 1 FROM main.core_refreshes").fetchall()[0][0])

    def write() -> None:
        con.execute("INSERT INTO main.core_refreshes VALUES (?, ?, NULL, ?)", [version, mode, now])
        if mode == "full":  # every reader behind this version recomputes everything anyway
            con.execute("DELETE FROM main.core_changed_packages WHERE version < ?", [version])
        elif changed is not None and len(changed):
            con.execute("INSERT INTO main.core_changed_packages SELECT ?, unnest(?::BIGINT[])",
                        [version, [int(i) for i in changed]])

    _transaction(con, write)
    return version


def _complete(con: duckdb.DuckDBPyConnection, version: int, fingerprint: str, files: list[str]) -> None:
    """The tables of `version` are written: remember what it saw (the next refresh's starting point)."""

    def write() -> None:
        con.execute("UPDATE main.core_refreshes SET catalogue = ? WHERE version = ?", [fingerprint, version])
        con.execute("DELETE FROM main.core_files")
        con.register("__files", pl.DataFrame({"filename": files}, schema={"filename": pl.String}))
        con.execute("INSERT INTO main.core_files SELECT filename FROM __files")
        con.unregister("__files")

    _transaction(con, write)


def core_changes(con: duckdb.DuckDBPyConnection, since: int | None) -> CoreChanges:
    """Everything core rebuilt after version `since` (None: the reader has consumed nothing yet)."""
    _ensure_state_tables(con)
    latest = int(con.execute("SELECT coalesce(max(version), 0) FROM main.core_refreshes").fetchall()[0][0])
    if since is None or since > latest:  # a new reader, or a core log that was reset under it
        return CoreChanges(version=latest, full=True)
    full = con.execute(
        "SELECT count(*) FROM main.core_refreshes WHERE version > ? AND mode = 'full'", [since]
    ).fetchall()[0][0]
    if full:
        return CoreChanges(version=latest, full=True)
    ids = con.execute(
        "SELECT DISTINCT package_id FROM main.core_changed_packages WHERE version > ? ORDER BY 1", [since]
    ).fetchall()
    return CoreChanges(version=latest, full=False, package_ids=tuple(int(r[0]) for r in ids))


def last_mode(con: duckdb.DuckDBPyConnection) -> RefreshMode | None:
    """"full" | "incremental" | "unchanged" for the latest core refresh (None before the first)."""
    return core_state(con).mode


def refresh_core(
    con: duckdb.DuckDBPyConnection,
    catalogue: dict[str, pl.DataFrame],
    raw_dir: Path,
    *,
    now: datetime,
    full: bool = False,
) -> CoreRefresh:
    """Bring the core tables up to date with the archive (a new core version)."""
    files = [str(f) for f in batch_files(raw_dir)]
    fingerprint = catalogue_fingerprint(catalogue)
    state = core_state(con)
    have_core = bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'core' AND table_name = 'packages'"
        ).fetchall()[0][0]
    )
    incremental = (
        not full and have_core and state.catalogue == fingerprint and state.files and state.files.issubset(files)
    )
    if not incremental:
        version = _log_version(con, "full", None, now)
        tables = build_core_from_archive(catalogue, raw_dir)
        counts = replace_tables(con, tables)
        _complete(con, version, fingerprint, files)
        return CoreRefresh("full", counts, version)
    new = [f for f in files if f not in state.files]
    if not new:
        version = _log_version(con, "unchanged", None, now)
        _complete(con, version, fingerprint, files)
        return CoreRefresh("unchanged", {}, version)
    packages = cast_columns(catalogue["packages"], CATALOGUE_PACKAGE_COLUMNS)
    subjects = subject_map(packages)
    changed_subjects = pl.scan_parquet(new).select("subject").unique().collect()
    affected = subjects.join(changed_subjects, on="subject", how="semi")["package_id"].unique().sort()
    affected_subjects = subjects.filter(pl.col("package_id").is_in(affected.implode())).select("subject").unique()
    # endpoint health rows (no package): the endpoints named by the new batches are re-read
    endpoints = changed_subjects.filter(pl.col("subject").str.starts_with(ENDPOINT_SUBJECT))
    affected_subjects = pl.concat([affected_subjects, endpoints])
    facts, attempts = parse_archive(raw_dir, only_subjects=affected_subjects)
    subset = dict(catalogue)
    subset["packages"] = catalogue["packages"].filter(pl.col("id").is_in(affected.implode()))
    subset["grid_packages"] = catalogue["grid_packages"].clear()  # unchanged: not rewritten
    tables = assemble_core(subset, facts, archive=attempts)
    repo_keys = subset["packages"]["repo_key"].drop_nulls().unique()
    writes = {name: tables[name] for name in ("core.packages", "core.repositories", "core.endpoint_errors",
                                              *PER_PACKAGE)}
    by = {name: "package_id" for name in PER_PACKAGE} | {"core.packages": "id", "core.repositories": "repo_key",
                                                         "core.endpoint_errors": "request_key"}
    values = {name: affected.to_list() for name in PER_PACKAGE} | {
        "core.packages": affected.to_list(),
        "core.repositories": repo_keys.to_list(),
        # the subject `endpoint:<source>:<endpoint>` of request key `<source>:endpoint:<endpoint>`
        "core.endpoint_errors": [f"{src}:endpoint:{end}" for src, end in
                                 (sub.split(":")[1:3] for sub in endpoints["subject"].to_list())],
    }
    version = _log_version(con, "incremental", affected, now)
    counts = replace_rows(con, writes, by=by, values=values)
    _complete(con, version, fingerprint, files)
    return CoreRefresh("incremental", counts, version)


def read_core(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """The core tables, each ordered by its key (for comparisons and notebooks)."""
    return {name: query(con, f"SELECT * FROM {name} ORDER BY {', '.join(CORE_KEYS[name])}") for name in CORE_TABLES}
