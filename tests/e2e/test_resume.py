"""Issue 4, "Resumable and replayable", proved on the whole pipeline: the real `pulse` CLI in
subprocesses, the simulator over real HTTP, real DuckDB files.

1. `pulse refresh` SIGKILLed in the middle of its crawl, then run again, re-fetches nothing that was
   archived and ends with the warehouse of an uninterrupted run (another PULSE_HOME, an identical
   simulator world) row for row, without duplicates.
2. `pulse refresh --replay` rebuilds core, history and exports from the catalogue and the raw archive
   alone, with the network gone; without a warehouse (so without a catalogue) it fails in one line.
3. `pulse query` answers, every time, while a refresh is writing.

The two homes each get their own simulator (same seed, same faults): the simulator's per-request
state (the 202 "computing" countdown of GitHub stats, the n-th-time fault rolls) is per server, and
the reference must not profit from what the interrupted home already asked.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import polars as pl
import pytest

from assets.core.columns import CORE_KEYS, CORE_TABLES
from pipelines.sources.registry import SOURCES
from simulator.server import SimServer, start_in_thread
from tests.e2e.conftest import PULSE, pulse_env, run_pulse, without_last_fetched
from warehouse.archive import scan_archive

pytestmark = pytest.mark.slow  # two real refreshes, one SIGKILLed mid-crawl and resumed

PACKAGES = 200
SEED = 23
# 20 ms per answer, and 5% of GitHub answers take 4 s (deterministic per request): the crawl lasts a
# few seconds, so the kill lands while it runs. Both simulators get the same faults.
SIM = {"packages": PACKAGES, "seed": SEED, "latency_ms": 20, "faults": {"slow": "0.05:4000", "hosts": "github"}}

# Columns that legitimately differ between two homes that crawled the same world at different
# moments; everything else is compared row for row.
TIME_COLUMNS = {
    # when the newest good answer was fetched: wall-clock time of the crawl
    "core.packages": ("last_fetched",),
    "core.repositories": ("fetched_at",),
    # when a failing request failed: wall-clock times; `attempts` is compared separately (below)
    "core.crawl_errors": ("first_seen", "last_seen", "attempts"),
}
# a refresh's id (run id) and its clock time; the health score is scored as of the newest answer (the
# crawl's clock), so two homes that crawled at different moments score a little apart
HISTORY_TIME_COLUMNS = ("refresh_id", "snapshot_at", "health_score")
PUBLIC_URL = "https://pulse.example"  # the same for both homes (by default each simulator's own URL)


@dataclass
class Home:
    sim: SimServer
    home: Path
    env: dict[str, str]


@dataclass
class Resumed:
    interrupted: Home  # SIGKILLed mid-crawl, then refreshed again
    reference: Home  # one uninterrupted refresh
    killed_rows: pl.DataFrame  # the raw archive as the kill left it
    killed_files: set[Path]
    resume_requests: list[dict]  # what the resumed run asked the simulator
    reference_requests: list[dict]
    resume_result: subprocess.CompletedProcess
    reference_result: subprocess.CompletedProcess


def _batches(home: Path) -> set[Path]:
    return set((home / "raw").glob("*/*.parquet"))


def _start_refresh(env: dict[str, str], *args: str) -> subprocess.Popen:
    # own session: the SIGKILL goes to the whole group (pulse and the helpers Dagster starts)
    return subprocess.Popen([PULSE, "refresh", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Resumed:
    sim_a, sim_b = start_in_thread(**SIM), start_in_thread(**SIM)
    started: list[subprocess.Popen] = []
    try:
        a = Home(sim_a, tmp_path_factory.mktemp("interrupted"), {})
        a.env = pulse_env(sim_a, a.home, PULSE_PUBLIC_URL=PUBLIC_URL)
        b = Home(sim_b, tmp_path_factory.mktemp("reference"), {})
        b.env = pulse_env(sim_b, b.home, PULSE_PUBLIC_URL=PUBLIC_URL)

        # the uninterrupted reference runs meanwhile, in its own home against its own simulator
        reference = _start_refresh(b.env)
        child = _start_refresh(a.env)
        started += [reference, child]
        deadline = time.monotonic() + 120
        # a durable batch of GitHub answers and one of PyPI answers: the crawl is well under way
        while time.monotonic() < deadline and child.poll() is None:
            sources = {path.parent.name for path in _batches(a.home)}
            if {"github", "pypi"} <= sources:
                break
            time.sleep(0.02)
        still_running = child.poll() is None
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        assert still_running, "the refresh ended before the kill: nothing was interrupted"
        killed_files = _batches(a.home)
        killed_rows = scan_archive(a.home / "raw").collect()
        assert killed_rows.height, "no durable batch before the kill"

        sim_a.reset_stats()
        try:
            resume_result = run_pulse("refresh", env=a.env, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail("the refresh after the kill hung (waiting for what the killed run held?)")
        resume_requests = sim_a.requests()
        out, err = reference.communicate(timeout=180)
        reference_result = subprocess.CompletedProcess(reference.args, reference.returncode, out, err)
        reference_requests = sim_b.requests()
        yield Resumed(a, b, killed_rows, killed_files, resume_requests, reference_requests, resume_result,
                      reference_result)
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        sim_a.stop()
        sim_b.stop()


def _tables(home: Path, names=CORE_TABLES) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {name: con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(CORE_KEYS[name])}").pl() for name in names}
    finally:
        con.close()


def _history(home: Path) -> pl.DataFrame:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql("SELECT * FROM history.package_metrics ORDER BY refresh_id, package_id").pl()
    finally:
        con.close()


def _good(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("status").is_between(200, 299) & pl.col("error_kind").is_null())


def _assert_frames_equal(name: str, got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert got.columns == expected.columns, name
    assert got.height == expected.height, (name, got.height, expected.height)
    if not got.equals(expected):
        diff = pl.concat([got.with_row_index("row"), expected.with_row_index("row")]).unique(
            keep="none", maintain_order=True)
        raise AssertionError(f"{name} differs in {diff.height} rows, e.g.\n{diff.head(6)}")


def _assert_no_duplicates(name: str, frame: pl.DataFrame, key: list[str]) -> None:
    assert frame.height == frame.unique().height, f"{name}: duplicate rows"
    assert frame.height == frame.unique(key).height, f"{name}: duplicate keys {key}"


# ------------------------------------------------------------------------------------------------
# 1. SIGKILL mid-crawl, then resume


def test_both_refreshes_succeed_and_the_kill_was_mid_crawl(resumed):
    for result in (resumed.resume_result, resumed.reference_result):
        assert result.returncode == 0, result.stderr[-3000:]
        assert "refresh completed" in result.stderr
    killed = set(resumed.killed_rows["request_key"])
    reference = set(scan_archive(resumed.reference.home / "raw").collect()["request_key"])
    # the kill interrupted the crawl: some request keys were archived, others were not yet
    assert killed and killed < reference, (len(killed), len(reference))


def test_resumed_run_refetches_nothing_that_was_archived(resumed):
    killed = resumed.killed_rows
    archived = set(_good(killed)["request_key"])
    assert archived
    after = scan_archive(resumed.interrupted.home / "raw").collect()
    new_rows = after.join(killed.select("request_key", "fetched_at", "run_id"),
                          on=["request_key", "fetched_at", "run_id"], how="anti")
    assert new_rows.height, "the resumed run archived nothing"
    assert new_rows["run_id"].n_unique() == 1 and new_rows["run_id"][0] not in set(killed["run_id"])
    refetched = set(new_rows["request_key"]) & archived
    assert not refetched, sorted(refetched)[:10]
    assert resumed.killed_files <= _batches(resumed.interrupted.home)  # batches are only ever added
    # every request key has exactly one good answer in the whole archive: no duplicate fetches
    good = _good(after)
    assert good.height == good["request_key"].n_unique()

    # the simulator's side: none of the archived (non-derived, non-batched) requests was asked again
    prefixes = {source: urlparse(url).path.rstrip("/") for source, url in (
        ("github", resumed.interrupted.env["GITHUB_API_URL"]), ("pypi", resumed.interrupted.env["PYPI_URL"]),
        ("gitlab", resumed.interrupted.env["GITLAB_API_URL"]),
        ("bitbucket", resumed.interrupted.env["BITBUCKET_API_URL"]))}
    asked = {entry["path"].split("?")[0] for entry in resumed.resume_requests}
    direct = _good(killed).filter((pl.col("attempts") > 0) & (pl.col("endpoint") != "graphql_repo")
                                  & pl.col("source").is_in(list(prefixes)))
    assert direct.height >= 10  # enough direct answers to check (how many depends on the load at the kill)
    asked_again = [
        key for key, source, url in direct.select("request_key", "source", "url").iter_rows()
        if prefixes[source] + url.split("?")[0] in asked
    ]
    assert not asked_again, asked_again[:10]
    # (the same mapping finds every such request of the reference run among the reference's requests)
    reference_asked = {entry["path"].split("?")[0] for entry in resumed.reference_requests}
    reference_direct = _good(scan_archive(resumed.reference.home / "raw").collect()).filter(
        (pl.col("attempts") > 0) & (pl.col("endpoint") != "graphql_repo") & pl.col("source").is_in(list(prefixes)))
    unmatched = [url for source, url in reference_direct.select("source", "url").iter_rows()
                 if prefixes[source] + url.split("?")[0] not in reference_asked]
    assert reference_direct.height > 100 and not unmatched, unmatched[:5]
    # and the resumed run asked for fewer things than a whole crawl needs (distinct paths: 202 polls
    # and retries repeat a path a varying number of times)
    resume_paths = {entry["path"] for entry in resumed.resume_requests}
    reference_paths = {entry["path"] for entry in resumed.reference_requests}
    assert 0 < len(resume_paths) < len(reference_paths)


def test_resumed_warehouse_equals_an_uninterrupted_one(resumed):
    got, expected = _tables(resumed.interrupted.home), _tables(resumed.reference.home)
    assert got["core.packages"].height == PACKAGES
    for name in CORE_TABLES:
        _assert_no_duplicates(name, got[name], list(CORE_KEYS[name]))
        drop = TIME_COLUMNS.get(name, ())
        _assert_frames_equal(name, got[name].drop(drop), expected[name].drop(drop))
    # the dropped time columns are set wherever the reference has them (nothing left empty)
    for name, columns in TIME_COLUMNS.items():
        for column in columns:
            assert (got[name][column].is_null() == expected[name][column].is_null()).all(), (name, column)


def test_failure_attempts_count_the_requests_made_before_and_after_the_kill(resumed):
    """`core.crawl_errors.attempts` is "failures since the last success": a request that failed before
    the kill and is asked again by the resumed run (failures are always due) has failed once more
    than in the reference, and exactly that much more."""
    got = _tables(resumed.interrupted.home, ["core.crawl_errors"])["core.crawl_errors"]
    expected = _tables(resumed.reference.home, ["core.crawl_errors"])["core.crawl_errors"]
    # (a source asked at most once a day, pypistats, counts a definite failure such as a 404 as its
    # answer for the day: not asked again by the resumed run, so its count is the kill's alone)
    daily = [source.name for source in SOURCES if source.min_age_hours]
    killed_failures = (
        resumed.killed_rows.filter(pl.col("error_kind").is_not_null() & ~pl.col("source").is_in(daily))
        .group_by("request_key").agg(pl.col("attempts").fill_null(1).sum().alias("before_kill"))
    )
    got = got.filter(~pl.col("source").is_in(daily))
    expected = expected.filter(~pl.col("source").is_in(daily))
    joined = (
        got.select("package_id", "request_key", "attempts")
        .join(expected.select("package_id", "request_key", pl.col("attempts").alias("reference")),
              on=["package_id", "request_key"])
        .join(killed_failures, on="request_key", how="left")
        .with_columns(pl.col("before_kill").fill_null(0))
    )
    assert joined.height == got.height == expected.height
    assert (joined["before_kill"] > 0).any(), "no failure was archived before the kill: nothing to check"
    mismatched = joined.filter(pl.col("attempts") != pl.col("reference") + pl.col("before_kill"))
    assert mismatched.is_empty(), mismatched


def test_resumed_history_and_exports_equal_an_uninterrupted_run(resumed):
    got, expected = _history(resumed.interrupted.home), _history(resumed.reference.home)
    assert got.height == expected.height == PACKAGES  # one snapshot each: the killed run wrote none
    _assert_no_duplicates("history.package_metrics", got, ["refresh_id", "package_id"])
    _assert_frames_equal("history.package_metrics", got.drop(HISTORY_TIME_COLUMNS),
                         expected.drop(HISTORY_TIME_COLUMNS))
    got_tree, expected_tree = _tree(resumed.interrupted.home), _tree(resumed.reference.home)
    assert set(got_tree) == set(expected_tree)
    # (the health documents are scored as of each home's own crawl clock: compared in test_replay)
    different = [path for path in got_tree if without_last_fetched(got_tree[path]) !=
                 without_last_fetched(expected_tree[path]) and not path.endswith("/health/index.json")]
    assert not different, different[:10]


# ------------------------------------------------------------------------------------------------
# 2. replay


def _tree(home: Path) -> dict[str, bytes]:
    root = home / "export" / "api" / "v4"
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}




def test_replay_rebuilds_core_history_and_exports_offline(resumed):
    ref = resumed.reference
    before_core, before_history, before_tree = _tables(ref.home), _history(ref.home), _tree(ref.home)
    raw_before = _batches(ref.home)
    # keep the catalogue (it is not in the raw archive) and empty everything built from the archive
    con = duckdb.connect(str(ref.home / "warehouse.duckdb"))
    try:
        for name in (*CORE_TABLES, "history.package_metrics", "history.refreshes"):
            con.execute(f"DELETE FROM {name}")
    finally:
        con.close()
    shutil.rmtree(ref.home / "export" / "api")
    ref.sim.reset_stats()
    ref.sim.stop()  # the network is gone

    result = run_pulse("refresh", "--replay", env=ref.env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ref.sim.stats()["requests"] == 0
    assert _batches(ref.home) == raw_before  # nothing crawled, nothing archived
    after_core = _tables(ref.home)
    for name in CORE_TABLES:
        # identical, time columns included: they come from the archive, not from the clock
        _assert_frames_equal(name, after_core[name], before_core[name])
    after_history = _history(ref.home)
    assert after_history.height == before_history.height
    _assert_frames_equal("history.package_metrics", after_history.drop(HISTORY_TIME_COLUMNS),
                         before_history.drop(HISTORY_TIME_COLUMNS))
    after_tree = _tree(ref.home)
    assert set(after_tree) == set(before_tree)
    different = [path for path in after_tree if after_tree[path] != before_tree[path]]
    assert not different, different[:10]
    published = duckdb.connect(str(ref.home / "published.duckdb"), read_only=True)
    try:
        assert published.execute("SELECT count(*) FROM core.packages").fetchone()[0] == PACKAGES
    finally:
        published.close()


def test_replay_without_a_warehouse_fails_in_one_line(resumed, tmp_path):
    """The catalogue lives in the warehouse, not in the raw archive: a replay needs it. Without the
    warehouse file, `--replay` says so in one line and leaves nothing behind."""
    home = tmp_path / "home"
    shutil.copytree(resumed.reference.home / "raw", home / "raw")
    env = pulse_env(resumed.reference.sim, home)
    result = run_pulse("refresh", "--replay", env=env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("pulse: ") and "warehouse" in lines[-1] and "pulse refresh" in lines[-1], \
        result.stderr[-2000:]
    assert not (home / "warehouse.duckdb").exists()


# ------------------------------------------------------------------------------------------------
# 3. readers while a refresh writes


def test_queries_succeed_while_a_refresh_is_writing(resumed):
    home = resumed.interrupted
    assert (home.home / "published.duckdb").exists()
    published_inode = (home.home / "published.duckdb").stat().st_ino
    refresh = _start_refresh(home.env, "--force")
    started = time.monotonic()
    results: list[tuple[float, float, int, str, str]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            began = time.monotonic()
            r = run_pulse("query", "SELECT count(*) AS n FROM core.packages", "--format", "csv", env=home.env,
                          timeout=120)
            results.append((began, time.monotonic(), r.returncode, r.stdout, r.stderr))

    readers = [threading.Thread(target=reader)]
    for thread in readers:
        thread.start()
    try:
        # meanwhile a second refresh on the same home is refused at once, in one line
        lock = home.home / "dagster" / "pulse-refresh.lock.pid"  # the holder's pid, beside the lock
        while refresh.poll() is None and not (lock.exists() and lock.read_text().strip() == str(refresh.pid)):
            time.sleep(0.05)
        second = run_pulse("refresh", env=home.env)
        _, err = refresh.communicate(timeout=300)
        ended = time.monotonic()
    finally:
        stop.set()
        for thread in readers:
            thread.join()
        if refresh.poll() is None:
            os.killpg(refresh.pid, signal.SIGKILL)
    assert refresh.returncode == 0, err[-3000:]
    assert second.returncode != 0
    last = [line for line in second.stderr.strip().splitlines() if line.strip()][-1]
    assert last.startswith("pulse: refresh failed") and "another refresh is running" in last, second.stderr
    assert results
    for _, _, code, stdout, stderr in results:
        assert code == 0, stderr[-2000:]
        assert stdout.split() == ["n", str(PACKAGES)], stdout
    overlapping = [r for r in results if r[0] < ended and r[1] > started]
    assert len(overlapping) >= 3, len(overlapping)
    # the snapshot was replaced while the readers were reading
    assert (home.home / "published.duckdb").stat().st_ino != published_inode
