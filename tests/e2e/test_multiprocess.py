"""Issue 11, "Past one machine": the partitioned crawl under Dagster's multiprocess executor.

`pulse refresh --processes 2` (the real CLI in a subprocess, the simulator over real HTTP, real DuckDB
files) crawls its partitions in two slices, each a step in a process of its own, and ends with the
core tables and the API v4 tree of the in-process run of the same `refresh` job on the same simulator
world (another home, another simulator with the same seed: the simulator's per-request state is per
server). The in-process run happens in the test process while the CLI runs, to keep the test short.
"""

from __future__ import annotations

import subprocess

import dagster as dg
import pytest

from assets.raw.assets import ALL_PARTITIONS_TAGS
from simulator.server import start_in_thread
from tests.crawl.simjob import assert_same_outcome, sim_refresh_job
from tests.e2e.conftest import PULSE, pulse_env

pytestmark = pytest.mark.slow  # two real refreshes, one of them in several processes

PACKAGES = 30
SEED = 37
PUBLIC_URL = "https://pulse.example"


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
    assert_same_outcome(processes, in_process, PACKAGES)
