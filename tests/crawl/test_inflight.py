"""GitHub's cap on requests in flight ("No more than 100 concurrent requests are allowed", REST and
GraphQL together, per account), kept by every crawl process of the machine together
(`pipelines.sources.http.slots`): the semaphore alone over real lock files, a killed process's
slots coming back, and three processes crawling the simulator at once over real HTTP, counted at the
server per account.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from pipelines.settings import Settings, SettingsError, github_max_in_flight
from pipelines.sources.http.pace import ANONYMOUS, UNIDENTIFIED
from pipelines.sources.http.slots import Slots, reserve_for
from simulator.github import account_of, login_for
from tests.crawl.simworld import world_packages
from tests.crawl.test_crawl_simulator import ROOMY

ROOT = Path(__file__).resolve().parents[2]


def test_the_cap_is_a_checked_setting(monkeypatch):
    # machine-wide: the process environment reaches the crawler resource's settings (whose mapping
    # does not name it), unless the mapping does
    monkeypatch.setenv("PULSE_GITHUB_MAX_IN_FLIGHT", "7")
    assert Settings.from_mapping({"PULSE_HOME": "/tmp/x"}).github_max_in_flight == 7
    assert Settings.from_mapping({"PULSE_GITHUB_MAX_IN_FLIGHT": "9"}).github_max_in_flight == 9
    monkeypatch.setenv("PULSE_GITHUB_MAX_IN_FLIGHT", "1")
    with pytest.raises(SettingsError, match="PULSE_GITHUB_MAX_IN_FLIGHT='1'"):
        Settings.from_mapping({})
    assert github_max_in_flight({}) == 100 and github_max_in_flight({"PULSE_GITHUB_MAX_IN_FLIGHT": "0"}) == 0
    assert github_max_in_flight({"PULSE_GITHUB_MAX_IN_FLIGHT": "8"}) == 8
    for bad in ("1", "-3", "many", "20000"):
        with pytest.raises(SettingsError, match=f"PULSE_GITHUB_MAX_IN_FLIGHT='{bad}'.*2..10000, or 0"):
            github_max_in_flight({"PULSE_GITHUB_MAX_IN_FLIGHT": bad})
    assert [reserve_for(n) for n in (2, 4, 39, 40, 100)] == [1, 1, 1, 2, 5]


def test_two_semaphores_over_one_directory_are_one_cap_per_account(tmp_path):
    """Two `Slots` over one directory (as two processes): one account's slots are shared, another
    account's are its own, unidentified tokens have the reserve; a release in one process wakes a
    waiter in the other (by polling), and a release with a waiter of its own hands the slot over."""

    async def main() -> None:
        one, other = Slots(tmp_path, 4), Slots(tmp_path, 4)  # reserve 1: 3 a account
        assert (one.size("alice"), one.size(UNIDENTIFIED)) == (3, 1)
        held = [await one.acquire("alice"), await one.acquire("alice"), await other.acquire("alice")]
        assert len(set(held[:2])) == 2 and one.held("alice") == 2 and other.held("alice") == 1
        waiting = asyncio.ensure_future(other.acquire("alice"))
        mine = asyncio.ensure_future(one.acquire("alice"))
        await asyncio.sleep(0.02)
        assert not waiting.done() and not mine.done()  # every one of alice's 3 slots is taken
        assert await other.acquire("bob") is not None  # bob is another account
        assert await one.acquire(UNIDENTIFIED) is not None  # the reserve ...
        assert one._try(UNIDENTIFIED) is None and other._try(UNIDENTIFIED) is None  # ... of one slot
        one.release("alice", held[0])  # `one` has a waiter: the slot goes to it, still locked
        assert await asyncio.wait_for(mine, 5) == held[0] and not waiting.done()
        one.release("alice", held[0])  # no waiter here: unlocked, and `other`'s poller takes it
        assert await asyncio.wait_for(waiting, 5) == held[0]
        # a waiter cancelled (a crawl stopping) leaves nothing behind
        cancelled = asyncio.ensure_future(one.acquire("alice"))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        other.release("alice", held[2])
        assert await asyncio.wait_for(one.acquire("alice"), 5) == held[2]
        one.close()
        other.close()
        again = Slots(tmp_path, 4)  # closing released every lock
        assert sorted([again._try("alice"), again._try("alice"), again._try("alice")]) == [0, 1, 2]
        again.close()

    asyncio.run(main())


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipelines.sources.http.slots import Slots

    slots = Slots(Path(sys.argv[1]), int(sys.argv[2]))
    taken = [slots._try("alice") for _ in range(slots.size("alice"))]
    assert None not in taken, taken
    print("held", flush=True)
    time.sleep(120)
""")


def test_a_killed_process_gives_its_slots_back(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "6"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()

        async def main() -> None:
            mine = Slots(tmp_path, 6)
            assert mine._try("alice") is None  # every slot held by the other process
            waiting = asyncio.ensure_future(mine.acquire("alice"))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            holder.kill()  # SIGKILL: no clean-up of its own; the kernel drops its locks
            await asyncio.get_running_loop().run_in_executor(None, holder.wait)
            await asyncio.wait_for(waiting, 10)
            assert mine.held("alice") == 1
            assert all(mine._try("alice") is not None for _ in range(mine.size("alice") - 1))
            mine.close()

        asyncio.run(main())
    finally:
        holder.kill()
        holder.wait()


class InFlightByAccount:
    """The simulator's GitHub requests being answered at once, per account (the token's account,
    `anonymous` without one), REST and GraphQL together: what GitHub's cap counts."""

    def __init__(self, server) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        sim = server.sim
        answer = sim._github

        async def counted(request, route, producer, token, *args, **kwargs):
            account = login_for(token) if token else ANONYMOUS
            self.now[account] += 1
            self.requests[account] += 1
            self.peak[account] = max(self.peak[account], self.now[account])
            try:
                return await answer(request, route, producer, token, *args, **kwargs)
            finally:
                self.now[account] -= 1

        sim._github = counted  # the simulator's own loop runs it: no lock needed


CRAWLER = textwrap.dedent("""
    import sys
    import polars as pl
    from pipelines.crawler.crawl import run_crawl
    from pipelines.settings import Settings
    from pipelines.sources.http.tuning import Tuning

    settings = Settings.from_env()
    packages = pl.read_parquet(sys.argv[1])
    tuning = Tuning(retry_base_s=0.005, retry_max_s=0.02, computing_base_s=0.005, computing_max_s=0.02,
                    secondary_base_s=0.05, flush_interval_s=0.1, timeout_s=10, github_rest_per_minute=None)
    report = run_crawl(settings, packages, run_id=sys.argv[2], tuning=tuning)
    print(report.sources["github"].slot_wait_s)  # the raw assets' `slot_wait_s` metric
    print(report.requests_by_source.get("github", 0))
""")

CAP = 5  # machine-wide, per account: 4 slots for each account and 1 for tokens not yet identified


@pytest.mark.slow  # three crawling processes
def test_processes_crawling_at_once_keep_one_cap_per_account(make_simulator, tmp_path):
    """Three processes crawl the simulator at once (each alone may have 64 GitHub requests in
    flight), two of them with tokens of one account: per account, the server never sees more than
    the machine-wide cap in flight, and the lone account gets a cap of its own."""
    server = make_simulator(packages=60, seed=8, faults=ROOMY, latency_ms=40)
    counter = InFlightByAccount(server)
    packages = world_packages(server.world)
    tokens = ["alice+1", "alice+2", "bob+1"]  # alice's two tokens: one account, one cap
    assert account_of("alice+1") == account_of("alice+2")
    env = {**os.environ, **server.env(), "PULSE_HOME": str(tmp_path), "PULSE_GITHUB_MAX_IN_FLIGHT": str(CAP)}
    procs = []
    for i, token in enumerate(tokens):
        path = tmp_path / f"shard{i}.parquet"
        packages[i::3].write_parquet(path)
        procs.append(subprocess.Popen([sys.executable, "-c", CRAWLER, str(path), f"shard{i}"], cwd=ROOT,
                                      env={**env, "GITHUB_TOKEN": token},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in outputs]
    sent = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    slot_waits = [float(out.strip().splitlines()[-2]) for out, _ in outputs]
    alice, bob = login_for("alice+1"), login_for("bob+1")
    assert all(sent) and sum(counter.requests.values()) == sum(sent)
    assert set(counter.requests) == {alice, bob}
    # each process alone could have had dozens in flight; together they kept the account's cap
    assert counter.peak[alice] <= CAP and counter.peak[bob] <= CAP
    assert counter.peak[alice] >= 2  # ... and pushed against it
    assert sum(slot_waits) > 0  # the requests that waited for a slot say so (crawl metrics)
    names = {p.parent.name for p in (tmp_path / "state" / "inflight").rglob("slot-*.lock")}
    assert names <= {alice, bob, UNIDENTIFIED}  # by login: never a token
    assert not any(t in str(p) for p in (tmp_path / "state").rglob("*") for t in ("alice", "bob"))
