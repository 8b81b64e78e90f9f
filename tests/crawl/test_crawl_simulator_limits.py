"""GitHub's limits against the simulator (real HTTP): concurrency caps, quota exhaustion and reset,
rotation over tokens with unequal quota, Bitbucket pages."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from pipelines.crawler.crawl import run_crawl
from pipelines.sources.bitbucket import Bitbucket
from pipelines.sources.http.hosts import netloc
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from simulator.core import fingerprint
from tests.crawl.simworld import InFlight, short_quota_windows, world_packages
from tests.crawl.simworld import sim_settings as settings_for
from tests.crawl.test_crawl_simulator import FAST, ROOMY, check_github_rest, key, latest

# --- requests in flight ----------------------------------------------------------------------------


@pytest.mark.slow  # three 200-package crawls at 30 ms a request
@pytest.mark.parametrize(("tokens", "overrides", "rest_cap", "graphql_cap"), [
    ((), {}, 64, 0),  # the defaults, REST only
    (("tok-a", "tok-b"), {"concurrency": {"github": 500}, "graphql_concurrency": 8}, 92, 8),  # asks too much
    (("tok-a",), {"concurrency": {"github": 6}, "graphql_concurrency": 2, "graphql_batch": 5}, 6, 2),
])
def test_github_requests_in_flight_never_exceed_the_caps(make_simulator, tmp_path, tokens, overrides, rest_cap,
                                                         graphql_cap):
    server = make_simulator(packages=200, faults=ROOMY, latency_ms=30)
    counter = InFlight(server)
    settings = settings_for(server, tmp_path, tokens=tokens)
    tuning = Tuning(**{**FAST.__dict__, "jobs_in_flight": 1000, **overrides})
    report = run_crawl(settings, world_packages(server.world), run_id="r1", tuning=tuning)
    assert not report.stopped_by_budget
    assert counter.peak <= 100  # GitHub's limit, REST and GraphQL together
    assert counter.peak_by_route["rest"] <= rest_cap
    assert counter.peak_by_route.get("graphql", 0) <= graphql_cap
    assert counter.peak_by_route["rest"] >= min(rest_cap, 20) // 2  # the crawl did push against the cap
    assert report.responses_by_status.get(403, 0) == sum(1 for e in report.errors if e[3] == 403)  # no limits hit


# --- quota spent, then reset -------------------------------------------------------------------------


@pytest.mark.slow  # waits for quota resets
def test_quota_exhaustion_then_reset_through_upstream(make_simulator, tmp_path, monkeypatch, caplog):
    """A small anonymous quota that resets every 3 s: the crawl waits (visibly), resumes, completes."""
    short_quota_windows(monkeypatch, 3)
    server = make_simulator(packages=40, faults={**ROOMY, "anon_quota": 40})
    settings = settings_for(server, tmp_path)
    packages = world_packages(server.world)
    caplog.set_level(logging.WARNING, logger="pulse.notice")
    report = run_crawl(settings, packages, run_id="r1", tuning=FAST)
    spent = report.sources["github"].quota_spent
    assert spent > 80  # more than two windows' worth: at least two waits for a reset
    assert not report.stopped_by_budget
    assert report.sources["github"].quota_wait_s >= 2
    # each wait was for the simulator's 3 s window, not GitHub's hour: bounded by the windows crossed
    assert report.sources["github"].quota_wait_s <= 3.5 * (spent // 40 + 1)
    waits = [r.getMessage() for r in caplog.records if r.name == "pulse.notice" and "waiting" in r.getMessage()]
    assert waits and "REST quota spent on anonymous access" in waits[0] and "UTC for the reset" in waits[0]
    rows = latest(settings)
    assert check_github_rest(server.world, rows) > 20  # everything there, as without a limit
    assert not any(r["error_kind"] == "rate_limited" for r in rows.values())
    assert server.stats()["by_status"].get("403", 0) <= 3  # throttled before the quota ran out


# --- tokens with unequal quota -------------------------------------------------------------------


def _spend(server, token: str, requests: int) -> None:
    """Spend `requests` of a token's REST quota before the crawl (another client using it)."""
    p = server.world.first("healthy")
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(requests):
            assert client.get(f"{server.url}/api/v3/repos/{p.full_name}").status_code == 200


def test_tokens_are_used_in_proportion_to_what_they_have_left(make_simulator, tmp_path):
    server = make_simulator(packages=160, faults={**ROOMY, "quota": 150})
    _spend(server, "tok-one", 130)  # 20 left
    _spend(server, "tok-two", 70)  # 80 left; tok-three: all 150
    server.reset_stats()
    settings = settings_for(server, tmp_path, tokens=("tok-one", "tok-two", "tok-three"))
    report = run_crawl(settings, world_packages(server.world), run_id="r1", tuning=FAST)
    assert not report.stopped_by_budget
    assert not any(e[2] == "rate_limited" for e in report.errors)
    stats = server.stats()
    core = stats["quota_spent_by_resource"]["core"] if "quota_spent_by_resource" in stats else stats["quota_spent"]
    spent = {t: core.get(fingerprint(t), 0) for t in ("tok-one", "tok-two", "tok-three")}
    assert sum(spent.values()) > 130  # the fullest token alone could not have carried it level
    assert spent["tok-three"] > spent["tok-two"] > spent["tok-one"]
    left = {t: stats["rate_limits"][f"tok:{fingerprint(t)} core"]["remaining"] for t in spent}
    assert min(left.values()) > 0 and max(left.values()) - min(left.values()) <= 4  # levelled, none spent
    world_403 = sum(1 for e in report.errors if e[3] == 403)  # repositories blocked in the world
    assert stats["by_status"].get("403", 0) == world_403  # no token was driven into a rate-limit 403


def test_a_token_spent_before_the_crawl_is_passed_over_from_the_start(make_simulator, tmp_path):
    server = make_simulator(packages=60, faults={**ROOMY, "quota": 200})
    _spend(server, "tok-spent", 200)
    server.reset_stats()
    settings = settings_for(server, tmp_path, tokens=("tok-spent", "tok-fresh"))
    report = run_crawl(settings, world_packages(server.world), run_id="r1", tuning=FAST)
    assert not report.errors or {e[2] for e in report.errors} <= {"gone", "blocked", "not_found"}
    stats = server.stats()
    assert stats["by_status"].get("403", 0) <= sum(1 for e in report.errors if e[3] == 403)
    rest = [e for e in server.requests() if e["route"] not in ("github.graphql", "github.rate_limit")
            and e["route"].startswith("github.")]
    spent = fingerprint("tok-spent")
    assert not [e for e in rest if e["client"] == spent]  # its REST quota is known spent from the start
    assert sum(1 for e in rest if e["client"] == fingerprint("tok-fresh")) > 50
    # GraphQL points are a budget of their own: the spent REST quota does not keep it from GraphQL
    assert any(e["client"] == spent for e in server.requests() if e["route"] == "github.graphql")


# --- Bitbucket pages ------------------------------------------------------------------------------


def test_bitbucket_commits_are_paged_back_past_the_window(make_simulator):
    server = make_simulator(packages=250, faults=ROOMY)
    world = server.world
    bitbucket = [world.package(i) for i in world.ids() if world.package(i).host == "bitbucket"]
    assert bitbucket
    # a window ending at each repository's newest commit, so idle ones have a year of history to page
    since = {p.id: world.commits(p.id)[0].date - timedelta(weeks=52) for p in bitbucket}

    async def fetch(page_len: int, max_pages: int):
        url = server.env()["BITBUCKET_API_URL"]
        async with httpx.AsyncClient() as client:
            upstream = Upstream("bitbucket", url, client, allowed={netloc(url)}, tuning=FAST, concurrency=4)
            bb = Bitbucket(upstream, max_pages=max_pages, page_len=page_len)
            return [await bb.commits(p.owner, p.name, since[p.id]) for p in bitbucket]

    deep = asyncio.run(fetch(page_len=5, max_pages=50))
    for p, fetched in zip(bitbucket, deep, strict=True):
        assert fetched.ok, fetched.error
        history = world.commits(p.id)
        values = fetched.data["values"]
        in_window = [c.sha for c in history if c.date >= since[p.id]]
        assert [c["hash"] for c in values[: len(in_window)]] == in_window  # every commit of the window
        assert values[0]["hash"] == history[0].sha  # the newest, idle repositories too
        assert len(values) <= max(len(in_window), 1) + 5  # stopped at the page reaching past it
        pages = int(fetched.headers["x-pulse-pages"])
        assert pages == max(1, -(-len(values) // 5)) and orjson.loads(fetched.text)["values"] == values
        if pages > 1:
            assert "next" not in fetched.data  # merged: one page object holding every page's commits
    paged = [f for f in deep if int(f.headers["x-pulse-pages"]) > 1]
    assert paged  # the small pages made it page
    bounded = asyncio.run(fetch(page_len=5, max_pages=2))
    assert all(len(f.data["values"]) <= 10 and f.ok for f in bounded)  # at most max_pages pages


def test_bitbucket_crawl_archives_the_window(make_simulator, tmp_path):
    server = make_simulator(packages=250, faults=ROOMY)
    settings = settings_for(server, tmp_path)
    run_crawl(settings, world_packages(server.world), run_id="r1", tuning=FAST)
    rows = latest(settings)
    window = datetime.now(UTC) - timedelta(weeks=52)
    checked = 0
    for p in (server.world.package(i) for i in server.world.ids()):
        if p.host != "bitbucket":
            continue
        row = rows[key(p, "bitbucket_commits")]
        assert row["error_kind"] is None
        values = orjson.loads(row["body"])["values"]
        history = server.world.commits(p.id)
        assert values[0]["hash"] == history[0].sha
        assert [c["hash"] for c in values][: sum(1 for c in history if c.date >= window)] == [
            c.sha for c in history if c.date >= window]
        assert row["url"].endswith("/commits?pagelen=100")
        checked += 1
    assert checked
