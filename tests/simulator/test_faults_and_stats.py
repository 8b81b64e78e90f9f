"""Faults, latency, determinism and /_sim/stats, over HTTP."""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
import pytest

from simulator.faults import parse_faults
from simulator.hosts import BY_NAME, REPO_HOSTS
from simulator.world import World
from tests.simulator.helpers import TOKEN, client


def test_fault_spec_grammar():
    f = parse_faults("5xx=0.05,timeout=0.01,reset=0.01,malformed=0.01,truncated=0.01,"
                     "stats202forever=0.02,slow=0.05:2000,ratelimit=exhaust")
    assert f.rates["5xx"] == 0.05 and f.rates["slow"] == 0.05 and f.slow_ms == 2000
    assert f.ratelimit == "exhaust"
    assert parse_faults({"5xx": 0.1, "burst": 0}).burst == 0
    assert parse_faults("hosts=github+pypi", BY_NAME).hosts == ("github", "pypi")
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
        codes = [c.get(f"/api/v3/repos/{p.full_name}/stats/participation", headers=TOKEN).status_code
                 for _ in range(4)]
        assert codes == [202] * 4
    # both faults met every request, and the log says so (no wall-clock assertion needed)
    assert [e["fault"] for e in server.requests()] == ["slow+stats202forever"] * 4
    assert server.stats()["faults_injected"] == {"slow": 4, "stats202forever": 4}


def test_slow_answers_do_not_block_a_later_fast_request(make_simulator):
    """A fast request issued after a slow one completes before it (the delay is asyncio.sleep)."""
    server = make_simulator(packages=60, faults={"slow": "1:800", "hosts": "pypi"})
    p = server.world.first("on_pypi")
    done: list[str] = []

    async def get(ac, path, name):
        r = await ac.get(path)
        done.append(name)
        return r

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as ac:
            slow = asyncio.create_task(get(ac, f"/pypi/{p.pypi_name}/json", "slow"))
            while not server.stats()["in_flight"].get("pypi.json"):  # the slow one is being answered
                await asyncio.sleep(0.005)
            fast = await get(ac, "/api/v4/packages/1/", "fast")
            return fast, await slow

    fast, slow = asyncio.run(run())
    assert fast.status_code == 200 and slow.status_code == 200
    assert done == ["fast", "slow"]


def test_latency_does_not_block_other_requests(make_simulator):
    server = make_simulator(packages=60, latency_ms=400)

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=10,
                                     limits=httpx.Limits(max_connections=40)) as ac:
            return await asyncio.gather(*[ac.get(f"/api/v4/packages/{i}/") for i in range(1, 21)])

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    # a blocking delay would answer one request at a time; these were all waiting together
    assert server.stats()["peak_in_flight"] >= 10


def test_5xx_bursts_are_correlated_and_deterministic(make_simulator):
    def run(seed: int) -> tuple[list[int], list[int], dict]:
        server = make_simulator(packages=60, faults={"5xxburst": "6:3", "seed": seed, "hosts": "github+pypi"})
        p = server.world.first("healthy", "on_pypi")
        with client(server) as c:
            gh, py = [], []
            for _ in range(30):
                gh.append(c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).status_code)
                py.append(c.get(f"/pypi/{p.pypi_name}/json").status_code)
                assert c.get("/api/v4/packages/1/").status_code == 200  # the catalogue is not faulted
        return gh, py, server.stats()

    gh, py, stats = run(seed=4)
    for codes in (gh, py):
        failing = "".join("x" if code >= 500 else "." for code in codes)
        assert set(codes) <= {200, 502, 503} and {502, 503} & set(codes)
        # cycles of 6 answers then 3 failures, from a phase drawn from (seed, host)
        inner_bad = re.findall(r"(?<=\.)x+(?=\.)", failing)
        inner_good = re.findall(r"(?<=x)\.+(?=x)", failing)
        assert inner_bad and all(r == "xxx" for r in inner_bad), failing
        assert inner_good and all(r == "......" for r in inner_good), failing
    assert stats["faults_injected"] == {"5xxburst": sum(c >= 500 for c in gh + py)}
    assert sum(stats["quota_spent"].values()) == sum(c == 200 for c in gh)  # bursts are not charged
    again = run(seed=4)
    assert (again[0], again[1]) == (gh, py)  # same seed, same bursts
    others = [run(seed=s)[:2] for s in (5, 6, 7)]
    assert any(o != (gh, py) for o in others)  # the phase follows the seed
    with pytest.raises(ValueError):
        parse_faults("5xxburst=x:3")
    assert parse_faults("5xxburst=100:5").outage_length == 5


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
    assert World(5, 80, hosts=REPO_HOSTS).v4_package(3, "x") == World(5, 80, hosts=REPO_HOSTS).v4_package(3, "x")


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
    assert stats["log"] == {"kept": 4, "dropped": 0, "cap": 100_000}
    log = server.requests()
    assert [x["route"] for x in log][:2] == ["github.repo", "github.repo"]
    server.reset_stats()
    assert server.stats()["requests"] == 0


def test_request_log_records_what_the_client_sent(make_simulator):
    server = make_simulator(packages=60)
    p = server.world.first("healthy")
    sent = {**TOKEN, "If-None-Match": 'W/"abc"', "Accept": "application/vnd.github+json",
            "User-Agent": "package-pulse-test/1"}
    query = f'query {{ repository(owner: "{p.owner}", name: "{p.name}") {{ stargazerCount }} rateLimit {{ cost }} }}'
    with client(server) as c:
        c.get(f"/api/v3/repos/{p.full_name}/commits?per_page=1&page=2", headers=sent)
        c.post("/api/graphql", json={"query": query}, headers={**TOKEN, "User-Agent": "ua-graphql"})
        c.get(f"/api/v3/repos/{p.full_name}", headers={"User-Agent": "anon-agent"})
        c.get(f"/pypi/{p.pypi_name or 'x'}/json", headers={"Accept": "application/json"})
        over_http = c.get("/_sim/requests")
    log = server.requests()
    assert over_http.json() == log and over_http.headers["x-sim-dropped"] == "0"
    rest, gql, anon, pypi = log
    assert rest["method"] == "GET" and rest["path"] == f"/api/v3/repos/{p.full_name}/commits?per_page=1&page=2"
    assert rest["token"].startswith("tok_") and rest["token"] == rest["client"]
    assert rest["if_none_match"] == 'W/"abc"' and rest["accept"] == "application/vnd.github+json"
    assert rest["user_agent"] == "package-pulse-test/1"
    assert (rest["resource"], rest["charged"], rest["cost"]) == ("core", 1, None)
    assert gql["method"] == "POST" and gql["route"] == "github.graphql" and gql["user_agent"] == "ua-graphql"
    assert (gql["resource"], gql["charged"], gql["cost"]) == ("graphql", 1, 1)
    assert anon["token"] is None and anon["client"] == "anonymous" and anon["user_agent"] == "anon-agent"
    assert pypi["resource"] is None and pypi["charged"] == 0 and pypi["accept"] == "application/json"
    assert "test-token" not in orjson.dumps(log).decode()  # fingerprints only, never the token
    stats = server.stats()
    by_resource = stats["quota_spent_by_resource"]
    assert by_resource["core"] == {rest["token"]: 1, "anonymous": 1}
    assert by_resource["graphql"] == {gql["token"]: 1}
    # the existing total key: REST and GraphQL together, per client
    assert stats["quota_spent"] == {rest["token"]: 2, "anonymous": 1}


def test_per_repository_faults_show_in_the_fault_column(make_simulator):
    server = make_simulator(packages=120, faults={"repo5xx": 0.5})
    with client(server) as c:
        for p in server.world.select("healthy", limit=12):
            c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
    log = server.requests()
    failed = [e for e in log if e["status"] == 502]
    assert failed and all(e["fault"] == "repo5xx" for e in failed)
    assert all(e["fault"] is None for e in log if e["status"] == 200)
    assert server.stats()["faults_injected"] == {"repo5xx": len(failed)}  # counted once each


def test_a_capped_log_counts_what_it_dropped(make_simulator):
    server = make_simulator(packages=60, log_cap=5)
    with client(server) as c:
        for i in range(1, 9):
            c.get(f"/api/v4/packages/{i}/")
        r = c.get("/_sim/requests")
    assert [e["path"] for e in r.json()] == [f"/api/v4/packages/{i}/" for i in range(4, 9)]
    assert r.headers["x-sim-dropped"] == "3"
    assert server.stats()["log"] == {"kept": 5, "dropped": 3, "cap": 5}
    assert server.stats()["requests"] == 8  # the counters are not capped


@pytest.mark.slow  # builds a huge world
def test_a_search_on_a_huge_world_does_not_stall_other_requests(make_simulator):
    """While searches run over 100,000 lazily generated packages, simple requests are answered."""
    server = make_simulator(packages=100_000)
    queries = ["django", "admin", "rest", "tools", "forms", "e", "a", "s"]

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=60,
                                     limits=httpx.Limits(max_connections=40)) as ac:
            searches = [asyncio.create_task(ac.get("/api/v4/search/", params={"q": q})) for q in queries]
            answered_during_a_search = 0
            while not all(t.done() for t in searches):
                simple = await ac.get("/api/v4/")
                assert simple.status_code == 200
                # asked after the searches and answered while one of them is still being computed
                if (await ac.get("/_sim/stats")).json()["in_flight"].get("catalogue.search"):
                    answered_during_a_search += 1
            return answered_during_a_search, [t.result() for t in searches]

    during, results = asyncio.run(run())
    assert during >= 1
    for q, r in zip(queries, results, strict=True):
        hits = r.json()
        assert r.status_code == 200 and 0 < len(hits) <= 20
        assert all(q in (h["slug"] + h["title"].lower()) for h in hits)
        weights = [h["weight"] for h in hits if h["item_type"] == "package"]
        assert weights == sorted(weights, reverse=True)


def test_server_env_and_context_manager():
    from simulator.server import start_in_thread

    with start_in_thread(packages=30, seed=2) as server:
        env = server.env()
        assert env == {
            "PULSE_CATALOGUE": server.url, "GITHUB_API_URL": f"{server.url}/api/v3",
            "GITHUB_GRAPHQL_URL": f"{server.url}/api/graphql", "PYPI_URL": server.url,
            "GITLAB_API_URL": f"{server.url}/api/v4", "BITBUCKET_API_URL": f"{server.url}/2.0",
            "CODEBERG_API_URL": f"{server.url}/api/v1", "PYPISTATS_URL": server.url}
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
                                "GITLAB_API_URL", "BITBUCKET_API_URL", "CODEBERG_API_URL", "PYPISTATS_URL"}
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

    a = World(1, 50, now=datetime(2030, 1, 6, tzinfo=UTC), hosts=REPO_HOSTS)
    b = World(1, 50, hosts=REPO_HOSTS)
    pid = a.first("healthy", "active").id
    assert a.commits(pid)[0].date.year >= 2029 and b.commits(pid)[0].date.year <= 2026
