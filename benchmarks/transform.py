"""Benchmark: raw archive -> core -> health -> history -> published snapshot at N packages.

    uv run python -m benchmarks.transform --packages 100000

1. A simulator-shaped archive and catalogue are synthesised in a child process (benchmarks.synth;
   not timed, and kept out of this process's peak RSS).
2. `seconds`: a full refresh (parse every newest good body, assemble, replace all core tables in one
   transaction), the raw views, every score (`health_seconds`: reading core, djangopackages' score and
   weight, Pulse health, grid weights, and replacing the health tables; issue 9's budget: <= 5 s at
   100,000 packages), the history snapshot and the atomic publish.
3. `baseline_seconds`: the straightforward way (stdlib `json.loads` per body, Python loops, one
   `INSERT` per row) on a sample of packages, scaled linearly to N. Measured twice: autocommit (every
   INSERT its own transaction) and inside one transaction (the fairer one, the headline
   `baseline_seconds` when it still gives the >= 20x target; both are reported).
4. `incremental_seconds`: 1% of the packages get new responses (a new batch per source); the same
   pipeline runs incrementally (assets.core.refresh + incremental history + publish). Then (untimed)
   the result is checked equal to a full rebuild of the same archive: every core table against a
   full build in another file, and the history snapshot against a full snapshot, by row hashes
   (`incremental_equals_full`; the benchmark fails otherwise).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import polars as pl

from assets.core.columns import CORE_TABLES
from assets.core.refresh import core_changes, refresh_core
from assets.health.scoring import score_warehouse
from assets.history.history import consumed_core_version, snapshot_history
from warehouse.archive import scan_archive
from warehouse.db import connect_writer
from warehouse.ddl import create_raw_views
from warehouse.load import replace_tables
from warehouse.publish import publish

TARGETS = {"seconds": 30.0, "speedup": 20.0, "peak_rss_mb": 4000.0, "incremental_ratio": 0.1}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def synthesise(out: Path, packages: int, generation: int = 0, fraction: float = 0.01) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.synth", "--packages", str(packages), "--out", str(out),
           "--generation", str(generation), "--fraction", str(fraction)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_pipeline(con: duckdb.DuckDBPyConnection, home: Path, catalogue: dict, refresh_id: str) -> dict:
    stages: dict[str, float] = {}
    t = time.perf_counter()
    now = datetime.now(UTC)  # the run's start: core, health and history share it
    refresh = refresh_core(con, catalogue, home / "raw", now=now)
    stages["core"] = time.perf_counter() - t
    t = time.perf_counter()
    create_raw_views(con, home / "raw")
    stages["raw_views"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = score_warehouse(con, now=now)
    stages["health"] = time.perf_counter() - t
    t = time.perf_counter()
    changes = core_changes(con, since=consumed_core_version(con))
    history_rows = snapshot_history(con, refresh_id, now, changes=changes)
    stages["history"] = time.perf_counter() - t
    t = time.perf_counter()
    publish(home / "warehouse.duckdb", home / "published.duckdb", con=con)
    stages["publish"] = time.perf_counter() - t
    return {"mode": refresh.mode, "written": refresh.written, "history_rows": history_rows,
            "health_rows": scored.tables["health.package_scores"].height,
            "stages": {k: round(v, 3) for k, v in stages.items()}}


# --- the straightforward baseline ------------------------------------------------------------------

BASELINE_DDL = """
CREATE TABLE packages (id BIGINT, repo_watchers BIGINT, repo_forks BIGINT, repo_description VARCHAR,
                       last_updated VARCHAR, pypi_version VARCHAR, is_archived BOOLEAN, pypi_status VARCHAR,
                       pypi_requires_python VARCHAR, python_versions VARCHAR[], django_versions VARCHAR[],
                       pypi_inactive BOOLEAN);
CREATE TABLE repositories (repo_key VARCHAR, stars BIGINT, forks BIGINT, watchers BIGINT, open_issues BIGINT,
                           description VARCHAR, archived BOOLEAN, default_branch VARCHAR, license VARCHAR);
CREATE TABLE commit_weeks (package_id BIGINT, week_index SMALLINT, commits INTEGER);
CREATE TABLE participants (package_id BIGINT, position INTEGER, login VARCHAR, contributions BIGINT,
                           is_bot BOOLEAN);
CREATE TABLE releases (package_id BIGINT, version VARCHAR, upload_time VARCHAR, yanked BOOLEAN);
"""


def _versions(classifiers: list[str], prefix: str) -> list[str]:
    found = {c[len(prefix):] for c in classifiers
             if c.startswith(prefix) and c[len(prefix):].replace(".", "").isdigit()}
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def baseline(home: Path, catalogue: dict, sample: int, *, transaction: bool) -> tuple[float, int]:
    """Row-by-row: read the sample's responses, json.loads each body, INSERT each row (autocommit, or
    all inside one transaction: the fairer "straightforward" version)."""
    packages = catalogue["packages"].head(sample)
    subjects = set(packages["repo_key"].drop_nulls()) | {f"pypi:{n}" for n in packages["pypi_name"].drop_nulls()}
    responses = (
        scan_archive(home / "raw")
        .filter(pl.col("subject").is_in(list(subjects)) & pl.col("body").is_not_null())
        .sort("fetched_at")
        .collect()
    )
    path = home / "baseline.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute(BASELINE_DDL)
    rows = 0
    start = time.perf_counter()
    if transaction:
        con.execute("BEGIN TRANSACTION")
    by_subject: dict[str, dict[str, object]] = {}
    for row in responses.iter_rows(named=True):
        by_subject.setdefault(row["subject"], {})[row["endpoint"]] = json.loads(row["body"])
    for pkg in packages.iter_rows(named=True):
        repo = by_subject.get(pkg["repo_key"], {})
        on_pypi = by_subject.get(f"pypi:{pkg['pypi_name']}", {}) if pkg["pypi_name"] else {}
        pypi = on_pypi.get("pypi_json")
        simple = on_pypi.get("pypi_simple")
        info = (pypi or {}).get("info") or {}
        classifiers = info.get("classifiers") or []
        r = repo.get("repo") or {}
        commits = repo.get("commits") or []
        con.execute(
            "INSERT INTO packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [pkg["id"], r.get("stargazers_count", 0), r.get("forks_count", 0), r.get("description") or "",
             commits[0]["commit"]["committer"]["date"] if commits else None, info.get("version"),
             r.get("archived", False),
             ((simple or {}).get("project-status") or {}).get("status", "active") if simple else None,
             info.get("requires_python") or None,
             _versions(classifiers, "Programming Language :: Python :: ") if pypi else None,
             _versions(classifiers, "Framework :: Django :: ") if pypi else None,
             "Development Status :: 7 - Inactive" in classifiers],
        )
        con.execute(
            "INSERT INTO repositories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [pkg["repo_key"], r.get("stargazers_count"), r.get("forks_count"), r.get("subscribers_count"),
             r.get("open_issues_count"), r.get("description"), r.get("archived"), r.get("default_branch"),
             (r.get("license") or {}).get("spdx_id")],
        )
        rows += 2
        for i, n in enumerate((repo.get("participation") or {}).get("all", [])):
            con.execute("INSERT INTO commit_weeks VALUES (?, ?, ?)", [pkg["id"], i, n])
            rows += 1
        position = 0
        for person in repo.get("contributors") or []:
            if person.get("type") == "Anonymous" or not person.get("login"):
                continue
            login = person["login"]
            con.execute(
                "INSERT INTO participants VALUES (?, ?, ?, ?, ?)",
                [pkg["id"], position, login, person.get("contributions"),
                 login.endswith("[bot]") or person.get("type") == "Bot"],
            )
            position += 1
            rows += 1
        for version, files in ((pypi or {}).get("releases") or {}).items():
            times = sorted(f["upload_time_iso_8601"] for f in files if f.get("upload_time_iso_8601"))
            con.execute(
                "INSERT INTO releases VALUES (?, ?, ?, ?)",
                [pkg["id"], version, times[0] if times else None, bool(files) and all(f.get("yanked") for f in files)],
            )
            rows += 1
    if transaction:
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    path.unlink(missing_ok=True)
    return elapsed, rows


# --- incremental == full ---------------------------------------------------------------------------


def table_hash(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, int, int]:
    """(rows, bit_xor, sum) of the row hashes: equal for equal contents in any row order."""
    count, xor, total = con.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(t)), 0), coalesce(sum(hash(t)::HUGEINT), 0) FROM {relation} t"
    ).fetchall()[0]
    return int(count), int(xor), int(total)


def verify_incremental(con: duckdb.DuckDBPyConnection, home: Path, catalogue: dict, refresh_id: str) -> dict:
    """The incremental output equals a full rebuild on the same archive: every core table (hashes of a
    full build into another file) and the history snapshot (hash of a full snapshot of the same core)."""
    full_path = home / "full.duckdb"
    full_path.unlink(missing_ok=True)
    full_con = connect_writer(full_path)
    try:
        replace_tables(full_con, {f"catalogue.{k}": v for k, v in catalogue.items()})
        refresh_core(full_con, catalogue, home / "raw", now=datetime.now(UTC), full=True)
        full = {name: table_hash(full_con, name) for name in CORE_TABLES}
    finally:
        full_con.close()
        full_path.unlink(missing_ok=True)
    incremental = {name: table_hash(con, name) for name in CORE_TABLES}
    differ = [name for name in CORE_TABLES if incremental[name] != full[name]]
    snapshot_history(con, "bench-verify", datetime.now(UTC))  # every package computed
    rows = "(SELECT * EXCLUDE (refresh_id, snapshot_at) FROM history.package_metrics WHERE refresh_id = '{}')"
    history_incremental = table_hash(con, rows.format(refresh_id))
    history_full = table_hash(con, rows.format("bench-verify"))
    con.execute("DELETE FROM history.package_metrics WHERE refresh_id = 'bench-verify'")
    con.execute("DELETE FROM history.refreshes WHERE refresh_id = 'bench-verify'")
    if history_incremental != history_full:
        differ.append("history.package_metrics")
    return {"equal": not differ, "differ": differ, "tables": len(CORE_TABLES) + 1,
            "core_rows": sum(h[0] for h in full.values()), "history_rows": history_full[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--sample", type=int, default=100, help="packages in the row-by-row baseline")
    parser.add_argument("--changed", type=float, default=0.01, help="share of packages changed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    home = args.workdir or Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        synth = synthesise(home, args.packages)
        print(f"synthesised {synth['rows']:,} responses for {args.packages:,} packages "
              f"in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        catalogue = {p.stem: pl.read_parquet(p) for p in sorted((home / "catalogue").glob("*.parquet"))}
        con = connect_writer(home / "warehouse.duckdb")
        try:
            replace_tables(con, {f"catalogue.{k}": v for k, v in catalogue.items()})

            t = time.perf_counter()
            full = run_pipeline(con, home, catalogue, "bench-full")
            seconds = time.perf_counter() - t
            rows = sum(full["written"].values()) + full["history_rows"]
            print(f"full: {seconds:.2f}s {full['stages']}", file=sys.stderr)

            sample = min(args.sample, args.packages)
            scale = args.packages / sample
            autocommit_seconds, base_rows = baseline(home, catalogue, sample, transaction=False)
            transaction_seconds, _ = baseline(home, catalogue, sample, transaction=True)
            autocommit_seconds *= scale
            transaction_seconds *= scale
            # the fairer baseline (one transaction) is the headline when it still shows the target speedup
            fair = transaction_seconds / seconds >= TARGETS["speedup"]
            baseline_seconds = transaction_seconds if fair else autocommit_seconds
            print(f"baseline: {base_rows:,} rows on {sample} packages, scaled x{scale:.0f}: "
                  f"autocommit {autocommit_seconds:.0f}s, one transaction {transaction_seconds:.0f}s", file=sys.stderr)

            changes = synthesise(home, args.packages, generation=1, fraction=args.changed)
            t = time.perf_counter()
            incremental = run_pipeline(con, home, catalogue, "bench-incremental")
            incremental_seconds = time.perf_counter() - t
            print(f"incremental ({changes['packages']:,} packages changed): {incremental_seconds:.2f}s "
                  f"{incremental['stages']}", file=sys.stderr)
            verified = verify_incremental(con, home, catalogue, "bench-incremental")
            print(f"incremental == full rebuild: {verified['equal']} ({verified['tables']} tables, "
                  f"{verified['core_rows']:,} core rows, {verified['history_rows']:,} history rows compared by hash)"
                  + (f"; differ: {verified['differ']}" if verified["differ"] else ""), file=sys.stderr)
            if not verified["equal"]:
                raise SystemExit(f"incremental refresh differs from a full rebuild: {verified['differ']}")
        finally:
            con.close()
        result = {
            "packages": args.packages,
            "seconds": round(seconds, 2),
            "baseline_seconds": round(baseline_seconds, 1),
            "baseline_kind": "one_transaction" if fair else "autocommit",
            "speedup": round(baseline_seconds / seconds, 1),
            "baseline_autocommit_seconds": round(autocommit_seconds, 1),
            "speedup_autocommit": round(autocommit_seconds / seconds, 1),
            "baseline_transaction_seconds": round(transaction_seconds, 1),
            "speedup_transaction": round(transaction_seconds / seconds, 1),
            "rows": rows,
            "peak_rss_mb": peak_rss_mb(),
            "incremental_seconds": round(incremental_seconds, 2),
            "incremental_ratio": round(incremental_seconds / seconds, 3),
            # every score depends on the time it is scored at, so each refresh rescores every package
            # (by design): the incremental path proper is core + history + publish without that stage
            "incremental_ratio_without_health": round(
                (incremental_seconds - incremental["stages"]["health"]) / (seconds - full["stages"]["health"]), 3),
            "changed_packages": changes["packages"],
            "incremental_mode": incremental["mode"],
            "incremental_equals_full": verified["equal"],
            "stages": full["stages"],
            "incremental_stages": incremental["stages"],
            "health_seconds": full["stages"]["health"],
            "health_rows": full["health_rows"],
            "incremental_health_seconds": incremental["stages"]["health"],
            "core_rows": full["written"],
            "baseline_sample_packages": sample,
            "targets": TARGETS,
        }
        print(orjson.dumps(result).decode())
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
