"""Rate limits and their plumbing against the in-memory fake: token rotation, secondary back-offs,
concurrency regrowth, 410 Gone, archive writes off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import orjson
import pytest

import pipelines.crawler.crawl as crawl_mod
import warehouse.archive as archive_mod
from pipelines.sources.http.hosts import netloc
from pipelines.sources.http.quota import AdaptiveGate, TokenPool
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from tests.crawl.crawlfake import GH, Fake, make_settings, packages_frame
from tests.crawl.test_crawl_plumbing import FAST, crawl, latest


@pytest.fixture
def fake() -> Fake:
    fake = Fake()
    fake.add_repo("Owner/Alpha")
    fake.pypi["alpha"] = {"info": {"name": "alpha", "version": "1.0"}, "releases": {}}
    return fake


def many_repos(fake: Fake, n: int) -> list[dict]:
    for i in range(n):
        fake.add_repo(f"owner/r{i}")
    return [{"repo": f"github:owner/r{i}"} for i in range(n)]


# --- token rotation ----------------------------------------------------------------------------


def test_requests_spread_over_tokens_by_remaining_quota(tmp_path, fake):
    """Unequal tokens: the fullest is used first, none is driven to a 403, they end up level."""
    quotas = {"tok-a": 20, "tok-b": 120, "tok-c": 60}
    fake.quota_by_token.update(quotas)
    settings = make_settings(tmp_path, tokens=tuple(quotas))
    packages = packages_frame(many_repos(fake, 60))
    report = crawl(settings, packages, fake)
    assert report.errors == []
    used = fake.used_by_token
    assert sum(used.values()) > 100  # enough demand to bring the fullest token down to the others
    assert used["tok-b"] > used["tok-c"] > used["tok-a"]
    # the chosen token always had (about) the most left: never well below the fullest other one
    for token, snapshot in fake.token_log:
        if len(snapshot) == 3:
            assert snapshot[token] >= max(snapshot.values()) - 3, (token, snapshot)
    assert fake.quota_403s == []  # no token was driven into its limit
    left = fake.quota_by_token
    assert max(left.values()) - min(left.values()) <= 3 and min(left.values()) > 0


def test_an_exhausted_token_is_left_alone_and_the_others_carry_on(tmp_path, fake):
    """tok-a's quota is spent elsewhere mid-crawl: one 403 teaches the pool, the crawl goes on."""
    fake.quota_by_token.update({"tok-a": 500, "tok-b": 500})
    fake.drain_after["tok-a"] = 5
    settings = make_settings(tmp_path, tokens=("tok-a", "tok-b"))
    packages = packages_frame(many_repos(fake, 40))
    report = crawl(settings, packages, fake)
    assert report.errors == [] and not report.stopped_by_budget
    assert len(latest(settings)) == 40 * 3  # every key archived, all good
    assert all(row["error_kind"] is None for row in latest(settings).values())
    refused = [token for token, _, _ in fake.quota_403s]
    assert refused and set(refused) == {"tok-a"}
    assert len(refused) <= 4  # at most the requests already in flight on tok-a
    # after its refusals tok-a was never asked again; tok-b carried the crawl
    last_refusal = fake.quota_403s[-1][2]
    later = [r.headers.get("authorization") for r in fake.requests[last_refusal + 1:]]
    assert "Bearer tok-a" not in later and later.count("Bearer tok-b") > 50


# --- secondary limits --------------------------------------------------------------------------


def _upstream(fake: Fake, tuning: Tuning, concurrency: int = 8):
    """A GitHub REST `Upstream` over the fake with a fake clock: sleeps are recorded, not waited."""
    clock = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    client = httpx.AsyncClient(transport=fake.transport())
    pool = TokenPool((), sleep=sleep, monotonic=lambda: clock[0])
    upstream = Upstream("github", GH, client, allowed={netloc(GH)}, tuning=tuning, concurrency=concurrency,
                        pool=pool, sleep=sleep, clock=lambda: clock[0])
    return upstream, slept


def test_secondary_limit_without_retry_after_backs_off_from_60_s_doubling(fake):
    fake.secondary["/stats/participation"] = 3
    fake.secondary_retry_after = None
    upstream, slept = _upstream(fake, Tuning())  # the real defaults: secondary_base_s = 60

    async def main():
        async with upstream.client:
            return await upstream.get("/repos/Owner/Alpha/stats/participation")

    fetched = asyncio.run(main())
    assert fetched.ok
    assert slept == [60.0, 120.0, 240.0]
    assert upstream.backoffs == [60.0, 120.0, 240.0]
    assert upstream.semaphore.limit == 1  # 8 -> 4 -> 2 -> 1


def test_secondary_limit_with_retry_after_is_honoured_as_given(fake):
    fake.secondary["/stats/participation"] = 2
    fake.secondary_retry_after = "7"
    upstream, slept = _upstream(fake, Tuning())

    async def main():
        async with upstream.client:
            return await upstream.get("/repos/Owner/Alpha/stats/participation")

    assert asyncio.run(main()).ok
    assert slept == [7.0, 7.0]


def test_secondary_limit_that_persists_is_classified_rate_limited(fake):
    fake.secondary["/stats/participation"] = 99
    fake.secondary_retry_after = None
    upstream, slept = _upstream(fake, Tuning(secondary_max_hits=3))

    async def main():
        async with upstream.client:
            return await upstream.get("/repos/Owner/Alpha/stats/participation")

    fetched = asyncio.run(main())
    assert fetched.error_kind == "rate_limited" and fetched.status == 403
    assert slept == [60.0, 120.0, 240.0]


def test_secondary_back_off_is_announced_on_the_notice_logger(fake, caplog):
    fake.secondary["/stats/participation"] = 1
    fake.secondary_retry_after = None
    upstream, _ = _upstream(fake, Tuning())
    caplog.set_level("WARNING", logger="pulse.notice")

    async def main():
        async with upstream.client:
            return await upstream.get("/repos/Owner/Alpha/stats/participation")

    asyncio.run(main())
    notices = [r.getMessage() for r in caplog.records if r.name == "pulse.notice"]
    assert any("secondary rate limit" in m and "backing off 60 s" in m for m in notices), notices


# --- concurrency: halved on a secondary limit, grown back after successes ----------------------------


def test_adaptive_gate_halves_then_grows_back_gradually_to_its_cap():
    gate = AdaptiveGate(8, regrow_after=3)
    assert gate.shrink() == 4 and gate.shrink() == 2
    grown = [gate.success() for _ in range(9)]
    assert grown == [2, 2, 3, 3, 3, 4, 4, 4, 5]  # +1 after every 3 answers without a limit
    for _ in range(100):
        gate.success()
    assert gate.limit == 8  # never past the configured cap
    assert gate.shrink() == 4 and gate.success() == 4  # a new limit starts the count again


def test_adaptive_gate_lets_more_requests_in_as_it_grows():
    async def main() -> list[int]:
        gate = AdaptiveGate(4, regrow_after=1)
        gate.shrink()
        gate.shrink()  # limit 1
        in_flight, peaks = [0], []

        async def one() -> None:
            async with gate:
                in_flight[0] += 1
                peaks.append(in_flight[0])
                await asyncio.sleep(0.001)
                in_flight[0] -= 1
            gate.success()

        await asyncio.gather(*(one() for _ in range(40)))
        return peaks

    peaks = asyncio.run(main())
    assert peaks[0] == 1 and max(peaks) == 4  # back to the cap, not beyond


def test_upstream_concurrency_recovers_after_a_secondary_limit(fake):
    fake.secondary["/stats/participation"] = 1
    upstream, _ = _upstream(fake, Tuning(concurrency_regrow_after=5), concurrency=8)

    async def main() -> None:
        async with upstream.client:
            await upstream.get("/repos/Owner/Alpha/stats/participation")
            assert upstream.semaphore.limit == 4
            for _ in range(20):
                await upstream.get("/repos/Owner/Alpha")

    asyncio.run(main())
    assert upstream.semaphore.limit == 8


# --- 410 Gone ------------------------------------------------------------------------------------


def test_410_gone_is_classified_recorded_and_keeps_the_last_good_data(tmp_path, fake):
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": "github:Owner/Alpha", "pypi": "alpha"}])
    crawl(settings, packages, fake)
    before = latest(settings)
    fake.gone.update({"owner/alpha", "alpha"})
    report = crawl(settings, packages, fake, run_id="r2", force=True)
    after = latest(settings)
    for k in ("github:repo:owner/alpha", "pypi:json:alpha"):
        row = after[k]
        assert (row["status"], row["error_kind"]) == (410, "gone"), k
        assert row["body"] == before[k]["body"] and row["good_fetched_at"] == before[k]["good_fetched_at"]
    gone = {(e[0], e[2], e[3]) for e in report.errors}
    assert {("github:owner/alpha", "gone", 410), ("pypi:alpha", "gone", 410)} <= gone
    # nothing else is asked about a gone repository; what was learnt before stays current
    for endpoint in ("participation", "contributors", "commits"):
        k = f"github:{endpoint}:owner/alpha"
        assert after[k]["run_id"] == "r1" and after[k]["body"] == before[k]["body"]


# --- the archive is written off the event loop ----------------------------------------------------


def test_archive_batches_are_written_by_a_worker_thread_while_the_crawl_goes_on(tmp_path, fake, monkeypatch):
    real_write = crawl_mod.write_batch
    writes: list[tuple[str, float, float]] = []
    synced: list[str] = []
    real_fsync_dir = archive_mod._fsync_dir

    def slow_write(raw_dir, source, rows, run_id):
        started = time.monotonic()
        time.sleep(0.15)  # a slow disk: the event loop must not wait for this
        path = real_write(raw_dir, source, rows, run_id)
        writes.append((threading.current_thread().name, started, time.monotonic()))
        return path

    def spy_fsync_dir(folder):
        synced.append(str(folder))
        real_fsync_dir(folder)

    monkeypatch.setattr(crawl_mod, "write_batch", slow_write)
    monkeypatch.setattr(archive_mod, "_fsync_dir", spy_fsync_dir)
    fake.delay_s = 0.01
    settings = make_settings(tmp_path)
    packages = packages_frame(many_repos(fake, 60))
    tuning = Tuning(**{**FAST.__dict__, "flush_interval_s": 0.02, "concurrency": {"github": 4}})
    crawl(settings, packages, fake, tuning=tuning)
    assert len(latest(settings)) == 60 * 4
    assert writes and all(name.startswith("pulse-archive") for name, _, _ in writes)
    during = [t for t in fake.times if any(start < t < end for _, start, end in writes)]
    assert len(during) >= 10  # requests kept going out while batches were being written
    assert synced and all(folder.endswith("/raw/github") for folder in synced)
    assert not list((tmp_path / "raw").glob("*/.*.tmp"))


def test_archive_buffer_writes_what_is_left_when_the_loop_ends(tmp_path):
    buffer = crawl_mod._ArchiveBuffer(tmp_path, "r1", batch_size=10)

    async def main() -> None:
        for i in range(3):
            buffer.add(crawl_mod.RawResponse(f"pypi:json:p{i}", "pypi", "pypi_json", f"pypi:p{i}", "/x", 200,
                                             body=orjson.dumps({"info": {}}).decode()))

    asyncio.run(main())  # never flushed inside the loop
    buffer.close()
    assert buffer.written == 3 and len(list((tmp_path / "pypi").glob("*.parquet"))) == 1
