"""GitHub's secondary limit, measured where GitHub would measure it: at the server.

GitHub allows 900 REST points a minute per account (and 2,000 GraphQL points), counting every
request it receives (docs: "Rate limits for the REST API", "About secondary rate limits"). The crawl
keeps that pace for every request, retries, 202 polls, redirects, pages, `/rate_limit` and `/user`
included, shared by every process on the machine, and per account rather than per token. A real
minute is too long for the suite, so the window and the limit are settings (`PULSE_GITHUB_PACE_*`)
and these tests run a scaled one, against a simulator enforcing the same scaled limit (a 403
"secondary rate limit" past it), with faults that make the crawl retry and poll.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.crawler.crawl import run_crawl
from pipelines.sources.http.tuning import Tuning
from simulator.core import busiest_window
from simulator.github import login_for
from tests.crawl.simworld import sim_settings, world_packages

LIMIT = 24  # REST points per WINDOW per account: GitHub's 900 a minute, scaled
WINDOW = 1.5  # seconds
ROOMY = {"anon_quota": 1_000_000, "quota": 1_000_000, "burst": LIMIT, "burst_window": WINDOW}
FAST = Tuning(retry_base_s=0.005, retry_max_s=0.02, computing_base_s=0.005, computing_max_s=0.02,
              secondary_base_s=0.05, flush_interval_s=0.1, timeout_s=5)
ROOT = Path(__file__).resolve().parents[2]


def paced(settings):
    return settings.model_copy(update={"github_pace_per_minute": LIMIT, "github_pace_window_s": WINDOW})


def github_rest(log) -> list[dict]:
    return [e for e in log if e["route"].startswith("github.") and e["resource"] == "core"]


def busiest(entries) -> int:
    return busiest_window([e["at"] for e in entries], WINDOW)


def secondary_403s(log) -> int:
    """The simulator's refusals for GitHub's secondary limit (logged with fault `secondary`)."""
    return sum(1 for e in log if e["fault"] == "secondary")


@pytest.fixture(scope="module")
def accounts_crawl(tmp_path_factory):
    """One crawl with three tokens, two of one account, with 5xx faults and 202s to retry and poll."""
    from simulator.server import start_in_thread

    tokens = ("alice+1", "alice+2", "bob+1")
    with start_in_thread(packages=40, seed=3, faults={**ROOMY, "5xx": 0.08, "hosts": "github"}) as server:
        home = tmp_path_factory.mktemp("accounts")
        settings = paced(sim_settings(server, home, tokens=tokens))
        report = run_crawl(settings, world_packages(server.world), run_id="r1", tuning=FAST)
        yield server.requests(), report, home


def test_every_github_request_of_an_account_stays_within_its_pace(accounts_crawl):
    log, report, _ = accounts_crawl
    rest = github_rest(log)
    routes = {e["route"] for e in rest}
    # what used to slip past is in the count: /user, /rate_limit, retries of 5xx, 202 polls
    assert {"github.user", "github.rate_limit", "github.participation"} <= routes
    assert any(e["status"] in (500, 502, 503) for e in rest) and any(e["status"] == 202 for e in rest)
    alice, bob = login_for("alice+1"), login_for("bob+1")
    by_account = {account: [e for e in rest if e["account"] == account] for account in (alice, bob)}
    assert all(by_account.values())
    for entries in by_account.values():
        assert busiest(entries) <= LIMIT
    assert secondary_403s(log) == 0  # the simulator, enforcing the same limit, never had to refuse
    # two accounts get two paces: together they went faster than one account may
    assert busiest(rest) > LIMIT
    assert report.requests_by_source["github"] >= len(rest)
    # the pace bound this crawl, and its waits are reported (the raw assets' `pace_wait_s` metric)
    assert report.sources["github"].pace_wait_s > 0


def test_tokens_of_one_account_share_its_pace_and_quota(accounts_crawl):
    log, _, home = accounts_crawl
    users = [e for e in log if e["route"] == "github.user"]
    assert len(users) == 3 and len({e["client"] for e in users}) == 3  # asked once per token
    assert sum(1 for e in log if e["route"] == "github.rate_limit") == 3  # free: asked first, per token
    alice = login_for("alice+1")
    assert login_for("alice+2") == alice
    # the pace is kept per account, named by login: never a token, nor anything derived from one
    names = {p.name for p in (home / "state" / "pace").rglob("*.ring")}
    assert f"{alice}.ring" in names and f"{login_for('bob+1')}.ring" in names
    assert not any(t in str(p) for p in (home / "state").rglob("*") for t in ("alice", "bob"))


CHILD = textwrap.dedent("""
    import sys
    import polars as pl
    from pipelines.crawler.crawl import run_crawl
    from pipelines.settings import Settings
    from pipelines.sources.http.tuning import Tuning

    settings = Settings.from_env()
    packages = pl.read_parquet(sys.argv[1])
    tuning = Tuning(retry_base_s=0.005, retry_max_s=0.02, computing_base_s=0.005, computing_max_s=0.02,
                    secondary_base_s=0.05, flush_interval_s=0.1, timeout_s=5)
    report = run_crawl(settings, packages, run_id=sys.argv[2], tuning=tuning)
    print(report.requests_by_source.get("github", 0))
""")


@pytest.mark.slow
def test_two_processes_crawling_at_once_share_one_pace(make_simulator, tmp_path):
    server = make_simulator(packages=20, seed=5, faults={**ROOMY, "5xx": 0.05, "hosts": "github"})
    packages = world_packages(server.world)
    halves = [packages[::2], packages[1::2]]  # two shards
    env = {**os.environ, **server.env(), "PULSE_HOME": str(tmp_path), "GITHUB_TOKEN": "",
           "PULSE_GITHUB_PACE_PER_MINUTE": str(LIMIT), "PULSE_GITHUB_PACE_WINDOW_S": str(WINDOW)}
    procs = []
    for i, half in enumerate(halves):
        path = tmp_path / f"shard{i}.parquet"
        half.write_parquet(path)
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, str(path), f"shard{i}"], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in outputs]
    sent = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    rest = github_rest(server.requests())
    assert all(sent) and len(rest) == sum(sent)  # both crawled, and every request is in the log
    assert {e["account"] for e in rest} == {"anonymous"}  # without a token: one pace per client IP
    # each alone could keep its pace and the two together still double it; shared, the union keeps it
    assert busiest(rest) <= LIMIT
    assert secondary_403s(server.requests()) == 0


def test_the_pace_is_shared_through_its_directory_and_counts_unknown_accounts_for_all(tmp_path):
    """The limiter alone, on a fake clock: two `Pace`s over one directory are one pace (as two
    processes are), a stamp of an unidentified token counts against every account, and a request
    counts from its answer's time once answered."""
    import asyncio

    from pipelines.sources.http.pace import UNIDENTIFIED, Pace

    now = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def pace() -> Pace:
        return Pace(tmp_path, 3, 10.0, clock=lambda: now[0], sleep=sleep)

    async def ask(p: Pace, key: str) -> None:  # a request answered at once
        p.done(key, await p.acquire(key))

    async def main() -> None:
        one, other = pace(), pace()
        await ask(one, "bob")  # bob's ring exists: an unknown account's stamps count against it
        await ask(one, UNIDENTIFIED)
        await ask(other, "alice")
        ticket = await one.acquire("alice")
        now[0] += 2.0
        one.done("alice", ticket)  # answered 2 s later: counts from then
        assert slept == []
        await ask(other, "alice")  # alice: 2 of hers + the unidentified one: her first must leave
        assert len(slept) == 1 and abs(slept[0] - 8.251) < 1e-6  # at 1000 + 10 s + 0.25 s margin
        await ask(one, "bob")  # bob: the unidentified one has left by now: room at once
        assert len(slept) == 1
        # a request in flight keeps its slot, however old: its arrival is still to come
        ticket = await one.acquire("bob")
        now[0] += 60.0
        assert other._try("bob", 3) == 0.05  # polls until it is answered ...
        one.done("bob", ticket)
        assert other._try("bob", 3) > 0  # ... then counts from its answer
        one.close()
        other.close()

    asyncio.run(main())
