"""GitLab and Bitbucket behaviours of the simulator, over HTTP."""

from __future__ import annotations

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
