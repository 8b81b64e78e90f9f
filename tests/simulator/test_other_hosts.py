"""GitLab, Bitbucket and Codeberg behaviours of the simulator, over HTTP."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from tests.simulator.helpers import client


def test_gitlab_project_commits_contributors(simulator):
    w = simulator.world
    p = w.first("gitlab")
    path = quote(p.full_name, safe="")
    with client(simulator) as c:
        r = c.get(f"/api/v4/projects/{path}")
        assert r.status_code == 200
        j = r.json()
        assert j["path_with_namespace"] == p.full_name and j["star_count"] == p.stars
        assert j["forks_count"] == p.forks and j["default_branch"] == p.default_branch
        assert j["last_activity_at"].endswith("Z")
        by_id = c.get(f"/api/v4/projects/{j['id']}").json()
        assert by_id["path_with_namespace"] == p.full_name
        history = w.commits(p.id)
        r = c.get(f"/api/v4/projects/{path}/repository/commits", params={"per_page": 5})
        assert r.headers["x-total"] == str(len(history)) and r.headers["x-page"] == "1"
        assert r.headers["x-next-page"] == ("2" if len(history) > 5 else "")
        assert [x["id"] for x in r.json()] == [x.sha for x in history[:5]]
        page2 = c.get(f"/api/v4/projects/{path}/repository/commits", params={"per_page": 5, "page": 2}).json()
        assert [x["id"] for x in page2] == [x.sha for x in history[5:10]]
        since = history[2].date.strftime("%Y-%m-%dT%H:%M:%SZ")
        recent = c.get(f"/api/v4/projects/{path}/repository/commits", params={"since": since}).json()
        assert len(recent) == sum(1 for x in history if x.date >= history[2].date)
        contributors = c.get(f"/api/v4/projects/{path}/repository/contributors").json()
        assert contributors and set(contributors[0]) == {"name", "email", "commits", "additions", "deletions"}
        missing = c.get("/api/v4/projects/nobody%2Fnothing")
        assert missing.status_code == 404 and missing.json() == {"message": "404 Project Not Found"}


def test_bitbucket_repo_and_commits(simulator):
    w = simulator.world
    p = w.first("bitbucket")
    with client(simulator) as c:
        r = c.get(f"/2.0/repositories/{p.full_name}")
        assert r.status_code == 200
        j = r.json()
        assert j["full_name"] == p.full_name and j["mainbranch"]["name"] == p.default_branch
        assert "stargazers_count" not in j and "star_count" not in j
        history = w.commits(p.id)
        page = c.get(f"/2.0/repositories/{p.full_name}/commits", params={"pagelen": 3}).json()
        assert [x["hash"] for x in page["values"]] == [x.sha for x in history[:3]]
        seen = [x["hash"] for x in page["values"]]
        while "next" in page:
            page = c.get(page["next"]).json()
            seen += [x["hash"] for x in page["values"]]
        assert seen == [x.sha for x in history]
        missing = c.get("/2.0/repositories/nobody/nothing")
        assert missing.status_code == 404 and missing.json()["type"] == "error"


def test_codeberg_repo_and_commits(simulator):
    w = simulator.world
    p = w.first("codeberg")
    history = w.commits(p.id)
    with client(simulator) as c:
        r = c.get(f"/api/v1/repos/{p.full_name}")
        assert r.status_code == 200
        j = r.json()
        assert j["full_name"] == p.full_name and j["default_branch"] == p.default_branch
        assert (j["stars_count"], j["forks_count"], j["watchers_count"]) == (p.stars, p.forks, p.subscribers)
        assert j["description"] == (p.description or "") and j["empty"] is False and j["archived"] is False
        assert c.get(f"/api/v1/repos/{p.full_name.upper()}").json()["id"] == j["id"]  # case-insensitive
        # ETag / 304
        again = c.get(f"/api/v1/repos/{p.full_name}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        # commits: newest first, limit capped at 50, Link + x-total-count pagination
        page = c.get(f"/api/v1/repos/{p.full_name}/commits", params={"limit": 3})
        assert page.status_code == 200 and page.headers["x-total-count"] == str(len(history))
        first = page.json()
        assert [x["sha"] for x in first] == [x.sha for x in history[:3]]
        newest = datetime.fromisoformat(first[0]["commit"]["committer"]["date"])
        assert newest == history[0].date and first[0]["created"] == first[0]["commit"]["committer"]["date"]
        seen = [x["sha"] for x in first]
        while "next" in page.links:
            page = c.get(page.links["next"]["url"])
            seen += [x["sha"] for x in page.json()]
        assert seen == [x.sha for x in history]
        assert page.headers["x-hasmore"] == "false"
        big = c.get(f"/api/v1/repos/{p.full_name}/commits", params={"limit": 500})
        assert len(big.json()) == min(50, len(history))
        since = history[2].date.strftime("%Y-%m-%dT%H:%M:%SZ")
        recent = c.get(f"/api/v1/repos/{p.full_name}/commits", params={"since": since, "limit": 50}).json()
        assert len(recent) == sum(1 for x in history[:50] if x.date >= history[2].date)
        tagged = c.get(f"/api/v1/repos/{p.full_name}/commits", params={"sha": p.default_branch, "limit": 1})
        assert tagged.json()[0]["sha"] == history[0].sha
        etag = tagged.headers["etag"]
        assert c.get(f"/api/v1/repos/{p.full_name}/commits", params={"sha": p.default_branch, "limit": 1},
                     headers={"If-None-Match": etag}).status_code == 304
        missing = c.get("/api/v1/repos/nobody/nothing")
        assert missing.status_code == 404
        assert missing.json()["message"] == "The target couldn't be found." and missing.json()["errors"] is None
        assert c.get("/api/v1/repos/nobody/nothing/commits").status_code == 404
        assert c.get(f"/api/v1/repos/{p.full_name}/commits", params={"sha": "no-such-branch"}).status_code == 404


def test_codeberg_empty_repository_answers_409():
    from simulator.codeberg import answer
    from simulator.core import SimState
    from simulator.faults import Faults
    from simulator.hosts import REPO_HOSTS
    from simulator.world import World

    world = World(seed=1, packages=60, hosts=REPO_HOSTS)
    p = world.first("codeberg")
    state = SimState(world, Faults(), 0)
    world.commits.cache_clear()
    original = world.commits
    world.commits = lambda pid: () if pid == p.id else original(pid)  # the world has no empty codeberg repo
    try:
        resp = answer(state, "http://sim", p.owner, p.name, "/commits", "")
        assert resp.status == 409 and b"Git Repository is empty." in resp.body
        assert answer(state, "http://sim", p.owner, p.name, "", "").status == 200
    finally:
        world.commits = original


def test_every_host_tells_when_a_repository_was_created(simulator):
    """The repository's creation time (Pulse's core.repositories.created_at) on every host's JSON."""
    from simulator.model import gh_time
    from tests.simulator.helpers import TOKEN

    w = simulator.world
    with client(simulator) as c:
        p = w.first("github", "healthy")
        assert c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).json()["created_at"] == gh_time(p.repo_created)
        query = f'{{ repository(owner: "{p.owner}", name: "{p.name}") {{ createdAt }} }}'
        graph = c.post("/api/graphql", json={"query": query}, headers=TOKEN).json()
        assert graph["data"]["repository"]["createdAt"] == gh_time(p.repo_created)
        stamps = {
            "gitlab": lambda p: c.get(f"/api/v4/projects/{quote(p.full_name, safe='')}").json()["created_at"],
            "bitbucket": lambda p: c.get(f"/2.0/repositories/{p.full_name}").json()["created_on"],
            "codeberg": lambda p: c.get(f"/api/v1/repos/{p.full_name}").json()["created_at"],
        }
        for host, stamp in stamps.items():
            q = w.first(host, "crawlable")
            when = datetime.fromisoformat(stamp(q).replace("Z", "+00:00"))
            assert abs((when - q.repo_created).total_seconds()) < 1, host
