"""`pulse refresh` (the real CLI, in a subprocess) against the simulator when GitHub's quota runs out:
the waits are visible without -v, a time budget stops the crawl cleanly and the next run continues."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.crawl.simworld import short_quota_windows
from warehouse.archive import latest_responses

pytestmark = pytest.mark.slow  # real `pulse refresh` runs that wait for quota resets

PULSE = str(Path(sys.executable).parent / "pulse")
SECRET = "sim-cli-secret-token-1"  # a simulator token: must never show in the output


def pulse_refresh(sim, home: Path, *args: str, token: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "GITHUB_TOKEN")}
    env.update(sim.env())
    env.update({"PULSE_HOME": str(home), "PULSE_PUBLIC_URL": sim.url, "GITHUB_TOKEN": token})
    return subprocess.run([PULSE, "refresh", *args], env=env, cwd=home.parent, capture_output=True, text=True,
                          timeout=timeout, check=False)


def github_rows(home: Path) -> pl.DataFrame:
    return latest_responses(home / "raw", ["github"]).collect()


def test_refresh_shows_the_wait_for_a_quota_reset_and_completes_after_it(make_simulator, tmp_path, monkeypatch):
    short_quota_windows(monkeypatch, 4)  # the anonymous quota comes back 4 s after it starts
    sim = make_simulator(packages=30, faults={"anon_quota": 30, "burst": 0})
    home = tmp_path / "home"
    result = pulse_refresh(sim, home)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    waits = [line for line in output.splitlines() if "for the reset" in line]
    assert waits, output[-3000:]
    assert "github: REST quota spent on anonymous access" in waits[0]
    assert "UTC for the reset; use --time-budget to stop instead" in waits[0]
    assert "stopped by the time budget" not in output
    assert "refresh completed" in output
    summary = next(line for line in output.splitlines() if line.startswith("crawl: "))
    assert "waited for quota resets" in summary
    rows = github_rows(home)
    assert rows.height > 60 and rows.filter(pl.col("error_kind") == "rate_limited").is_empty()


def test_time_budget_stops_at_a_spent_quota_and_the_next_run_continues(make_simulator, tmp_path):
    sim = make_simulator(packages=40, faults={"quota": 25, "burst": 0})  # REST quota: an hour away
    home = tmp_path / "home"
    first = pulse_refresh(sim, home, "--time-budget", "120", token=SECRET)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-3000:]
    assert SECRET not in output and "cli-secret" not in output
    stop = [line for line in output.splitlines() if "stopping at the time budget" in line]
    assert stop and stop[0].startswith("github: stopping at the time budget: REST quota spent on all 1 token(s)")
    assert "would exceed the time budget" in stop[0] and "github: github:" not in output
    closing = [line for line in output.splitlines() if line.startswith("stopped by the time budget: ")]
    assert closing, output[-3000:]
    left = int(closing[0].split(": ")[1].split()[0])
    assert left > 0 and "requests left for the next run" in closing[0]
    assert "refresh completed" in output  # the rest of the graph ran on what was there
    archived = github_rows(home)
    assert archived.filter(pl.col("error_kind") == "rate_limited").is_empty()  # nothing half-recorded
    done = set(archived.filter(pl.col("error_kind").is_null())["request_key"])

    # the quota is back: the next run picks up what was left, and only that
    sim.sim.faults.quota = 1_000_000
    sim.sim.state.windows.clear()
    sim.reset_stats()
    second = pulse_refresh(sim, home, token=SECRET)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert "stopped by the time budget" not in output and "for the reset" not in output
    after = github_rows(home)
    assert after.height >= archived.height and after.filter(pl.col("error_kind") == "rate_limited").is_empty()
    asked = {entry["path"].split("?")[0] for entry in sim.requests() if entry["route"].startswith("github.")}
    for request_key in done:  # archived in the first run: fresh, not asked again
        _, endpoint, name = request_key.split(":", 2)
        if endpoint == "participation":
            assert f"/api/v3/repos/{name}/stats/participation" not in {p.lower() for p in asked}
    assert len(after.filter(pl.col("error_kind").is_null())) > len(done)
