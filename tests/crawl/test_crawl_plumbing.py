"""The crawl against an in-memory fake (httpx.MockTransport): plumbing, failures, ETags, limits."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import orjson
import polars as pl
import pytest

from pipelines.crawler.crawl import run_crawl
from pipelines.crawler.plan import plan_crawl
from pipelines.sources.crawling import KeyState
from pipelines.sources.http.hosts import check_url
from pipelines.sources.http.pages import next_link
from pipelines.sources.http.quota import BudgetExceeded, TokenPool
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import request_key
from tests.crawl.crawlfake import GH, Fake, make_settings, packages_frame
from warehouse.archive import latest_responses, scan_archive

FAST = Tuning(retry_base_s=0.001, retry_max_s=0.002, computing_base_s=0.001, computing_max_s=0.002,
              secondary_base_s=0.001, flush_interval_s=0.05, graphql_batch=2)


def crawl(settings, packages, fake, **kw):
    kw.setdefault("tuning", FAST)
    return run_crawl(settings, packages, run_id=kw.pop("run_id", "r1"), transport=fake.transport(), **kw)


def latest(settings) -> dict[str, dict]:
    frame = latest_responses(settings.raw_dir).collect()
    return {row["request_key"]: row for row in frame.iter_rows(named=True)}


def paths(fake: Fake) -> list[str]:
    return [r.url.raw_path.decode() for r in fake.requests]


@pytest.fixture
def fake() -> Fake:
    fake = Fake()
    fake.add_repo("Owner/Alpha", contributors=[{"login": f"u{i}", "contributions": 300 - i} for i in range(250)])
    fake.add_repo("owner/beta", default_branch="develop")
    fake.pypi["alpha"] = {"info": {"name": "alpha", "version": "1.0"}, "releases": {}}
    fake.stats["alpha"] = 1500
    return fake


def test_rest_crawl_archives_every_endpoint(tmp_path, fake):
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": "github:Owner/Alpha", "pypi": "alpha"},
                               {"repo": "github:owner/beta", "pypi": None},
                               {"repo": "github:owner/beta", "pypi": "alpha"}])  # duplicates crawl once
    seen = []
    report = crawl(settings, packages, fake, progress=lambda *a: seen.append(a))
    rows = latest(settings)
    expected = {request_key("github", e, n) for e in ("repo", "participation", "contributors", "commits")
                for n in ("owner/alpha", "owner/beta")} | {"pypi:json:alpha", "pypi:simple:alpha",
                                                           "pypistats:recent:alpha", "pypistats:overall:alpha"}
    assert set(rows) == expected
    alpha = rows["github:contributors:owner/alpha"]
    assert alpha["subject"] == "github:owner/alpha" and alpha["source"] == "github"
    logins = [c["login"] for c in orjson.loads(alpha["body"])]
    assert logins == [f"u{i}" for i in range(250)]  # three pages merged in GitHub's order
    assert rows["github:repo:owner/alpha"]["url"] == "/repos/Owner/Alpha"
    assert rows["github:commits:owner/beta"]["url"] == "/repos/owner/beta/commits?per_page=1&sha=develop"
    assert rows["pypi:json:alpha"]["subject"] == "pypi:alpha"
    assert orjson.loads(rows["pypi:json:alpha"]["headers"])["x-pypi-last-serial"] == "42"
    assert report.errors == []
    assert report.requests_by_source["pypi"] == 2 and report.requests_by_source["pypistats"] == 2
    assert report.sources["github"].quota_spent == 4 * 2 + 2  # two extra contributor pages
    assert report.responses_by_status == {200: 12 + 2 + 1}  # + the free GET /rate_limit
    assert seen and seen[-1][1] == seen[-1][2]
    assert sum(1 for p in paths(fake) if p.startswith("/repos/owner/beta/contributors")) == 1


def test_rename_is_followed_and_new_name_used(tmp_path, fake):
    fake.renamed["old/alpha"] = "owner/alpha"
    settings = make_settings(tmp_path)
    crawl(settings, packages_frame([{"repo": "github:old/alpha"}]), fake)
    rows = latest(settings)
    repo = rows["github:repo:old/alpha"]
    assert repo["status"] == 200 and repo["error_kind"] is None
    assert orjson.loads(repo["body"])["full_name"] == "Owner/Alpha"
    assert repo["subject"] == "github:old/alpha"
    # after the rename, the other endpoints go straight to the new name
    assert any(p.startswith("/repos/Owner/Alpha/stats/participation") for p in paths(fake))
    assert sum(1 for p in paths(fake) if p.startswith("/repos/old/alpha")) == 1
    assert rows["github:participation:old/alpha"]["error_kind"] is None


def test_redirect_to_another_host_is_not_followed(tmp_path, fake):
    fake.renamed["old/alpha"] = "owner/alpha"
    fake.redirect_offhost.add("old/alpha")
    settings = make_settings(tmp_path)
    report = crawl(settings, packages_frame([{"repo": "github:old/alpha"}]), fake)
    assert all(r.url.host == "api.github.test" for r in fake.requests)
    row = latest(settings)["github:repo:old/alpha"]
    assert row["error_kind"] == "renamed" and row["status"] == 301
    assert report.errors[0][:3] == ("github:old/alpha", "github", "renamed")


def test_participation_202_polls_then_computing(tmp_path, fake):
    fake.repos["owner/alpha"].participation_202 = 2
    fake.repos["owner/beta"].participation_202 = 99
    settings = make_settings(tmp_path)
    crawl(settings, packages_frame([{"repo": "github:Owner/Alpha"}, {"repo": "github:owner/beta"}]), fake)
    rows = latest(settings)
    assert rows["github:participation:owner/alpha"]["error_kind"] is None
    assert rows["github:participation:owner/alpha"]["attempts"] == 3
    beta = rows["github:participation:owner/beta"]
    assert beta["error_kind"] == "computing" and beta["status"] == 202 and beta["body"] is None
    assert sum(1 for p in paths(fake) if "beta/stats" in p) == FAST.computing_attempts


def test_empty_repository_gives_empty_lists(tmp_path, fake):
    fake.add_repo("owner/empty", empty=True)
    settings = make_settings(tmp_path)
    report = crawl(settings, packages_frame([{"repo": "github:owner/empty"}]), fake)
    rows = latest(settings)
    assert rows["github:contributors:owner/empty"]["body"] == "[]"
    assert rows["github:contributors:owner/empty"]["status"] == 204
    assert orjson.loads(rows["github:participation:owner/empty"]["body"]) == {"all": [], "owner": []}
    assert rows["github:commits:owner/empty"]["status"] == 409
    assert rows["github:commits:owner/empty"]["error_kind"] is None
    archived = scan_archive(settings.raw_dir).filter(pl.col("endpoint") == "commits").collect()
    assert archived["body"].to_list() == ["[]"]
    assert all(e[2] != "gone" for e in report.errors)


def test_failures_are_classified_and_do_not_stop_the_run(tmp_path, fake):
    fake.add_repo("owner/dmca", blocked=True)
    fake.faults["/repos/owner/beta?"] = 0
    settings = make_settings(tmp_path)
    packages = packages_frame([
        {"repo": "github:owner/missing", "pypi": "not-on-pypi"},
        {"repo": "github:owner/dmca"},
        {"repo": "github:Owner/Alpha", "pypi": "alpha"},
        {"repo": "github:bad/url", "problem": "unknown host"},
        {"repo": "sourcehut:someone/thing"},  # a host without a client
        {"pypi": "Bad_Name"},
    ])
    report = crawl(settings, packages, fake)
    rows = latest(settings)
    assert rows["github:repo:owner/missing"]["error_kind"] == "gone"
    assert rows["github:repo:owner/missing"]["status"] == 404
    assert "github:participation:owner/missing" not in rows  # no quota spent on a gone repo
    assert rows["github:repo:owner/dmca"]["error_kind"] == "blocked"
    assert rows["pypi:json:not-on-pypi"]["error_kind"] == "not_found"
    assert rows["pypi:json:bad_name"]["error_kind"] == "bad_entry"
    assert rows["github:contributors:owner/alpha"]["error_kind"] is None
    assert not any("bad/url" in k or "someone" in k for k in rows)
    assert report.skipped_problem == 1 and report.skipped_unsupported == 1
    kinds = {(e[0], e[2]) for e in report.errors}
    assert ("github:owner/missing", "gone") in kinds and ("pypi:not-on-pypi", "not_found") in kinds


def test_transient_errors_are_retried_with_a_bound(tmp_path, fake):
    fake.faults["/repos/Owner/Alpha/stats"] = 2  # recovers on the third attempt
    fake.faults["/repos/owner/beta/stats"] = 100  # never recovers
    fake.malformed["/repos/Owner/Alpha/contributors"] = 1
    settings = make_settings(tmp_path)
    crawl(settings, packages_frame([{"repo": "github:Owner/Alpha"}, {"repo": "github:owner/beta"}]), fake)
    rows = latest(settings)
    alpha = rows["github:participation:owner/alpha"]
    assert alpha["error_kind"] is None and alpha["attempts"] == 3
    assert rows["github:contributors:owner/alpha"]["error_kind"] is None
    beta = rows["github:participation:owner/beta"]
    assert beta["error_kind"] == "transient" and beta["status"] == 502
    assert beta["attempts"] == FAST.max_attempts


def test_second_crawl_is_conditional_and_keeps_bodies(tmp_path, fake):
    settings = make_settings(tmp_path, tokens=("tok-secret-1",))
    packages = packages_frame([{"repo": "github:Owner/Alpha", "pypi": "alpha"}, {"repo": "github:owner/beta"}])
    first = crawl(settings, packages, fake, run_id="r1")
    assert first.not_modified == 0
    before = latest(settings)
    fake.requests.clear()
    second = crawl(settings, packages, fake, run_id="r2", force=True)
    rest = [r for r in fake.requests if r.url.path.startswith("/repos") and "page=" not in str(r.url)]
    assert rest and all(r.headers.get("if-none-match") for r in rest)
    after = latest(settings)
    for key, row in after.items():
        # pypistats is asked at most once a day, forced or not: its rows are the first crawl's
        assert row["status"] == (200 if "graphql" in key or key.startswith("pypistats:") else 304), key
        assert row["body"] == before[key]["body"]  # the last good body stays current
    assert second.sources["github"].quota_spent <= 2  # authorised 304s are free: the GraphQL batch and GET /user
    assert second.not_modified == second.archived - 2  # graphql nodes have no ETag


def test_staleness_policy_skips_fresh_keys(tmp_path, fake):
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": "github:Owner/Alpha", "pypi": "alpha"}])
    crawl(settings, packages, fake, run_id="r1")
    fake.requests.clear()
    report = crawl(settings, packages, fake, run_id="r2")
    assert fake.requests == [] and report.skipped_fresh == 8 and report.planned == 0
    report = crawl(settings, packages, fake, run_id="r3", max_age_hours=0)
    assert report.planned == 6 and len(fake.requests) >= 6  # pypistats: at most once a day
    assert report.skipped_fresh == 2 and not any(r.url.host == "pypistats.test" for r in fake.requests)


def test_plan_orders_new_entries_first_then_oldest():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    packages = packages_frame([{"repo": "github:a/old"}, {"repo": "github:a/new"}, {"repo": "github:a/older"},
                               {"repo": "github:a/fresh"}])
    states = {}
    for name, age in (("old", 30), ("older", 90), ("fresh", 1)):
        for endpoint in ("repo", "participation", "contributors", "commits"):
            states[request_key("github", endpoint, f"a/{name}")] = KeyState(
                etag='"x"', last_ok=now - timedelta(hours=age))
    plan = plan_crawl(packages, states, {}, with_token=False, now=now, force=False, max_age_hours=20)
    assert [j.ident for j in plan.jobs["github"]] == ["a/new", "a/older", "a/old"]
    assert plan.skipped_fresh == 4
    assert plan.jobs["github"][1].etag("repo") == '"x"'
    forced = plan_crawl(packages, states, {}, with_token=False, now=now, force=True, max_age_hours=20)
    assert len(forced.jobs["github"]) == 4


def test_tokens_never_reach_archive_or_logs(tmp_path, fake, caplog):
    fake.quota_by_token["tok-secret-1"] = 1  # forces exhaustion messages too
    settings = make_settings(tmp_path, tokens=("tok-secret-1", "tok-secret-2"))
    caplog.set_level(logging.DEBUG)
    packages = packages_frame([{"repo": "github:Owner/Alpha"}, {"repo": "github:owner/missing"}])
    report = crawl(settings, packages, fake)
    frame = scan_archive(settings.raw_dir).collect()
    dump = frame.write_csv() + repr(report) + caplog.text
    assert "tok-secret" not in dump
    assert all(r.headers.get("authorization", "").startswith("Bearer tok-secret") for r in fake.requests)


def test_secondary_limit_honours_retry_after(tmp_path, fake):
    fake.secondary["/stats/participation"] = 2
    settings = make_settings(tmp_path)
    report = crawl(settings, packages_frame([{"repo": "github:Owner/Alpha"}]), fake)
    assert report.errors == []
    assert report.responses_by_status[403] == 2


def test_quota_exhaustion_with_budget_stops_cleanly_and_resumes(tmp_path, fake):
    for i in range(10):
        fake.add_repo(f"owner/r{i}")
    fake.quota = 12  # anonymous quota: three repositories' worth
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": f"github:owner/r{i}"} for i in range(10)])
    tuning = Tuning(**{**FAST.__dict__, "concurrency": {"github": 2}, "jobs_in_flight": 2})
    report = crawl(settings, packages, fake, time_budget_s=30, tuning=tuning)
    assert report.stopped_by_budget and "time budget" in (report.stop_reason or "")
    done = latest(settings)
    assert 0 < len(done) < 40
    assert all(row["error_kind"] is None for row in done.values())  # nothing half-recorded
    fake.quota = 10_000
    fake.quota_by_token.clear()
    fake.requests.clear()
    report = crawl(settings, packages, fake, run_id="r2", tuning=tuning)
    assert not report.stopped_by_budget
    assert len(latest(settings)) == 40
    asked = {p.split("?")[0] for p in paths(fake)}
    good_before = {k for k, row in done.items() if row["status"] == 200}
    assert not any(f"/repos/{k.split(':')[2]}" in asked for k in good_before if k.startswith("github:repo:"))


def test_token_pool_waits_for_reset_with_a_message(caplog):
    slept: list[float] = []
    now = [1000.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def main() -> int:
        from pydantic import SecretStr

        pool = TokenPool((SecretStr("t"),), clock=lambda: now[0], sleep=sleep)
        pool.exhausted(0, "core", reset=1030)
        return await pool.acquire("core")

    caplog.set_level(logging.WARNING)
    assert asyncio.run(main()) == 0
    assert slept and 30 <= slept[0] <= 32
    assert "quota spent" in caplog.text and "waiting" in caplog.text


def test_token_pool_raises_when_reset_is_past_the_budget():
    async def main() -> None:
        pool = TokenPool((), clock=lambda: 1000.0, deadline=0.0, monotonic=lambda: 0.0)
        pool.exhausted(0, "core", reset=5000)
        await pool.acquire("core")

    with pytest.raises(BudgetExceeded):
        asyncio.run(main())


def test_graphql_batches_with_a_token(tmp_path, fake):
    fake.renamed["old/beta"] = "owner/beta"
    settings = make_settings(tmp_path, tokens=("tok",))
    packages = packages_frame([{"repo": "github:Owner/Alpha"}, {"repo": "github:old/beta"},
                               {"repo": "github:owner/missing"}])
    report = crawl(settings, packages, fake)
    rows = latest(settings)
    assert {k.split(":")[1] for k in rows} == {"graphql_repo", "participation", "contributors"}
    node = orjson.loads(rows["github:graphql_repo:old/beta"]["body"])
    assert node["nameWithOwner"] == "owner/beta"
    assert rows["github:graphql_repo:owner/missing"]["error_kind"] == "gone"
    assert "github:participation:owner/missing" not in rows
    assert any(p.startswith("/repos/owner/beta/stats") for p in paths(fake))  # the new name
    graphql_posts = [r for r in fake.requests if r.url.path == "/graphql"]
    assert len(graphql_posts) == 2  # batch size 2 in FAST
    # 2 GraphQL points + REST (alpha: 3 pages) + GET /user (which account the token is)
    assert report.sources["github"].quota_spent == 2 + 2 * 2 + 2 + 1


def test_gitlab_and_bitbucket(tmp_path, fake):
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": "gitlab:group/proj"}, {"repo": "bitbucket:ws/slug"},
                               {"repo": "gitlab:group/nothere"}])
    crawl(settings, packages, fake)
    rows = latest(settings)
    assert rows["gitlab:gitlab_project:group/proj"]["error_kind"] is None
    commits = orjson.loads(rows["gitlab:gitlab_commits:group/proj"]["body"])
    assert [c["id"] for c in commits] == ["c1", "c2"]  # x-next-page followed until past 52 weeks
    assert rows["gitlab:gitlab_contributors:group/proj"]["error_kind"] is None
    assert rows["gitlab:gitlab_project:group/nothere"]["error_kind"] == "gone"
    assert rows["bitbucket:bitbucket_repo:ws/slug"]["subject"] == "bitbucket:ws/slug"
    assert rows["bitbucket:bitbucket_commits:ws/slug"]["error_kind"] is None


def test_codeberg(tmp_path, fake):
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": "codeberg:cb/proj"}, {"repo": "codeberg:cb/empty"},
                               {"repo": "codeberg:cb/nothere"}, {"repo": "codeberg:cb/offhost"},
                               {"repo": "codeberg:cb/bad name"}])
    report = crawl(settings, packages, fake)
    rows = latest(settings)
    repo = rows["codeberg:codeberg_repo:cb/proj"]
    assert (repo["source"], repo["subject"], repo["error_kind"]) == ("codeberg", "codeberg:cb/proj", None)
    assert repo["url"] == "/repos/cb/proj" and repo["etag"]
    commits = rows["codeberg:codeberg_commits:cb/proj"]
    assert [c["sha"] for c in orjson.loads(commits["body"])] == ["c1", "c2"]  # X-HasMore until past 52 weeks
    assert commits["url"] == "/repos/cb/proj/commits?limit=50&stat=false&verification=false&files=false"
    assert orjson.loads(commits["headers"])["x-pulse-pages"] == "2"
    empty = rows["codeberg:codeberg_commits:cb/empty"]
    assert (empty["status"], empty["error_kind"]) == (409, None)
    archived = scan_archive(settings.raw_dir).filter(pl.col("request_key") == "codeberg:codeberg_commits:cb/empty")
    assert archived.collect()["body"].to_list() == ["[]"]
    assert rows["codeberg:codeberg_repo:cb/nothere"]["error_kind"] == "gone"
    assert "codeberg:codeberg_commits:cb/nothere" not in rows  # nothing more asked about a gone repository
    offhost = rows["codeberg:codeberg_commits:cb/offhost"]
    assert offhost["error_kind"] == "blocked" and "evil.test" in offhost["error"]
    assert not any(r.url.host == "evil.test" for r in fake.requests)
    assert rows["codeberg:codeberg_repo:cb/bad name"]["error_kind"] == "bad_entry"
    assert report.requests_by_source["codeberg"] == 2 + 2 + 2 + 1 + 1
    assert report.jobs_by_source["codeberg"] == 5 and report.skipped_unsupported == 0
    # a second forced crawl sends the stored ETags: unchanged answers are free 304s
    fake.requests.clear()
    crawl(settings, packages, fake, run_id="r2", force=True)
    again = latest(settings)
    assert again["codeberg:codeberg_repo:cb/proj"]["status"] == 304
    assert again["codeberg:codeberg_commits:cb/proj"]["status"] == 304
    sent = [r for r in fake.requests if r.url.path == "/api/v1/repos/cb/proj"]
    assert sent and sent[0].headers["if-none-match"] == repo["etag"]
    # a 304 is archived without a body: the last good body stays current
    assert [c["sha"] for c in orjson.loads(again["codeberg:codeberg_commits:cb/proj"]["body"])] == ["c1", "c2"]


def test_url_checks_and_link_parsing():
    allowed = {"api.github.test:443"}
    assert check_url(GH + "/repos/a/b", allowed)
    for bad in ("http://api.github.test/x", "https://evil.test/", "file:///etc/passwd",
                "https://user:pw@api.github.test/", "https://api.github.test:8443/"):
        with pytest.raises(ValueError):
            check_url(bad, allowed)
    link = '<https://x/a?page=2>; rel="next", <https://x/a?page=9>; rel="last"'
    assert next_link(link) == "https://x/a?page=2"
    assert next_link('<https://x/a?page=1>; rel="prev"') is None
    assert next_link(None) is None


def test_archive_rows_follow_the_schema(tmp_path, fake):
    settings = make_settings(tmp_path)
    crawl(settings, packages_frame([{"repo": "github:Owner/Alpha", "pypi": "alpha"}]), fake)
    frame = scan_archive(settings.raw_dir).collect()
    assert frame.filter(pl.col("run_id") != "r1").is_empty()
    assert set(frame["source"]) == {"github", "pypi", "pypistats"}
    assert frame["url"].str.starts_with("/").all()


def test_token_pool_shares_quota_within_an_account_and_prefers_one_with_pace_room():
    from pydantic import SecretStr

    async def main() -> list[int]:
        pool = TokenPool((SecretStr("a"), SecretStr("b"), SecretStr("c")))
        pool.set_accounts(["alice", "alice", None])  # c: unknown, an account of its own
        assert pool.accounts == [0, 2]
        pool.observe(1, "core", 5000, 3, 2_000_000_000)  # said of b: it is alice's quota
        assert pool.quota(0, "core").remaining == 3
        pool.estimate = lambda index, resource: 0.0 if index == 0 else 9.0  # alice's pace has room
        used = [await pool.acquire("core") for _ in range(4)]
        return used

    assert asyncio.run(main()) == [0, 0, 0, 2]  # alice's 3 left, then the other account


@pytest.mark.parametrize("tokens", [(), ("tok",)])
def test_idle_repository_participation_is_derived_without_a_request(tmp_path, fake, tokens):
    fake.repos["owner/beta"].pushed_at = "2023-01-01T00:00:00Z"
    settings = make_settings(tmp_path, tokens=tokens)
    crawl(settings, packages_frame([{"repo": "github:owner/beta"}, {"repo": "github:Owner/Alpha"}]), fake)
    rows = latest(settings)
    beta = rows["github:participation:owner/beta"]
    assert beta["status"] == 200 and beta["attempts"] == 0 and beta["error_kind"] is None
    assert orjson.loads(beta["body"]) == {"all": [0] * 52, "owner": [0] * 52}
    assert "x-pulse-derived" in orjson.loads(beta["headers"])
    assert not any("beta/stats" in p for p in paths(fake))
    assert any("Alpha/stats" in p for p in paths(fake))  # active: asked


def test_load_state_agrees_with_latest_responses(tmp_path, fake):
    from pipelines.crawler.state import load_state

    fake.add_repo("owner/empty", empty=True)
    settings = make_settings(tmp_path)
    packages = packages_frame([{"repo": "github:Owner/Alpha", "pypi": "alpha"}, {"repo": "github:owner/gone"},
                               {"repo": "github:owner/empty"}])
    crawl(settings, packages, fake, run_id="r1")
    crawl(settings, packages, fake, run_id="r2", force=True)
    states, facts = load_state(settings.raw_dir)
    rows = latest(settings)
    assert set(states) == set(rows)
    for k, row in rows.items():
        assert states[k].etag == row["good_etag"], k
        expected = row["good_fetched_at"]
        if row["status"] in (304, 409) and row["error_kind"] is None:
            expected = max(filter(None, (expected, row["fetched_at"])))
        assert states[k].last_ok == expected, k
    assert facts["github:repo:owner/alpha"]["full_name"] == "Owner/Alpha"
    assert facts["github:repo:owner/alpha"]["nonempty"] is True


def test_run_crawl_works_inside_a_running_event_loop(tmp_path, fake):
    settings = make_settings(tmp_path)

    async def main():
        return crawl(settings, packages_frame([{"pypi": "alpha"}]), fake)

    report = asyncio.run(main())
    assert report.archived == 4 and not report.errors


@pytest.mark.parametrize("host", ["https://evil.test", "https://pypi.test", "http://api.github.test"])
def test_link_pages_never_leave_the_upstream_host(tmp_path, fake, host):
    fake.repos["owner/alpha"].link_host = host  # pypi.test is allowed, but not for GitHub pages
    settings = make_settings(tmp_path)
    crawl(settings, packages_frame([{"repo": "github:Owner/Alpha"}]), fake)
    assert all(r.url.host == "api.github.test" and r.url.scheme == "https" for r in fake.requests)
    row = latest(settings)["github:contributors:owner/alpha"]
    assert row["error_kind"] == "blocked" and "page 2" in row["error"]


def test_pypistats(tmp_path, fake):
    """pypistats: two keys per PyPI name, a 404 is `not_found` (no exception), a 429 waits as
    retry-after asks (the whole upstream pauses), and a key is asked at most once a day, forced or not."""
    fake.stats.update({"alpha": 1500, "beta-pkg": 20})
    fake.stats_429["/api/packages/beta-pkg/recent"] = 1
    settings = make_settings(tmp_path)
    packages = packages_frame([{"pypi": "alpha"}, {"pypi": "beta-pkg"}, {"pypi": "nothere"}, {"pypi": "Bad_Name"}])
    report = crawl(settings, packages, fake, tuning=FAST)
    rows = latest(settings)
    recent = rows["pypistats:recent:alpha"]
    assert (recent["source"], recent["subject"], recent["error_kind"]) == ("pypistats", "pypistats:alpha", None)
    assert recent["url"] == "/api/packages/alpha/recent"
    assert orjson.loads(recent["body"])["data"]["last_month"] == 1500
    assert rows["pypistats:overall:alpha"]["url"] == "/api/packages/alpha/overall?mirrors=false"
    assert rows["pypistats:recent:beta-pkg"]["status"] == 200  # after the 429 and its wait
    assert report.sources["pypistats"].backoffs == [1.0]  # retry-after: 1, honoured as given
    stamps = [t for r, t in zip(fake.requests, fake.times, strict=True) if "beta-pkg/recent" in str(r.url)]
    assert len(stamps) == 2 and stamps[1] - stamps[0] >= 0.9
    for endpoint in ("recent", "overall"):
        missing = rows[f"pypistats:{endpoint}:nothere"]
        assert (missing["status"], missing["error_kind"]) == (404, "not_found")
    assert rows["pypistats:recent:bad_name"]["error_kind"] == "bad_entry"
    assert report.requests_by_source["pypistats"] == 2 + 3 + 2
    # a forced crawl the same day asks pypistats nothing (404s included); a day later it sends the ETags
    fake.requests.clear()
    crawl(settings, packages, fake, run_id="r2", force=True, max_age_hours=0)
    assert not any(r.url.host == "pypistats.test" for r in fake.requests)
    from pipelines.crawler.state import load_state

    states, facts = load_state(settings.raw_dir)
    later = datetime.now(UTC) + timedelta(hours=25)
    plan = plan_crawl(packages, states, facts, with_token=False, now=later, force=False, max_age_hours=24)
    due = {job.ident: set(job.due) for job in plan.jobs["pypistats"]}
    assert due["alpha"] == {"pypistats_recent", "pypistats_overall"} and "nothere" in due
    alpha = next(job for job in plan.jobs["pypistats"] if job.ident == "alpha")
    assert recent["etag"] and alpha.etag("pypistats_recent") == recent["etag"]  # If-None-Match next time


def test_last_modified_without_etag_is_sent_back_as_if_modified_since(tmp_path, fake, monkeypatch):
    """An upstream that sends only `Last-Modified` still gets conditional requests (`If-Modified-Since`)."""
    from pipelines.sources.pypistats import PyPIStatsCrawling

    monkeypatch.setattr(PyPIStatsCrawling, "min_age_hours", 0.0)  # ask again at once (the floor is 24 h)
    fake.stats["alpha"] = 1500
    fake.stats_last_modified = "Sat, 31 Oct 2026 01:00:00 GMT"
    settings = make_settings(tmp_path)
    packages = packages_frame([{"pypi": "alpha"}])
    crawl(settings, packages, fake)
    assert latest(settings)["pypistats:recent:alpha"]["etag"] == "last-modified:Sat, 31 Oct 2026 01:00:00 GMT"
    fake.requests.clear()
    crawl(settings, packages, fake, run_id="r2", force=True)
    sent = [r for r in fake.requests if r.url.host == "pypistats.test"]
    assert len(sent) == 2 and all(r.headers["if-modified-since"] == fake.stats_last_modified for r in sent)
    assert all("if-none-match" not in r.headers for r in sent)
    rows = latest(settings)
    assert rows["pypistats:recent:alpha"]["status"] == 304
    assert orjson.loads(rows["pypistats:recent:alpha"]["body"])["data"]["last_month"] == 1500  # body kept
