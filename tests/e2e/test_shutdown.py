"""Issue 12, "Clean shutdown", on the real `pulse` CLI in subprocesses.

* `pulse serve`, `pulse simulate` and `pulse ui` stop within 5 s of a SIGTERM (what container platforms
  send) or a SIGINT (Ctrl-C), exit 0 (a requested stop is not a failure) and close their port.
* `pulse refresh` stopped by SIGTERM mid-crawl flushes the raw archive, publishes nothing, exits 143 with
  one line saying so, releases its lock, and the next refresh continues from the archive without
  fetching again anything that was archived.

The signal goes to the CLI's own pid only, as a container runtime sends it to the container's process.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import polars as pl
import pytest

from simulator.server import start_in_thread
from tests.e2e.conftest import PULSE, pulse_env, run_pulse
from tests.e2e.serving import start_serve
from warehouse.archive import scan_archive

pytestmark = pytest.mark.slow  # real servers and refreshes in subprocesses

STOP_WITHIN_S = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(args: list[str], env: dict[str, str], port: int, timeout: float) -> subprocess.Popen:
    # own session: whatever it starts can be cleaned up as a group if the test fails
    process = subprocess.Popen([PULSE, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    return _start_waits(process, args[0], port, timeout)


def _start_waits(process: subprocess.Popen, command: str, port: int, timeout: float) -> subprocess.Popen:
    deadline = time.monotonic() + timeout
    while not _answers(port):
        if process.poll() is not None:
            pytest.fail(f"`pulse {command}` exited {process.returncode} before answering: "
                        f"{process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"`pulse {command}` did not answer on port {port} within {timeout:.0f} s")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen, signum: int) -> tuple[float, int, str]:
    """Send `signum` to the process; (seconds until it exited, its exit code, stderr)."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=STOP_WITHIN_S + 10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"still running {STOP_WITHIN_S + 10:.0f} s after {signal.Signals(signum).name}")
    return time.monotonic() - sent, process.returncode, err


def _assert_stops(process: subprocess.Popen, signum: int, port: int) -> None:
    seconds, code, err = _stop(process, signum)
    print(f"stopped by {signal.Signals(signum).name} in {seconds:.2f} s, exit {code}")  # shown with -s
    try:
        assert seconds < STOP_WITHIN_S, f"took {seconds:.1f} s to stop"
        assert code == 0, (code, err[-2000:])
        assert not _answers(port), "the port still answers"
    finally:
        # nothing the command started may outlive it (dagster dev's webserver, daemon, code servers)
        left = _session(process.pid)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"processes outlived the command: {left}"


def _session(sid: int) -> list[int]:
    """The processes of session `sid` (the test starts each command in its own session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]


@pytest.mark.parametrize("signum", SIGNALS)
def test_simulate_stops_on_signal(signum, tmp_path):
    port = _free_port()
    process = _start(["simulate", "--port", str(port), "--packages", "50"], dict(os.environ), port, timeout=60)
    _assert_stops(process, signum, port)


@pytest.mark.parametrize("signum", SIGNALS)
def test_serve_stops_on_signal(signum, refreshed):
    assert refreshed.result.returncode == 0, refreshed.result.stderr[-2000:]
    process, port = start_serve(refreshed.env, start_new_session=True, text=True)  # a port of its own choosing
    _start_waits(process, "serve", port, timeout=60)
    # with a keep-alive connection open, as a load balancer holds one
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /api/v4/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        _assert_stops(process, signum, port)


@pytest.mark.parametrize("signum", SIGNALS)
def test_ui_stops_on_signal(signum, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PULSE_HOME"] = str(tmp_path / "home")
    process = _start(["ui", "--port", str(port)], env, port, timeout=120)
    _assert_stops(process, signum, port)


# ------------------------------------------------------------------------------------------------
# refresh

PACKAGES = 200
# as in test_resume: the crawl lasts a few seconds, so the signal lands while it runs
SIM = {"packages": PACKAGES, "seed": 29, "latency_ms": 20, "faults": {"slow": "0.05:4000", "hosts": "github"}}


def _batches(home: Path) -> set[Path]:
    return set((home / "raw").glob("*/*.parquet"))


def _good(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("status").is_between(200, 299) & pl.col("error_kind").is_null())


def test_refresh_stopped_by_sigterm_flushes_publishes_nothing_and_the_next_run_continues(tmp_path):
    sim = start_in_thread(**SIM)
    home = tmp_path / "home"
    env = pulse_env(sim, home)
    child = subprocess.Popen([PULSE, "refresh"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if {path.parent.name for path in _batches(home)} >= {"github", "pypi"}:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the refresh ended before the signal: nothing was interrupted"
        seconds, code, err = _stop(child, signal.SIGTERM)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
    try:
        assert code == 128 + signal.SIGTERM, err[-3000:]
        assert seconds < STOP_WITHIN_S, f"took {seconds:.1f} s to stop"
        last = [line for line in err.strip().splitlines() if line.strip()][-1]
        assert last.startswith("pulse: refresh stopped by SIGTERM"), err[-3000:]
        # the archive holds every answer the crawl counted: its buffer was flushed
        archived = int(re.search(r"(\d+) responses archived", last).group(1))
        stopped_rows = scan_archive(home / "raw").collect()
        assert stopped_rows.height == archived > 0
        # nothing downstream of the crawl ran: no snapshot, no export
        assert not (home / "published.duckdb").exists()
        assert not (home / "export").exists()

        # the stopped run is recorded as failed in Dagster's instance, not left STARTED
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            assert [run.status for run in instance.get_runs()] == [dg.DagsterRunStatus.FAILURE]

        # the next refresh takes the lock at once, and asks nothing that was archived
        sim.reset_stats()
        resumed = run_pulse("refresh", env=env, timeout=180)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "refresh completed" in resumed.stderr
        after = scan_archive(home / "raw").collect()
        new_rows = after.join(stopped_rows.select("request_key", "fetched_at", "run_id"),
                              on=["request_key", "fetched_at", "run_id"], how="anti")
        assert new_rows.height
        refetched = set(new_rows["request_key"]) & set(_good(stopped_rows)["request_key"])
        assert not refetched, sorted(refetched)[:10]
        good = _good(after)
        assert good.height == good["request_key"].n_unique()
        asked = {entry["path"].split("?")[0] for entry in sim.requests()}
        prefix = urlparse(env["PYPI_URL"]).path.rstrip("/")
        direct = _good(stopped_rows).filter((pl.col("source") == "pypi") & (pl.col("attempts") > 0))
        assert direct.height
        asked_again = [url for url in direct["url"] if prefix + url.split("?")[0] in asked]
        assert not asked_again, asked_again[:5]
        assert (home / "published.duckdb").exists()
    finally:
        sim.stop()
