"""The crawl against the simulator (real HTTP on loopback): data, quota, 304s, faults, limits, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest
from packaging.utils import canonicalize_name

from pipelines.crawler.crawl import run_crawl
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import request_key
from simulator.model import gh_time
from simulator.pypistats import series
from tests.crawl.simworld import sim_settings as settings_for
from tests.crawl.simworld import world_packages
from warehouse.archive import latest_responses, scan_archive

N = 250
ROOMY = {"anon_quota": 1_000_000, "quota": 1_000_000, "burst": 0}
FAST = Tuning(retry_base_s=0.005, retry_max_s=0.02, computing_base_s=0.005, computing_max_s=0.02,
              secondary_base_s=0.01, flush_interval_s=0.1, github_rest_per_minute=None, timeout_s=5)


def latest(settings) -> dict[str, dict]:
    frame = latest_responses(settings.raw_dir).collect()
    return {row["request_key"]: row for row in frame.iter_rows(named=True)}


def key(p, endpoint: str) -> str:
    return request_key(p.host, endpoint, f"{p.url_owner}/{p.url_name}")


def body(rows, k):
    return orjson.loads(rows[k]["body"])


def github_packages(world):
    return [world.package(i) for i in world.ids() if world.package(i).host == "github"]


def check_github_rest(world, rows) -> int:
    checked = 0
    for p in github_packages(world):
        repo = rows[key(p, "repo")]
        if p.status == "deleted":
            assert repo["error_kind"] == "gone", p.slug
            continue
        if p.status.startswith("blocked"):
            assert repo["error_kind"] == "blocked", p.slug
            continue
        assert repo["error_kind"] is None, (p.slug, repo["error"])
        assert body(rows, key(p, "repo"))["full_name"] == p.full_name  # renames followed
        part = body(rows, key(p, "participation"))
        assert part["all"] == ([] if p.status == "empty" else world.participation(p.id)), p.slug
        contributors = rows[key(p, "contributors")]
        if p.contributors_too_large:
            assert contributors["error_kind"] == "blocked"
        else:
            logins = [c["login"] for c in body(rows, key(p, "contributors"))]
            assert logins == [c["login"] for c in world.contributors(p.id) if c["type"] != "Anonymous"]
        if p.status == "empty":
            assert rows[key(p, "commits")]["status"] == 409
        else:
            commits = body(rows, key(p, "commits"))
            assert commits[0]["commit"]["committer"]["date"] == gh_time(world.commits(p.id)[0].date)
        checked += 1
    return checked


def check_pypi(world, rows) -> None:
    for pid in world.ids():
        p = world.package(pid)
        if not p.pypi_name:
            continue
        row = rows[f"pypi:json:{canonicalize_name(p.pypi_name)}"]
        if p.pypi_status == "ok":
            assert row["error_kind"] is None and body(rows, f"pypi:json:{canonicalize_name(p.pypi_name)}")["info"]
        else:
            assert row["error_kind"] == "not_found"
        simple = rows[f"pypi:simple:{canonicalize_name(p.pypi_name)}"]
        if p.pypi_status in ("ok", "quarantined"):
            assert simple["error_kind"] is None
        stats = rows[f"pypistats:recent:{canonicalize_name(p.pypi_name)}"]
        overall = rows[f"pypistats:overall:{canonicalize_name(p.pypi_name)}"]
        if p.pypi_status == "ok":
            days = series(world.seed, world.now.date(), p)
            assert orjson.loads(stats["body"])["data"]["last_month"] == sum(n for _, n in days[-30:])
            assert [r["downloads"] for r in orjson.loads(overall["body"])["data"]] == [n for _, n in days]
        else:
            assert stats["error_kind"] == overall["error_kind"] == "not_found"


def test_rest_crawl_reproduces_the_world(make_simulator, tmp_path):
    server = make_simulator(packages=N, faults=ROOMY)
    settings = settings_for(server, tmp_path)
    packages = world_packages(server.world)
    report = run_crawl(settings, packages, run_id="r1", tuning=FAST)
    rows = latest(settings)
    assert check_github_rest(server.world, rows) > 150
    check_pypi(server.world, rows)
    codeberg = 0
    for p in (server.world.package(i) for i in server.world.ids()):
        if p.host == "gitlab":
            assert body(rows, key(p, "gitlab_project"))["path_with_namespace"] == p.full_name
            commits = body(rows, key(p, "gitlab_commits"))
            newest = server.world.commits(p.id)[0].date
            assert commits[0]["committed_date"].startswith(newest.strftime("%Y-%m-%dT%H:%M:%S"))  # idle too
            assert isinstance(body(rows, key(p, "gitlab_contributors")), list)
        elif p.host == "bitbucket":
            assert rows[key(p, "bitbucket_repo")]["error_kind"] is None
            assert body(rows, key(p, "bitbucket_commits"))["values"]
        elif p.host == "codeberg":
            codeberg += 1
            repo = body(rows, key(p, "codeberg_repo"))
            assert (repo["full_name"], repo["stars_count"]) == (p.full_name, p.stars)
            commits = body(rows, key(p, "codeberg_commits"))
            history = server.world.commits(p.id)
            assert commits[0]["sha"] == history[0].sha  # the newest commit, idle repositories too
            window = datetime.now(UTC) - timedelta(weeks=52)  # the crawl's window (real clock)
            in_window = [c.sha for c in history if c.date >= window]
            assert [c["sha"] for c in commits[: len(in_window)]] == in_window  # pages reach back 52 weeks
            assert len(commits) <= len(in_window) + 50
    assert codeberg >= 1
    n_github = sum(1 for _ in github_packages(server.world))
    assert report.sources["github"].quota_spent / n_github <= 4.5
    assert server.stats()["quota_spent"]["anonymous"] == report.sources["github"].quota_spent
    assert not report.stopped_by_budget
    assert {e[2] for e in report.errors} <= {"gone", "blocked", "not_found"}


def test_token_crawl_uses_graphql_and_refresh_is_nearly_free(make_simulator, tmp_path):
    server = make_simulator(packages=N, faults=ROOMY)
    settings = settings_for(server, tmp_path, tokens=("tok-alpha",))
    packages = world_packages(server.world)
    report = run_crawl(settings, packages, run_id="r1", tuning=FAST)
    rows = latest(settings)
    world = server.world
    n_github = len(github_packages(world))
    for p in github_packages(world):
        assert key(p, "repo") not in rows and key(p, "commits") not in rows
        node_row = rows[key(p, "graphql_repo")]
        if p.status in ("deleted",):
            assert node_row["error_kind"] == "gone"
            continue
        if p.status.startswith("blocked"):
            assert node_row["error_kind"] == "blocked"
            continue
        node = body(rows, key(p, "graphql_repo"))
        assert node["nameWithOwner"] == p.full_name and node["stargazerCount"] == p.stars
        if p.status != "empty":
            newest = node["defaultBranchRef"]["target"]["committedDate"]
            assert newest == gh_time(world.commits(p.id)[0].date)
            assert body(rows, key(p, "participation"))["all"] == world.participation(p.id)
    assert report.sources["github"].quota_spent / n_github <= 2.0
    spent = sum(server.stats()["quota_spent"].values())
    assert spent == report.sources["github"].quota_spent

    assert server.stats()["by_route_status"].get("pypi.json 301", 0) > 0  # display names differ
    server.reset_stats()
    refresh = run_crawl(settings, packages, run_id="r2", force=True, tuning=FAST)
    assert refresh.sources["github"].quota_spent / n_github <= 0.2
    github_statuses = server.stats()["by_route_status"]
    rest_304 = sum(v for k, v in github_statuses.items() if k.startswith("github.") and k.endswith(" 304"))
    rest_all = sum(v for k, v in github_statuses.items() if k.startswith("github.") and "graphql" not in k)
    assert rest_304 / rest_all >= 0.9
    # PyPI's 301s (normalised name -> display name) are remembered: the refresh asks the target at once
    assert github_statuses.get("pypi.json 301", 0) == 0 and github_statuses.get("pypi.json 304", 0) > 50
    assert refresh.not_modified > 0.8 * refresh.archived - n_github  # derived + graphql rows aside


def test_faults_are_retried_and_classified(make_simulator, tmp_path):
    faults = {**ROOMY, "5xx": 0.08, "reset": 0.03, "malformed": 0.03, "truncated": 0.03, "timeout": "0.01:3000",
              "stats202forever": 0.05}
    server = make_simulator(packages=120, faults=faults, seed=3)
    settings = settings_for(server, tmp_path)
    tuning = Tuning(**{**FAST.__dict__, "timeout_s": 0.5, "max_attempts": 6})
    report = run_crawl(settings, world_packages(server.world), run_id="r1", tuning=tuning)
    injected = server.stats()["faults_injected"]
    assert injected.get("malformed", 0) + injected.get("truncated", 0) > 0
    kinds = {e[2] for e in report.errors}
    assert kinds <= {"gone", "blocked", "not_found", "computing", "transient"}
    assert "computing" in kinds  # stats202forever: bounded polls, then recorded
    assert sum(1 for e in report.errors if e[2] == "transient") <= 2
    frame = scan_archive(settings.raw_dir).collect()
    assert frame.filter(pl.col("error_kind").is_null() & (pl.col("attempts") > 1)).height > 0


def test_spent_quota_with_budget_stops_github_and_the_next_run_continues(make_simulator, tmp_path):
    exhausted = make_simulator(packages=80, faults={**ROOMY, "ratelimit": "exhaust"})
    settings = settings_for(exhausted, tmp_path, tokens=("tok-a",))
    packages = world_packages(exhausted.world)
    report = run_crawl(settings, packages, run_id="r1", tuning=FAST, time_budget_s=30)
    assert report.stopped_by_budget and "github" in (report.stop_reason or "")
    rows = latest(settings)
    assert not any(k.startswith("github:") for k in rows)  # nothing half-recorded
    assert any(k.startswith("pypi:json:") for k in rows)  # the other hosts went on
    pypi_failed = sum(1 for k, r in rows.items() if k.startswith("pypi:json:") and r["error_kind"])

    healthy = make_simulator(packages=80, faults=ROOMY)  # same world, quota back
    settings = settings_for(healthy, tmp_path, tokens=("tok-a",))
    report = run_crawl(settings, packages, run_id="r2", tuning=FAST)
    assert not report.stopped_by_budget
    routes = healthy.stats()["by_route"]
    assert routes.get("pypi.json", 0) == pypi_failed  # good ones are fresh: not asked again
    assert any(k.startswith("github:participation") for k in latest(settings))


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from simulator.hosts import REPO_HOSTS
    from simulator.world import World
    from pipelines.crawler.crawl import run_crawl
    from pipelines.sources.http.tuning import Tuning
    from tests.crawl.simworld import world_packages
    from pipelines.settings import Settings
    settings = Settings.from_env()
    packages = world_packages(World(seed=1, packages=int(sys.argv[1]), hosts=REPO_HOSTS))
    run_crawl(settings, packages, run_id="child", tuning=Tuning(flush_interval_s=0.05,
              github_rest_per_minute=None, computing_base_s=0.01, computing_max_s=0.02, jobs_in_flight=8,
              concurrency={"github": 4, "pypi": 4}))
""")


@pytest.mark.slow  # a crawl in a subprocess, killed and resumed
def test_sigkill_mid_crawl_then_resume_refetches_nothing_archived(make_simulator, tmp_path):
    server = make_simulator(packages=N, faults=ROOMY, latency_ms=20)
    env = {**os.environ, **server.env(), "PULSE_HOME": str(tmp_path), "GITHUB_TOKEN": ""}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(N)], env=env,
                             cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = list((tmp_path / "raw").glob("*/*.parquet"))
        if len(files) >= 3:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    settings = settings_for(server, tmp_path)
    before = latest(settings)
    assert before, "the child archived nothing before the kill"
    server.reset_stats()
    report = run_crawl(settings, world_packages(server.world), run_id="resume", tuning=FAST)
    assert report.skipped_fresh >= sum(1 for r in before.values() if r["error_kind"] is None)
    asked = {entry["path"].split("?")[0] for entry in server.requests()}
    for k, row in before.items():
        if row["error_kind"] is None and k.startswith("pypi:json:"):
            assert f"/pypi/{k.split(':')[2]}/json" not in asked
    after = latest(settings)
    frame = scan_archive(settings.raw_dir).collect()
    good = frame.filter(pl.col("error_kind").is_null())
    assert good.height == good.unique("request_key").height  # nothing fetched twice
    # the resumed archive covers what one uninterrupted crawl covers
    fresh_home = tmp_path / "uninterrupted"
    reference = settings_for(server, fresh_home)
    run_crawl(reference, world_packages(server.world), run_id="ref", tuning=FAST)
    assert set(after) == set(latest(reference))


@pytest.mark.parametrize("faults", [{**ROOMY, "burst": 0, "concurrency": 3}])
def test_secondary_limit_with_retry_after_is_honoured(make_simulator, tmp_path, faults, monkeypatch):
    """The simulator answers 403 + Retry-After: 60 past 3 requests in flight; we wait (sleep patched)."""
    import pipelines.sources.http.upstream as http

    slept: list[float] = []
    real_sleep = http.asyncio.sleep

    async def fast_sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(min(seconds, 0.01))

    server = make_simulator(packages=40, faults=faults, latency_ms=20)
    settings = settings_for(server, tmp_path)
    tuning = Tuning(**{**FAST.__dict__, "concurrency": {"github": 8}})
    monkeypatch.setattr(http.Upstream, "_wait_paused", _fast_wait_paused(fast_sleep))
    report = run_crawl(settings, world_packages(server.world), run_id="r1", tuning=tuning)
    assert report.responses_by_status.get(403, 0) > 0
    assert any(s >= 59 for s in slept)  # Retry-After: 60 honoured
    assert not any(e[2] == "rate_limited" for e in report.errors)


def _fast_wait_paused(sleep):
    async def wait(self) -> None:
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await sleep(delay)
            self._paused_until = 0.0

    return wait
