"""Full or incremental core refresh against the warehouse (what the core asset runs).

A full build parses every newest good body (`build_core_from_archive`) and replaces all core tables.
After it, the warehouse remembers which archive batch files it has seen and a fingerprint of the
catalogue (`main.pulse_core_state`, `main.pulse_core_files`). The next refresh, when the catalogue
is unchanged and batches were only added, is incremental:

1. the subjects (repo keys, `pypi:<name>`) named in the new batch files -> the packages they belong
   to (packages sharing a repository included) -> every subject of those packages;
2. only the requests about those subjects are re-parsed from the archive (newest attempt and newest
   good body over the *whole* archive, so a failed new attempt keeps the old body and marks it stale);
3. those packages' rows are rebuilt with the same `assemble_core` and swapped in by key
   (`replace_rows`: delete + insert in one transaction).

The result equals a full rebuild (tests/core/test_refresh.py checks it table by table); only the
physical row order of the DuckDB tables differs (query with ORDER BY). The changed package ids are
accumulated in `main.pulse_changed_packages` until the history snapshot consumes them, so history
can be incremental too (`pending_changes`, `consume_pending`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from assets.core.assemble import assemble_core, subject_map
from assets.core.columns import CATALOGUE_PACKAGE_COLUMNS, CORE_KEYS, CORE_TABLES
from assets.core.parse import parse_archive
from assets.core.transform import build_core_from_archive
from pipelines.sources.facts import cast_columns
from warehouse.archive import batch_files
from warehouse.load import query, replace_rows, replace_tables

STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS main.pulse_core_state (key VARCHAR, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS main.pulse_core_files (filename VARCHAR)",
    "CREATE TABLE IF NOT EXISTS main.pulse_changed_packages (package_id BIGINT)",
)
PER_PACKAGE = ("core.commit_weeks", "core.participants", "core.releases", "core.crawl_errors")


def catalogue_fingerprint(catalogue: dict[str, pl.DataFrame]) -> str:
    parts = []
    for name in sorted(catalogue):
        frame = catalogue[name]
        frame = frame.select(sorted(frame.columns))
        parts.append(f"{name}:{frame.height}:{int(frame.hash_rows(seed=7).sum()) if frame.height else 0}")
    return "|".join(parts)


def _state(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], set[str]]:
    for ddl in STATE_DDL:
        con.execute(ddl)
    state = dict(con.execute("SELECT key, value FROM main.pulse_core_state").fetchall())
    files = {r[0] for r in con.execute("SELECT filename FROM main.pulse_core_files").fetchall()}
    return state, files


def _remember(
    con: duckdb.DuckDBPyConnection, fingerprint: str, files: list[str], mode: str, changed: pl.Series | None
) -> None:
    """Record what this refresh saw, and which packages history still has to recompute: after a full
    build everything (`pending = full`); incremental refreshes add their package ids until the
    history snapshot consumes them (`consume_pending`)."""
    state, _ = _state(con)
    pending = "full" if mode == "full" else state.get("pending", "full")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM main.pulse_core_state")
        con.executemany(
            "INSERT INTO main.pulse_core_state VALUES (?, ?)",
            [["catalogue", fingerprint], ["mode", mode], ["pending", pending]],
        )
        con.execute("DELETE FROM main.pulse_core_files")
        con.register("__files", pl.DataFrame({"filename": files}, schema={"filename": pl.String}))
        con.execute("INSERT INTO main.pulse_core_files SELECT filename FROM __files")
        con.unregister("__files")
        if mode == "full":
            con.execute("DELETE FROM main.pulse_changed_packages")
        elif changed is not None and len(changed):
            con.register("__changed", changed.to_frame("package_id"))
            con.execute(
                "INSERT INTO main.pulse_changed_packages SELECT package_id FROM __changed "
                "WHERE package_id NOT IN (SELECT package_id FROM main.pulse_changed_packages)"
            )
            con.unregister("__changed")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def pending_changes(con: duckdb.DuckDBPyConnection) -> list[int] | None:
    """Package ids changed since the last history snapshot; None when every package must be
    recomputed (a full core build happened, or nothing is recorded)."""
    state, _ = _state(con)
    if state.get("pending", "full") == "full":
        return None
    return sorted(r[0] for r in con.execute("SELECT package_id FROM main.pulse_changed_packages").fetchall())


def consume_pending(con: duckdb.DuckDBPyConnection) -> None:
    """The history snapshot took the pending changes into account."""
    _state(con)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM main.pulse_changed_packages")
        con.execute("DELETE FROM main.pulse_core_state WHERE key = 'pending'")
        con.execute("INSERT INTO main.pulse_core_state VALUES ('pending', 'partial')")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def last_mode(con: duckdb.DuckDBPyConnection) -> str | None:
    """"full" | "incremental" | "unchanged" for the latest core refresh (None before the first)."""
    return _state(con)[0].get("mode")


def refresh_core(
    con: duckdb.DuckDBPyConnection,
    catalogue: dict[str, pl.DataFrame],
    raw_dir: Path,
    *,
    full: bool = False,
) -> tuple[str, dict[str, int]]:
    """Bring the core tables up to date with the archive; returns (mode, rows written per table)."""
    files = [str(f) for f in batch_files(raw_dir)]
    fingerprint = catalogue_fingerprint(catalogue)
    state, seen = _state(con)
    have_core = bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'core' AND table_name = 'packages'"
        ).fetchall()[0][0]
    )
    incremental = (
        not full and have_core and state.get("catalogue") == fingerprint and seen and seen.issubset(files)
    )
    if not incremental:
        tables = build_core_from_archive(catalogue, raw_dir)
        counts = replace_tables(con, tables)
        _remember(con, fingerprint, files, "full", None)
        return "full", counts
    new = [f for f in files if f not in seen]
    if not new:
        _remember(con, fingerprint, files, "unchanged", pl.Series("package_id", [], pl.Int64))
        return "unchanged", {}
    packages = cast_columns(catalogue["packages"], CATALOGUE_PACKAGE_COLUMNS)
    subjects = subject_map(packages)
    changed_subjects = pl.scan_parquet(new).select("subject").unique().collect()
    affected = subjects.join(changed_subjects, on="subject", how="semi")["package_id"].unique().sort()
    affected_subjects = subjects.filter(pl.col("package_id").is_in(affected.implode())).select("subject").unique()
    facts, attempts = parse_archive(raw_dir, only_subjects=affected_subjects)
    subset = dict(catalogue)
    subset["packages"] = catalogue["packages"].filter(pl.col("id").is_in(affected.implode()))
    subset["grid_packages"] = catalogue["grid_packages"].clear()  # unchanged: not rewritten
    tables = assemble_core(subset, facts, archive=attempts)
    repo_keys = subset["packages"]["repo_key"].drop_nulls().unique()
    writes = {name: tables[name] for name in ("core.packages", "core.repositories", *PER_PACKAGE)}
    by = {name: "package_id" for name in PER_PACKAGE} | {"core.packages": "id", "core.repositories": "repo_key"}
    values = {name: affected.to_list() for name in PER_PACKAGE} | {
        "core.packages": affected.to_list(),
        "core.repositories": repo_keys.to_list(),
    }
    counts = replace_rows(con, writes, by=by, values=values)
    _remember(con, fingerprint, files, "incremental", affected)
    return "incremental", counts


def read_core(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """The core tables, each ordered by its key (for comparisons and notebooks)."""
    return {name: query(con, f"SELECT * FROM {name} ORDER BY {', '.join(CORE_KEYS[name])}") for name in CORE_TABLES}
