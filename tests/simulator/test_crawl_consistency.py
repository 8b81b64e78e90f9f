"""A tiny crawler over HTTP must reproduce the served v4 records (export semantics, ARCHITECTURE.md)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from packaging.utils import canonicalize_name

from simulator.world import drf_datetime
from tests.simulator.helpers import TOKEN, client, parse_repo_url, pypi_name


def _dt(text: str | None) -> str | None:
    return drf_datetime(datetime.fromisoformat(text.replace("Z", "+00:00"))) if text else None


def crawl(c, record: dict) -> dict:
    out = {"repo_watchers": 0, "repo_forks": 0, "repo_description": "", "commits_over_52": [],
           "participants": [], "last_updated": None, "pypi_version": None}
    parsed = parse_repo_url(record["repo_url"])
    if parsed and parsed[0] == "github":
        _, owner, name = parsed
        r = c.get(f"/api/v3/repos/{owner}/{name}", headers=TOKEN, follow_redirects=True)
        if r.status_code == 200:
            repo = r.json()
            base = f"/api/v3/repositories/{repo['id']}"
            out.update(repo_watchers=repo["stargazers_count"], repo_forks=repo["forks_count"],
                       repo_description=repo["description"] or "")
            for _ in range(5):
                part = c.get(f"{base}/stats/participation", headers=TOKEN)
                if part.status_code != 202:
                    break
            if part.status_code == 200:
                out["commits_over_52"] = part.json()["all"]
            url = f"{base}/contributors?per_page=100"
            logins = []
            while url:
                page = c.get(url, headers=TOKEN)
                if page.status_code != 200:
                    break
                logins += [x["login"] for x in page.json() if x["type"] != "Anonymous"]
                nxt = [p for p in page.headers.get("link", "").split(",") if 'rel="next"' in p]
                url = nxt[0].split(";")[0].strip()[1:-1] if nxt else None
            out["participants"] = logins
            commits = c.get(f"{base}/commits?per_page=1", headers=TOKEN)
            if commits.status_code == 200 and commits.json():
                out["last_updated"] = _dt(commits.json()[0]["commit"]["committer"]["date"])
    elif parsed and parsed[0] == "gitlab":
        path = quote(f"{parsed[1]}/{parsed[2]}", safe="")
        proj = c.get(f"/api/v4/projects/{path}")
        if proj.status_code == 200:
            j = proj.json()
            out.update(repo_watchers=j["star_count"], repo_forks=j["forks_count"], repo_description=j["description"])
            commits = c.get(f"/api/v4/projects/{path}/repository/commits?per_page=1").json()
            out["last_updated"] = _dt(commits[0]["committed_date"]) if commits else None
    elif parsed and parsed[0] == "bitbucket":
        repo = c.get(f"/2.0/repositories/{parsed[1]}/{parsed[2]}")
        if repo.status_code == 200:
            out["repo_description"] = repo.json()["description"]
            values = c.get(f"/2.0/repositories/{parsed[1]}/{parsed[2]}/commits").json()["values"]
            out["last_updated"] = _dt(values[0]["date"]) if values else None
    elif parsed and parsed[0] == "codeberg":
        repo = c.get(f"/api/v1/repos/{parsed[1]}/{parsed[2]}")
        if repo.status_code == 200:
            j = repo.json()
            out.update(repo_watchers=j["stars_count"], repo_forks=j["forks_count"], repo_description=j["description"])
            commits = c.get(f"/api/v1/repos/{parsed[1]}/{parsed[2]}/commits?limit=1")
            newest = commits.json() if commits.status_code == 200 else []
            out["last_updated"] = _dt(newest[0]["commit"]["committer"]["date"]) if newest else None
    name = pypi_name(record["pypi_url"])
    doc = record["documentation_url"]
    if name:
        r = c.get(f"/pypi/{canonicalize_name(name)}/json", follow_redirects=True)  # 301 to the display name
        if r.status_code == 200:
            info = r.json()["info"]
            out["pypi_version"] = info["version"]
            urls = info["project_urls"] or {}
            doc = urls.get("Documentation") or urls.get("Docs") or info["docs_url"] or doc
    out["documentation_url"] = doc
    return out


def test_crawl_reproduces_v4_records(make_simulator):
    server = make_simulator(packages=250, faults={"burst": 0})
    w = server.world
    checked = 0
    hosts = set()
    with client(server) as c:
        url = "/api/v4/packages/?limit=250"
        records = c.get(url).json()["results"]
        for record in records:
            p = w.package(record["id"])
            if not ("healthy" in p.traits or p.traits & {"renamed", "gitlab", "bitbucket", "codeberg", "empty"}):
                continue
            got = crawl(c, record)
            for key, value in got.items():
                assert record[key] == value, (p.id, sorted(p.traits), key, record[key], value)
            checked += 1
            hosts.add(p.host)
    assert checked > 180
    assert {"github", "gitlab", "bitbucket", "codeberg"} <= hosts
