"""The Dagster UI really serves this code location: asset groups, the job and the schedule."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow  # starts the Dagster webserver

ROOT = Path(__file__).resolve().parents[1]

QUERY = """
{
  assetNodes { assetKey { path } groupName }
  repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } schedules { name } } } }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webserver_shows_assets_by_layer(tmp_path):
    port = _free_port()
    webserver = str(Path(sys.executable).parent / "dagster-webserver")
    process = subprocess.Popen(
        [webserver, "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env={"DAGSTER_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10)
                data = response.json()["data"]
                if data["assetNodes"]:
                    break
            except (httpx.TransportError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert data and data["assetNodes"], process.stderr.read().decode()[-2000:] if process.poll() else "no answer"
        groups = {node["groupName"] for node in data["assetNodes"]}
        assert {"catalogue", "raw", "core", "history", "marts", "exports"} <= groups
        repository = data["repositoriesOrError"]["nodes"][0]
        assert "refresh" in {job["name"] for job in repository["jobs"]}
        assert "daily_refresh" in {schedule["name"] for schedule in repository["schedules"]}
    finally:
        process.terminate()
        process.wait(timeout=20)
