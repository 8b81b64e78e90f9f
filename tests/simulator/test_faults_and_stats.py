"""Faults, latency, determinism and /_sim/stats, over HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from simulator.faults import parse_faults
from simulator.world import World
from tests.simulator.helpers import TOKEN, client


def test_fault_spec_grammar():
    f = parse_faults("5xx=0.05,timeout=0.01,reset=0.01,malformed=0.01,truncated=0.01,"
                     "stats202forever=0.02,slow=0.05:2000,ratelimit=exhaust")
    assert f.rates["5xx"] == 0.05 and f.rates["slow"] == 0.05 and f.slow_ms == 2000
    assert f.ratelimit == "exhaust"
    assert parse_faults({"5xx": 0.1, "burst": 0}).burst == 0
    assert parse_faults("hosts=github+pypi").hosts == ("github", "pypi")
    for bad in ("5xx=2", "nonsense=1", "ratelimit=maybe", "5xx"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def test_5xx_is_deterministic_and_counted(make_simulator):
    statuses = []
    for _ in range(2):
        server = make_simulator(packages=60, faults="5xx=0.4")
        p = server.world.first("healthy")
        with client(server) as c:
            statuses.append([c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).status_code
                             for _ in range(20)])
            # the catalogue is not faulted unless hosts= says so
            assert all(c.get("/api/v4/packages/1/").status_code == 200 for _ in range(10))
        stats = server.stats()
        assert sum(stats["faults_injected"].values()) == sum(s >= 500 for s in statuses[-1])
    assert statuses[0] == statuses[1]
    assert {500, 502, 503} & set(statuses[0]) and 200 in statuses[0]


def test_transient_5xx_are_not_charged(make_simulator):
    server = make_simulator(packages=60, faults={"500": 1.0})
    p = server.world.first("healthy")
    with client(server) as c:
        r = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
        assert r.status_code == 500 and r.json() == {"message": "Server Error"}
        assert r.headers["x-ratelimit-remaining"] == "5000"


def test_reset_truncated_malformed_timeout(make_simulator):
    p_of = lambda s: s.world.first("healthy")  # noqa: E731
    server = make_simulator(packages=60, faults={"reset": 1.0})
    with client(server) as c, pytest.raises(httpx.TransportError):
        c.get(f"/api/v3/repos/{p_of(server).full_name}", headers=TOKEN)
    server = make_simulator(packages=60, faults={"truncated": 1.0})
    with client(server) as c, pytest.raises(httpx.TransportError):
        c.get(f"/api/v3/repos/{p_of(server).full_name}", headers=TOKEN)
    server = make_simulator(packages=60, faults={"malformed": 1.0})
    with client(server) as c:
        r = c.get(f"/api/v3/repos/{p_of(server).full_name}", headers=TOKEN)
        assert r.status_code == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(r.content)
    server = make_simulator(packages=60, faults={"timeout": "1:1500"})
    with client(server, timeout=0.3) as c, pytest.raises(httpx.ReadTimeout):
        c.get(f"/api/v3/repos/{p_of(server).full_name}", headers=TOKEN)
    assert server.stats()["faults_injected"] in ({"timeout": 1}, {})


def test_stats202forever_and_slow(make_simulator):
    server = make_simulator(packages=60, faults="stats202forever=1,slow=1:200")
    p = server.world.first("healthy")
    with client(server) as c:
        t0 = time.perf_counter()
        codes = [c.get(f"/api/v3/repos/{p.full_name}/stats/participation", headers=TOKEN).status_code
                 for _ in range(4)]
        assert codes == [202] * 4
        assert time.perf_counter() - t0 >= 0.8


def test_latency_does_not_block_other_requests(make_simulator):
    server = make_simulator(packages=60, latency_ms=400)

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as ac:
            t0 = time.perf_counter()
            rs = await asyncio.gather(*[ac.get(f"/api/v4/packages/{i}/") for i in range(1, 21)])
            return time.perf_counter() - t0, rs

    elapsed, responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    assert 0.4 <= elapsed < 1.5


def test_same_seed_byte_identical(make_simulator):
    a = make_simulator(packages=80, seed=5)
    b = make_simulator(packages=80, seed=5)
    other = make_simulator(packages=80, seed=6)
    paths = ["/api/v4/packages/?limit=80", "/api/v4/grids/?limit=100"]
    w = a.world
    p = w.first("healthy")
    paths += [f"/api/v3/repos/{p.full_name}", f"/api/v3/repos/{p.full_name}/contributors?per_page=100",
              f"/api/v3/repos/{p.full_name}/commits?per_page=100"]
    q = w.first("on_pypi")
    paths.append(f"/pypi/{q.pypi_name}/json")

    def fetch(server):
        with client(server, follow_redirects=True) as c:
            # URLs embed the base, so compare with the port swapped out
            return [c.get(path, headers=TOKEN).content.replace(server.url.encode(), b"BASE") for path in paths]

    assert fetch(a) == fetch(b)
    assert fetch(a)[0] != fetch(other)[0]
    assert World(5, 80).v4_package(3, "x") == World(5, 80).v4_package(3, "x")


def test_stats_endpoint(make_simulator):
    server = make_simulator(packages=60)
    p = server.world.first("healthy")
    with client(server) as c:
        c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
        c.get(f"/api/v3/repos/{p.full_name}", headers={"Authorization": "token other-secret"})
        c.get("/api/v4/packages/1/")
        c.get("/pypi/does-not-exist/json")
        stats = c.get("/_sim/stats").json()
    assert stats == server.stats()
    assert stats["requests"] == 4
    assert stats["by_route"] == {"catalogue.packages_detail": 1, "github.repo": 2, "pypi.json": 1}
    assert stats["by_status"] == {"200": 3, "404": 1}
    assert len([k for k in stats["by_token"] if k.startswith("tok_")]) == 2
    assert "secret" not in orjson.dumps(stats).decode() and "test-token" not in orjson.dumps(stats).decode()
    assert sorted(stats["quota_spent"].values()) == [1, 1]
    log = server.requests()
    assert [x["route"] for x in log][:2] == ["github.repo", "github.repo"]
    server.reset_stats()
    assert server.stats()["requests"] == 0


def test_server_env_and_context_manager():
    from simulator.server import start_in_thread

    with start_in_thread(packages=30, seed=2) as server:
        env = server.env()
        assert env == {
            "PULSE_CATALOGUE": server.url, "GITHUB_API_URL": f"{server.url}/api/v3",
            "GITHUB_GRAPHQL_URL": f"{server.url}/api/graphql", "PYPI_URL": server.url,
            "GITLAB_API_URL": f"{server.url}/api/v4", "BITBUCKET_API_URL": f"{server.url}/2.0",
            "CODEBERG_API_URL": f"{server.url}/api/v1"}
        assert httpx.get(f"{server.url}/api/v4/").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/api/v4/", timeout=1)


def test_cli_prints_exports_and_stops_on_ctrl_c():
    import os
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "--port", "0", "--packages", "40",
                             "--seed", "3", "--faults", "5xx=0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        while len(lines) < 12:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("# Stats"):
                break
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", "".join(lines), re.M))
        assert set(exports) == {"PULSE_CATALOGUE", "GITHUB_API_URL", "GITHUB_GRAPHQL_URL", "PYPI_URL",
                                "GITLAB_API_URL", "BITBUCKET_API_URL", "CODEBERG_API_URL"}
        assert httpx.get(exports["PULSE_CATALOGUE"] + "/api/v4/packages/?limit=1").json()["count"] == 40
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_rejects_a_bad_fault_spec():
    from click.testing import CliRunner

    from simulator.cli import simulate

    result = CliRunner().invoke(simulate, ["--faults", "explode=1"])
    assert result.exit_code == 2 and "unknown fault" in result.output


def test_repo5xx_is_per_repository(make_simulator):
    server = make_simulator(packages=120, faults={"repo5xx": 0.5})
    with client(server) as c:
        outcomes = {}
        for p in server.world.select("healthy", limit=12):
            codes = {c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).status_code for _ in range(3)}
            assert len(codes) == 1  # the same repository always fails, or never
            outcomes[p.id] = codes.pop()
    assert set(outcomes.values()) == {200, 502}


def test_now_is_overridable():
    from datetime import UTC, datetime

    from simulator.world import World

    a = World(1, 50, now=datetime(2030, 1, 6, tzinfo=UTC))
    b = World(1, 50)
    pid = a.first("healthy", "active").id
    assert a.commits(pid)[0].date.year >= 2029 and b.commits(pid)[0].date.year <= 2026
