"""One real refresh, shared by the end-to-end tests: the real `pulse` CLI in a subprocess, against
the simulator over real HTTP, into real DuckDB files in a temporary PULSE_HOME."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from simulator.server import SimServer, start_in_thread
from tests.e2e.serving import start_serve

PULSE = str(Path(sys.executable).parent / "pulse")
SIM_TOKENS = "sim-e2e-token-1,sim-e2e-token-2"  # tokens of the simulator, never real ones


@dataclass
class Refreshed:
    sim: SimServer
    home: Path
    env: dict[str, str]
    result: subprocess.CompletedProcess


def pulse_env(sim: SimServer, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "GITHUB_TOKEN")}
    env.update(sim.env())
    env.update({"PULSE_HOME": str(home), "PULSE_PUBLIC_URL": sim.url, "PULSE_TIMEZONE": "America/New_York",
                "GITHUB_TOKEN": SIM_TOKENS})
    env.update(extra)
    return env


def query_file(path: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on a DuckDB file, opened read-only (never the writer's lock)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def without_last_fetched(value):
    """A JSON document (bytes or parsed) without its `last_fetched` fields: the one field two crawls of
    the same world legitimately disagree on."""
    if isinstance(value, bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {k: without_last_fetched(v) for k, v in value.items() if k != "last_fetched"}
    if isinstance(value, list):
        return [without_last_fetched(v) for v in value]
    return value


def run_pulse(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300):
    return subprocess.run([PULSE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="session")
def refreshed(tmp_path_factory) -> Refreshed:
    sim = start_in_thread(packages=240, seed=11)
    home = tmp_path_factory.mktemp("pulse_home")
    env = pulse_env(sim, home)
    # from another working directory: nothing may depend on the current folder
    result = run_pulse("refresh", env=env, cwd=tmp_path_factory.mktemp("elsewhere"))
    yield Refreshed(sim, home, env, result)
    sim.stop()


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """A real `pulse serve` on a port of its choosing, once it answers; yields its base URL, stops it after."""
    process, port = start_serve(env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(f"{base}/api/v4/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise RuntimeError(process.stderr.read().decode()[-2000:]) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def good_home(tmp_path_factory, *, packages: int, seed: int, public_url: str) -> Iterator[tuple[SimServer, Path]]:
    """A home holding one good refresh against a fresh simulator (kept running): what the fault tests
    copy, break and compare with."""
    sim = start_in_thread(packages=packages, seed=seed)
    try:
        home = tmp_path_factory.mktemp("good_home")
        result = run_pulse("refresh", env=pulse_env(sim, home, PULSE_PUBLIC_URL=public_url))
        assert result.returncode == 0, result.stderr[-3000:]
        yield sim, home
    finally:
        sim.stop()
