"""Issue 11, "Past one machine": the partitioned crawl under Dagster's multiprocess executor.

`pulse refresh --processes 2` (the real CLI in a subprocess, the simulator over real HTTP, real DuckDB
files) crawls its partitions in two slices, each a step in a process of its own, and ends with the
core tables and the API v4 tree of the in-process run of the same `refresh` job on the same simulator
world (another home, another simulator with the same seed: the simulator's per-request state is per
server). The in-process run happens in the test process while the CLI runs, to keep the test short.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.core.columns import CORE_KEYS, CORE_TABLES
from assets.raw.assets import ALL_PARTITIONS_TAGS
from simulator.server import start_in_thread
from tests.crawl.simjob import sim_refresh_job
from tests.e2e.conftest import PULSE, pulse_env, without_last_fetched

pytestmark = pytest.mark.slow  # two real refreshes, one of them in several processes

PACKAGES = 30
SEED = 37
PUBLIC_URL = "https://pulse.example"
TIME_COLUMNS = {  # wall-clock times of the two crawls (as in test_resume.py)
    "core.packages": ("last_fetched",),
    "core.repositories": ("fetched_at",),
    "core.crawl_errors": ("first_seen", "last_seen"),
}


@pytest.fixture(scope="module")
def two_homes(tmp_path_factory):
    sims = [start_in_thread(packages=PACKAGES, seed=SEED) for _ in range(2)]
    homes = [tmp_path_factory.mktemp("in_process"), tmp_path_factory.mktemp("processes")]
    try:
        # both at once: each has its own home, Dagster instance and simulator
        process = subprocess.Popen([PULSE, "refresh", "--processes", "2"],
                                   env=pulse_env(sims[1], homes[1], PULSE_PUBLIC_URL=PUBLIC_URL),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with dg.DagsterInstance.ephemeral() as instance:
            env = pulse_env(sims[0], homes[0])  # the CLI's time zone and tokens
            reference = sim_refresh_job(sims[0], homes[0], public_url=PUBLIC_URL, tokens=env["GITHUB_TOKEN"],
                                        timezone=env["PULSE_TIMEZONE"])
            assert reference.execute_in_process(instance=instance, tags=ALL_PARTITIONS_TAGS).success
        out, err = process.communicate(timeout=300)
        yield homes, subprocess.CompletedProcess(process.args, process.returncode, out, err)
    finally:
        for sim in sims:
            sim.stop()


def _tables(home: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {name: con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(CORE_KEYS[name])}").pl()
                for name in CORE_TABLES}
    finally:
        con.close()


def _tree(home: Path) -> dict[str, object]:
    root = home / "export" / "api" / "v4"
    return {str(p.relative_to(root)): without_last_fetched(p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p).endswith("/health/index.json")}  # scored as of each crawl's clock


def test_the_crawl_slices_ran_in_parallel_processes(two_homes):
    (_, home), result = two_homes
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refresh completed" in result.stderr
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        runs = instance.get_runs()
        started = {}
        for run in runs:
            records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
            started.update({r.event_log_entry.step_key: r.event_log_entry.dagster_event.pid for r in records})
    slices = {step: pid for step, pid in started.items() if step.startswith("crawl.crawl_slice[")}
    assert set(slices) == {"crawl.crawl_slice[slice_0]", "crawl.crawl_slice[slice_1]"}
    assert len(set(slices.values())) == 2  # two processes
    assert started["core_tables"] not in slices.values() and started["catalogue"] not in slices.values()


def test_a_multiprocess_refresh_ends_like_the_in_process_one(two_homes):
    (in_process, processes), result = two_homes
    assert result.returncode == 0, result.stderr[-3000:]
    got, expected = _tables(processes), _tables(in_process)
    assert got["core.packages"].height == PACKAGES
    for name in CORE_TABLES:
        drop = TIME_COLUMNS.get(name, ())
        left, right = got[name].drop(drop), expected[name].drop(drop)
        assert left.columns == right.columns and left.height == right.height, name
        assert left.equals(right), (name, pl.concat([left, right]).unique(keep="none").head(6))
    got_tree, expected_tree = _tree(processes), _tree(in_process)
    assert set(got_tree) == set(expected_tree) and len(got_tree) > PACKAGES
    assert not [path for path in got_tree if got_tree[path] != expected_tree[path]]
