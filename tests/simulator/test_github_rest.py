"""GitHub REST behaviours of the simulator, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.simulator.helpers import TOKEN, client

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "upstream"


@pytest.fixture(scope="module")
def gh(simulator):
    with client(simulator) as c:
        yield simulator, c


def test_repo_json_shape_and_counts(gh):
    server, c = gh
    p = server.world.first("healthy")
    r = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["stargazers_count"] == body["watchers_count"] == body["watchers"] == p.stars
    assert body["subscribers_count"] != body["stargazers_count"]
    assert body["full_name"] == p.full_name and body["id"] == p.repo_id
    assert body["url"] == f"{server.url}/api/v3/repos/{p.full_name}"
    assert body["default_branch"] == p.default_branch
    recorded = REFERENCE / "github_vcr_djangopackages_fetch_metadata_archived_pydanny-dj-paginator.yaml"
    if recorded.exists():
        import yaml

        cassette = yaml.safe_load(recorded.read_text())
        real = json.loads(cassette["interactions"][1]["response"]["body"]["string"])
        real_keys = set(real) - {"permissions"}  # only for authenticated owners
        assert real_keys <= set(body), real_keys - set(body)


def test_repo_case_insensitive_lookup(gh):
    server, c = gh
    p = server.world.first("healthy")
    r = c.get(f"/api/v3/repos/{p.owner.upper()}/{p.name.upper()}", headers=TOKEN)
    assert r.status_code == 200
    assert r.json()["full_name"] == p.full_name


def test_archived_and_fork_variants(gh):
    server, c = gh
    a = server.world.first("archived", exclude=("renamed",))
    assert c.get(f"/api/v3/repos/{a.full_name}", headers=TOKEN).json()["archived"] is True
    f = server.world.first("fork", exclude=("renamed",))
    body = c.get(f"/api/v3/repos/{f.full_name}", headers=TOKEN).json()
    assert body["fork"] is True and body["parent"]["full_name"] != f.full_name
    h = server.world.first("healthy", exclude=("archived", "fork"))
    body = c.get(f"/api/v3/repos/{h.full_name}", headers=TOKEN).json()
    assert body["archived"] is False and body["fork"] is False and "parent" not in body


def test_renamed_repo_redirects_to_repositories_id(gh):
    server, c = gh
    p = server.world.first("renamed")
    assert (p.url_owner, p.url_name) != (p.owner, p.name)
    r = c.get(f"/api/v3/repos/{p.url_owner}/{p.url_name}", headers=TOKEN)
    assert r.status_code == 301
    assert r.headers["location"] == f"{server.url}/api/v3/repositories/{p.repo_id}"
    assert r.json()["message"] == "Moved Permanently"
    sub = c.get(f"/api/v3/repos/{p.url_owner}/{p.url_name}/contributors?per_page=5", headers=TOKEN)
    assert sub.status_code == 301
    assert sub.headers["location"] == f"{server.url}/api/v3/repositories/{p.repo_id}/contributors?per_page=5"
    followed = c.get(f"/api/v3/repos/{p.url_owner}/{p.url_name}", headers=TOKEN, follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["full_name"] == p.full_name
    assert c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).status_code == 200
    assert c.get(f"/api/v3/repositories/{p.repo_id}", headers=TOKEN).json()["id"] == p.repo_id


def test_deleted_repo_404_body(gh):
    server, c = gh
    p = server.world.first("deleted")
    r = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
    assert r.status_code == 404
    assert r.json() == {"message": "Not Found",
                        "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
                        "status": "404"}
    assert c.get("/api/v3/repos/nobody/nothing-here", headers=TOKEN).status_code == 404


def test_blocked_repos(gh):
    server, c = gh
    dmca = server.world.first("blocked_dmca")
    r = c.get(f"/api/v3/repos/{dmca.full_name}", headers=TOKEN)
    assert r.status_code == 451
    assert r.json()["message"] == "Repository access blocked"
    assert r.json()["block"]["reason"] == "dmca"
    tos = server.world.first("blocked_tos")
    r = c.get(f"/api/v3/repos/{tos.full_name}/contributors", headers=TOKEN)
    assert r.status_code == 403 and r.json()["block"]["reason"] == "tos"


def test_weak_etag_and_304_not_counted_with_token(make_simulator):
    server = make_simulator(packages=60)
    p = server.world.first("healthy")
    with client(server) as c:
        r = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
        etag = r.headers["etag"]
        assert etag.startswith('W/"')
        remaining = int(r.headers["x-ratelimit-remaining"])
        r2 = c.get(f"/api/v3/repos/{p.full_name}", headers={**TOKEN, "If-None-Match": etag})
        assert r2.status_code == 304 and r2.content == b""
        assert int(r2.headers["x-ratelimit-remaining"]) == remaining
        # anonymous 304s are counted (the anonymous body has no `permissions`: its own ETag)
        a1 = c.get(f"/api/v3/repos/{p.full_name}")
        assert a1.headers["etag"] != etag
        a2 = c.get(f"/api/v3/repos/{p.full_name}", headers={"If-None-Match": a1.headers["etag"]})
        assert a2.status_code == 304
        assert int(a2.headers["x-ratelimit-remaining"]) == int(a1.headers["x-ratelimit-remaining"]) - 1
    assert server.stats()["by_status"]["304"] == 2


def test_rate_limit_headers_per_token(make_simulator):
    server = make_simulator(packages=60)
    p = server.world.first("healthy")
    with client(server) as c:
        seen = []
        for _ in range(3):
            r = c.get(f"/api/v3/repos/{p.full_name}", headers={"Authorization": "token sekrit-AAA"})
            seen.append(int(r.headers["x-ratelimit-remaining"]))
            assert r.headers["x-ratelimit-limit"] == "5000"
            assert r.headers["x-ratelimit-resource"] == "core"
            assert int(r.headers["x-ratelimit-reset"]) > 1_700_000_000
        assert seen == [4999, 4998, 4997]
        other = c.get(f"/api/v3/repos/{p.full_name}", headers={"Authorization": "Bearer sekrit-BBB"})
        assert other.headers["x-ratelimit-remaining"] == "4999"
        assert other.headers["x-ratelimit-used"] == "1"
        anon = c.get(f"/api/v3/repos/{p.full_name}")
        assert anon.headers["x-ratelimit-limit"] == "60" and anon.headers["x-ratelimit-remaining"] == "59"
        bad = c.get(f"/api/v3/repos/{p.full_name}", headers={"Authorization": "token invalid-xyz"})
        assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
        rl = c.get("/api/v3/rate_limit", headers={"Authorization": "token sekrit-AAA"}).json()
        assert rl["resources"]["core"]["remaining"] == 4997 and rl["rate"] == rl["resources"]["core"]
    stats = server.stats()
    assert "sekrit" not in json.dumps(stats) and len(stats["quota_spent"]) == 3
    assert sorted(stats["quota_spent"].values()) == [1, 1, 3]


@pytest.mark.parametrize("status", [403, 429])
def test_primary_exhaustion(make_simulator, status):
    server = make_simulator(packages=60, faults={"quota": 2, "ratelimit_status": status})
    p = server.world.first("healthy")
    with client(server) as c:
        codes = [c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).status_code for _ in range(3)]
        assert codes == [200, 200, status]
        r = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert "API rate limit exceeded" in r.json()["message"]
        assert int(r.headers["x-ratelimit-reset"]) > 0


def test_exhausted_from_start(make_simulator):
    server = make_simulator(packages=60, faults="ratelimit=exhaust429")
    p = server.world.first("healthy")
    with client(server) as c:
        r = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
        assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"


def test_secondary_limit_burst_without_retry_after(make_simulator):
    server = make_simulator(packages=60, faults={"burst": 3})
    p = server.world.first("healthy")
    with client(server) as c:
        codes = [c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 403]
        assert "secondary rate limit" in codes[-1].json()["message"]
        assert "retry-after" not in codes[-1].headers
        assert int(codes[-1].headers["x-ratelimit-remaining"]) > 0


def test_secondary_limit_concurrency_with_retry_after(make_simulator):
    import asyncio

    server = make_simulator(packages=60, latency_ms=300, faults={"concurrency": 3})
    p = server.world.first("healthy")

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as ac:
            return await asyncio.gather(*[ac.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
                                          for _ in range(6)])

    responses = asyncio.run(run())
    limited = [r for r in responses if r.status_code == 403]
    assert len(limited) == 3 and sum(r.status_code == 200 for r in responses) == 3
    assert all(r.headers["retry-after"] == "60" for r in limited)


def test_stats_202_then_200_and_204_for_empty(make_simulator):
    server = make_simulator(packages=250)
    w = server.world
    p = next(x for x in w.select("stats_202", "healthy") if x.stats_202 == 2)
    with client(server) as c:
        url = f"/api/v3/repos/{p.full_name}/stats/participation"
        codes = [c.get(url, headers=TOKEN) for _ in range(3)]
        assert [r.status_code for r in codes] == [202, 202, 200]
        assert codes[0].json() == {}
        body = codes[2].json()
        assert len(body["all"]) == 52 and len(body["owner"]) == 52
        assert body["all"] == w.participation(p.id)
        ca = c.get(f"/api/v3/repos/{p.full_name}/stats/commit_activity", headers=TOKEN)
        assert ca.status_code == 202
        for _ in range(2):
            ca = c.get(f"/api/v3/repos/{p.full_name}/stats/commit_activity", headers=TOKEN)
        weeks = ca.json()
        assert ca.status_code == 200 and len(weeks) == 52
        assert [wk["total"] for wk in weeks] == body["all"]
        assert all(sum(wk["days"]) == wk["total"] for wk in weeks)
        e = w.first("empty")
        assert c.get(f"/api/v3/repos/{e.full_name}/stats/participation", headers=TOKEN).status_code == 204
        assert c.get(f"/api/v3/repos/{e.full_name}/stats/commit_activity", headers=TOKEN).status_code == 204


def test_most_packages_inactive(simulator):
    w = simulator.world
    inactive = sum(1 for pid in w.ids() if not any(w.participation(pid)))
    assert inactive > w.n * 0.5


def _links(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(","):
        url, rel = part.split(";")
        out[rel.strip().removeprefix('rel="').removesuffix('"')] = url.strip()[1:-1]
    return out


def test_contributors_pagination_anon_and_bots(gh):
    server, c = gh
    w = server.world
    p = w.first("many_contributors", "healthy")
    r = c.get(f"/api/v3/repos/{p.full_name}/contributors", params={"per_page": 100}, headers=TOKEN)
    assert r.status_code == 200 and len(r.json()) == 100
    links = _links(r.headers["link"])
    assert links["next"] == f"{server.url}/api/v3/repositories/{p.repo_id}/contributors?per_page=100&page=2"
    assert "last" in links and "prev" not in links
    logins = [x["login"] for x in r.json()]
    url = links["next"]
    while url:
        page = c.get(url, headers=TOKEN)
        logins += [x["login"] for x in page.json()]
        url = _links(page.headers["link"]).get("next") if "link" in page.headers else None
    expected = [x["login"] for x in w.contributors(p.id) if x["type"] != "Anonymous"]
    assert logins == expected and len(logins) > 100
    # default per_page is 30
    assert len(c.get(f"/api/v3/repos/{p.full_name}/contributors", headers=TOKEN).json()) == 30

    b = w.first("bots", "anonymous_contributors", "healthy")
    plain = c.get(f"/api/v3/repos/{b.full_name}/contributors?per_page=100", headers=TOKEN).json()
    assert all(x["type"] in ("User", "Bot") for x in plain)
    bots = [x for x in plain if x["type"] == "Bot"]
    assert bots and all(x["login"].endswith("[bot]") for x in bots)
    with_anon = c.get(f"/api/v3/repos/{b.full_name}/contributors?per_page=100&anon=1", headers=TOKEN).json()
    anon = [x for x in with_anon if x["type"] == "Anonymous"]
    assert anon and all("login" not in x and "email" in x for x in anon)
    assert len(with_anon) == len(plain) + len(anon)
    counts = [x["contributions"] for x in with_anon]
    assert counts == sorted(counts, reverse=True)


def test_contributors_empty_and_too_large(gh):
    server, c = gh
    e = server.world.first("empty")
    r = c.get(f"/api/v3/repos/{e.full_name}/contributors", headers=TOKEN)
    assert r.status_code == 204 and r.content == b""
    big = server.world.first("contributors_too_large")
    r = c.get(f"/api/v3/repos/{big.full_name}/contributors", headers=TOKEN)
    assert r.status_code == 403 and "too large" in r.json()["message"]


def test_commits_filters_and_empty(gh):
    server, c = gh
    w = server.world
    p = w.first("healthy", "active")
    history = w.commits(p.id)
    r = c.get(f"/api/v3/repos/{p.full_name}/commits", params={"per_page": 1}, headers=TOKEN)
    newest = r.json()[0]
    assert newest["sha"] == history[0].sha
    assert newest["commit"]["committer"]["date"] == history[0].date.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "rel=\"next\"" in r.headers["link"] and f"/repositories/{p.repo_id}/commits?" in r.headers["link"]
    since = history[min(4, len(history) - 1)].date.strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = c.get(f"/api/v3/repos/{p.full_name}/commits", params={"since": since, "per_page": 100},
                   headers=TOKEN).json()
    assert [x["sha"] for x in recent] == [x.sha for x in history if x.date >= history[min(4, len(history) - 1)].date]
    until = history[1].date.strftime("%Y-%m-%dT%H:%M:%SZ")
    old = c.get(f"/api/v3/repos/{p.full_name}/commits", params={"until": until, "per_page": 2},
                headers=TOKEN).json()
    assert old[0]["sha"] == history[1].sha
    by_sha = c.get(f"/api/v3/repos/{p.full_name}/commits", params={"sha": history[2].sha, "per_page": 1},
                   headers=TOKEN).json()
    assert by_sha[0]["sha"] == history[2].sha
    by_branch = c.get(f"/api/v3/repos/{p.full_name}/commits",
                      params={"sha": p.default_branch, "per_page": 1}, headers=TOKEN).json()
    assert by_branch[0]["sha"] == history[0].sha
    assert c.get(f"/api/v3/repos/{p.full_name}/commits", params={"sha": "nope-branch"},
                 headers=TOKEN).status_code == 404
    e = w.first("empty")
    r = c.get(f"/api/v3/repos/{e.full_name}/commits", headers=TOKEN)
    assert r.status_code == 409 and r.json()["message"] == "Git Repository is empty."


def test_releases_latest(gh):
    server, c = gh
    w = server.world
    p = w.first("has_release", "healthy")
    r = c.get(f"/api/v3/repos/{p.full_name}/releases/latest", headers=TOKEN)
    assert r.status_code == 200
    assert r.json()["tag_name"] == f"v{w.gh_latest_release(p.id).version}"
    q = w.first("healthy", exclude=("has_release",))
    r = c.get(f"/api/v3/repos/{q.full_name}/releases/latest", headers=TOKEN)
    assert r.status_code == 404 and r.json()["message"] == "Not Found"


def test_unknown_github_route_is_404(gh):
    server, c = gh
    p = server.world.first("healthy")
    assert c.get(f"/api/v3/repos/{p.full_name}/nonsense", headers=TOKEN).status_code == 404
    assert c.get("/nowhere").status_code == 404
