"""A small in-memory fake of GitHub / PyPI / GitLab / Bitbucket / Codeberg / pypistats behind `httpx.MockTransport`.

Just enough behaviour to test the crawl's plumbing without a network: ETags and 304s, renames
(301 to /repositories/<id>), 202 participation, Link pagination, rate-limit headers and exhaustion,
secondary limits, injected faults, 410 Gone. `delay_s` makes every answer take that long (an async
handler), so requests overlap; `token_log` records which token each GitHub request used and what every
token had left at that moment, `quota_403s` every primary-limit refusal with the same snapshot and
the refused request's index in `requests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from pipelines.settings import Settings

GH = "https://api.github.test"
PYPI = "https://pypi.test"
GITLAB = "https://gitlab.test/api/v4"
BB = "https://bb.test/2.0"
CODEBERG = "https://codeberg.test/api/v1"
PYPISTATS = "https://pypistats.test"


def make_settings(home: Path, tokens: tuple[str, ...] = ()) -> Settings:
    from pydantic import SecretStr

    return Settings(
        home=home,
        catalogue="catalogue.json",
        public_url="http://localhost:8000",
        timezone="UTC",
        source_urls={"github": GH, "pypi": PYPI, "gitlab": GITLAB, "bitbucket": BB, "codeberg": CODEBERG,
                     "pypistats": PYPISTATS},
        github_graphql_url=GH + "/graphql",
        github_tokens=tuple(SecretStr(t) for t in tokens),
    )


def packages_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A catalogue.packages-like frame; rows give repo ('host:owner/name') and pypi."""
    out = []
    for i, row in enumerate(rows, start=1):
        repo = row.get("repo")
        host = owner = name = key = None
        if repo:
            host, _, rest = repo.partition(":")
            owner, _, name = rest.rpartition("/")
            key = f"{host}:{owner}/{name}".lower()
        out.append({
            "id": i, "slug": f"pkg-{i}", "repo_host": host, "repo_owner": owner, "repo_name": name,
            "repo_key": key, "pypi_name": row.get("pypi"), "repo_url_problem": row.get("problem"),
        })
    return pl.DataFrame(out, schema={"id": pl.Int64, "slug": pl.String, "repo_host": pl.String,
                                     "repo_owner": pl.String, "repo_name": pl.String, "repo_key": pl.String,
                                     "pypi_name": pl.String, "repo_url_problem": pl.String})


def etag_of(body: str) -> str:
    return '"' + hashlib.sha1(body.encode()).hexdigest()[:16] + '"'


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    stars: int = 5
    default_branch: str = "main"
    contributors: list[dict[str, Any]] = field(default_factory=list)
    participation_202: int = 0  # answer 202 this many times first
    empty: bool = False
    blocked: bool = False
    link_host: str | None = None  # send Link next pages to this host instead
    pushed_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


@dataclass
class Fake:
    repos: dict[str, Repo] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # old full name (lower) -> new (lower)
    pypi: dict[str, dict[str, Any]] = field(default_factory=dict)
    quota: int = 5000
    quota_by_token: dict[str, int] = field(default_factory=dict)
    reset_in: int = 3600
    now: float = field(default_factory=time.time)
    faults: Counter[str] = field(default_factory=Counter)  # path substring -> remaining 500s
    secondary: Counter[str] = field(default_factory=Counter)  # path substring -> remaining 403s
    malformed: Counter[str] = field(default_factory=Counter)
    redirect_offhost: set[str] = field(default_factory=set)
    requests: list[httpx.Request] = field(default_factory=list)
    used_by_token: Counter[str] = field(default_factory=Counter)
    secondary_retry_after: str | None = "0"  # None: secondary 403s without retry-after
    gone: set[str] = field(default_factory=set)  # repo full names (lower) / pypi names answering 410
    drain_after: dict[str, int] = field(default_factory=dict)  # token -> spent elsewhere after n uses
    delay_s: float = 0.0
    token_log: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    quota_403s: list[tuple[str, dict[str, int], int]] = field(default_factory=list)  # + request index
    times: list[float] = field(default_factory=list)  # monotonic time of every request
    stats: dict[str, int] = field(default_factory=dict)  # pypistats: PEP 503 name -> last_month (else 404)
    stats_429: Counter[str] = field(default_factory=Counter)  # path substring -> remaining pypistats 429s
    stats_retry_after: str = "1"
    stats_last_modified: str | None = None  # pypistats answers with this Last-Modified and no ETag

    def add_repo(self, full: str, **kw: Any) -> Repo:
        owner, name = full.split("/")
        repo = Repo(owner, name, id=1000 + len(self.repos), **kw)
        if not repo.contributors:
            repo.contributors = [{"login": f"user{i}", "contributions": 100 - i} for i in range(3)]
        self.repos[full.lower()] = repo
        return repo

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async if self.delay_s else self.handle)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay_s)
        return self.handle(request)

    # ------------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        url = str(request.url)
        for sub in list(self.faults):
            if self.faults[sub] > 0 and sub in url:
                self.faults[sub] -= 1
                return httpx.Response(502, text="bad gateway")
        if url.startswith(GH):
            return self.github(request, url[len(GH):])
        if url.startswith(PYPI):
            return self.pypi_answer(request, url[len(PYPI):])
        if url.startswith(GITLAB):
            return self.gitlab(request, url[len(GITLAB):])
        if url.startswith(BB):
            return self.bitbucket(request, url[len(BB):])
        if url.startswith(CODEBERG):
            return self.codeberg(request, url[len(CODEBERG):])
        if url.startswith(PYPISTATS):
            return self.pypistats(request, url[len(PYPISTATS):])
        raise AssertionError(f"request to an unexpected host: {url}")

    def _json(self, request: httpx.Request, payload: Any, headers: dict[str, str] | None = None,
              status: int = 200) -> httpx.Response:
        body = json.dumps(payload)
        etag = etag_of(body)
        headers = dict(headers or {})
        headers["etag"] = etag
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers=headers)
        for sub in list(self.malformed):
            if self.malformed[sub] > 0 and sub in str(request.url):
                self.malformed[sub] -= 1
                return httpx.Response(status, text=body[: len(body) // 2], headers=headers)
        return httpx.Response(status, text=body, headers=headers)

    def github(self, request: httpx.Request, path: str) -> httpx.Response:
        auth = request.headers.get("authorization")
        token = auth.split()[-1] if auth else "anonymous"
        if path == "/user":  # each token an account of its own (the simulator has shared ones)
            if not auth:
                return httpx.Response(401, json={"message": "Requires authentication"})
            return httpx.Response(200, json={"login": "acct-" + hashlib.sha256(token.encode()).hexdigest()[:8]})
        if path == "/rate_limit":  # free, like GitHub's
            core = {"limit": 5000, "remaining": max(0, self.quota_by_token.get(token, self.quota)),
                    "reset": int(self.now + self.reset_in)}
            return httpx.Response(200, json={"resources": {"core": core, "graphql": core}, "rate": core})
        if token in self.drain_after and self.used_by_token[token] >= self.drain_after[token]:
            self.quota_by_token[token] = 0  # another client spent this token's quota meanwhile
        remaining = self.quota_by_token.get(token, self.quota)
        rl = {"x-ratelimit-limit": "5000", "x-ratelimit-reset": str(int(self.now + self.reset_in))}
        for sub in list(self.secondary):
            if self.secondary[sub] > 0 and sub in path:
                self.secondary[sub] -= 1
                extra = {} if self.secondary_retry_after is None else {"retry-after": self.secondary_retry_after}
                return httpx.Response(403, headers={**rl, "x-ratelimit-remaining": str(remaining), **extra},
                                      text='{"message": "You have exceeded a secondary rate limit"}')
        snapshot = {t: q for t, q in self.quota_by_token.items()}
        if remaining <= 0:
            self.quota_403s.append((token, snapshot, len(self.requests) - 1))
            return httpx.Response(403, headers={**rl, "x-ratelimit-remaining": "0"},
                                  text='{"message": "API rate limit exceeded"}')
        self.token_log.append((token, snapshot))
        if path == "/graphql":
            return self.graphql(request, rl, token)
        conditional = request.headers.get("if-none-match")
        response = self.github_rest(request, path)
        if not (response.status_code == 304 and auth and conditional):
            remaining -= 1
            self.quota_by_token[token] = remaining
            self.used_by_token[token] += 1
        response.headers.update({**rl, "x-ratelimit-remaining": str(remaining)})
        return response

    def _find(self, path: str) -> tuple[Repo | None, str, httpx.Response | None]:
        parts = path.split("?")[0].split("/")
        if parts[1] == "repositories":
            repo_id = int(parts[2])
            repo = next((r for r in self.repos.values() if r.id == repo_id), None)
            return repo, "/".join(parts[3:]), None
        full = f"{parts[2]}/{parts[3]}".lower()
        rest = "/".join(parts[4:])
        if full in self.renamed:
            target = self.repos[self.renamed[full]]
            query = ("?" + path.split("?", 1)[1]) if "?" in path else ""
            location = f"{GH}/repositories/{target.id}" + (f"/{rest}" if rest else "") + query
            if full in self.redirect_offhost:
                location = "https://evil.test/repositories/1"
            return None, rest, httpx.Response(301, headers={"location": location},
                                              text='{"message": "Moved Permanently"}')
        return self.repos.get(full), rest, None

    def github_rest(self, request: httpx.Request, path: str) -> httpx.Response:
        repo, rest, redirect = self._find(path)
        if redirect is not None:
            return redirect
        if repo is None:
            return httpx.Response(404, text='{"message": "Not Found"}')
        if f"{repo.owner}/{repo.name}".lower() in self.gone:
            return httpx.Response(410, text='{"message": "Gone"}')
        if repo.blocked:
            return httpx.Response(451, text='{"message": "Repository access blocked"}')
        query = dict(httpx.URL(path).params)
        if rest == "":
            return self._json(request, {"id": repo.id, "full_name": f"{repo.owner}/{repo.name}",
                                        "default_branch": repo.default_branch,
                                        "stargazers_count": repo.stars, "pushed_at": repo.pushed_at,
                                        "size": 0 if repo.empty else 10})
        if rest == "stats/participation":
            if repo.empty:
                return httpx.Response(204)
            if repo.participation_202 > 0:
                repo.participation_202 -= 1
                return httpx.Response(202, text="{}")
            return self._json(request, {"all": [1] * 52, "owner": [0] * 52})
        if rest == "contributors":
            if repo.empty:
                return httpx.Response(204)
            page = int(query.get("page", "1"))
            per = int(query.get("per_page", "30"))
            chunk = repo.contributors[(page - 1) * per: page * per]
            headers = {}
            if page * per < len(repo.contributors):
                base = f"{repo.link_host or GH}/repositories/{repo.id}/contributors?per_page={per}"
                headers["link"] = f'<{base}&page={page + 1}>; rel="next", <{base}&page=99>; rel="last"'
            return self._json(request, chunk, headers)
        if rest == "commits":
            if repo.empty:
                return httpx.Response(409, text='{"message": "Git Repository is empty."}')
            assert query.get("sha") in (None, repo.default_branch)
            return self._json(request, [{"sha": "abc", "commit": {"committer": {"date": "2026-10-01T00:00:00Z"}}}])
        return httpx.Response(404, text='{"message": "Not Found"}')

    def graphql(self, request: httpx.Request, rl: dict[str, str], token: str) -> httpx.Response:
        import re

        query = json.loads(request.content)["query"]
        data: dict[str, Any] = {"rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "x"}}
        errors = []
        for alias, owner, name in re.findall(r'(r\d+): repository\(owner: "([^"]+)", name: "([^"]+)"\)', query):
            full = f"{owner}/{name}".lower()
            full = self.renamed.get(full, full)
            repo = self.repos.get(full)
            if repo is None:
                data[alias] = None
                errors.append({"type": "NOT_FOUND", "path": [alias], "message": "Could not resolve"})
            else:
                data[alias] = {"nameWithOwner": f"{repo.owner}/{repo.name}", "stargazerCount": repo.stars,
                               "pushedAt": repo.pushed_at, "isEmpty": repo.empty,
                               "defaultBranchRef": {"name": repo.default_branch}}
        remaining = self.quota_by_token.get(token, self.quota) - 1
        self.quota_by_token[token] = remaining
        self.used_by_token[token] += 1
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = errors
        return httpx.Response(200, text=json.dumps(body),
                              headers={**rl, "x-ratelimit-remaining": str(remaining),
                                       "x-ratelimit-resource": "graphql"})

    def pypi_answer(self, request: httpx.Request, path: str) -> httpx.Response:
        parts = path.strip("/").split("/")
        name = parts[1]
        if name != name.lower():
            return httpx.Response(301, headers={"location": f"/{parts[0]}/{name.lower()}/" +
                                                ("json" if parts[0] == "pypi" else "")})
        project = self.pypi.get(name)
        if name in self.gone:
            return httpx.Response(410, text='{"message": "Gone"}')
        if project is None:
            return httpx.Response(404, text='{"message": "Not Found"}')
        if parts[0] == "simple":
            return self._json(request, {"meta": {"api-version": "1.4"}, "name": name, "files": [],
                                        "project-status": {"status": "active"}})
        return self._json(request, project, {"x-pypi-last-serial": "42"})

    def pypistats(self, request: httpx.Request, path: str) -> httpx.Response:
        """pypistats.org: `/api/packages/<name>/recent|overall`, 404 `404` (text) for unknown names,
        429 with retry-after while `stats_429` says so."""
        for sub in list(self.stats_429):
            if self.stats_429[sub] > 0 and sub in path:
                self.stats_429[sub] -= 1
                return httpx.Response(429, text="429 RATE LIMIT EXCEEDED",
                                      headers={"retry-after": self.stats_retry_after})
        parts = path.split("?")[0].strip("/").split("/")
        name, endpoint = parts[2], parts[3]
        if name not in self.stats:
            return httpx.Response(404, text="404", headers={"content-type": "text/html; charset=utf-8"})
        month = self.stats[name]
        if self.stats_last_modified:  # validators by date only (what a plain Flask app behind a cache sends)
            headers = {"last-modified": self.stats_last_modified}
            if request.headers.get("if-modified-since") == self.stats_last_modified:
                return httpx.Response(304, headers=headers)
            payload = {"data": {"last_month": month}, "package": name, "type": "recent_downloads"}
            if endpoint == "overall":
                payload = {"data": [], "package": name, "type": "overall_downloads"}
            return httpx.Response(200, text=json.dumps(payload), headers=headers)
        if endpoint == "recent":
            return self._json(request, {"data": {"last_day": month // 30, "last_month": month,
                                                 "last_week": month // 4},
                                        "package": name, "type": "recent_downloads"})
        days = [{"category": "without_mirrors", "date": f"2026-10-{d:02d}", "downloads": month // 30}
                for d in range(1, 31)]
        return self._json(request, {"data": days, "package": name, "type": "overall_downloads"})

    def gitlab(self, request: httpx.Request, path: str) -> httpx.Response:
        if path.startswith("/projects/group%2Fproj"):
            return self._json(request, {"id": 7, "path_with_namespace": "group/proj", "star_count": 3})
        if path.startswith("/projects/7/repository/commits"):
            page = int(dict(httpx.URL(path).params).get("page", "1"))
            headers = {"x-next-page": str(page + 1)} if page < 3 else {}
            date = {1: "2099-10-01T00:00:00Z", 2: "2000-01-01T00:00:00Z", 3: "1999-01-01T00:00:00Z"}[page]
            return self._json(request, [{"id": f"c{page}", "committed_date": date}], headers)
        if path.startswith("/projects/7/repository/contributors"):
            return self._json(request, [{"name": "A", "commits": 3}])
        return httpx.Response(404, text='{"message": "404 Project Not Found"}')

    def bitbucket(self, request: httpx.Request, path: str) -> httpx.Response:
        if path == "/repositories/ws/slug":
            return self._json(request, {"full_name": "ws/slug", "mainbranch": {"name": "main"}})
        if path.startswith("/repositories/ws/slug/commits"):
            return self._json(request, {"values": [{"hash": "h", "date": "2026-10-01T00:00:00+00:00"}]})
        return httpx.Response(404, text='{"type": "error"}')

    def codeberg(self, request: httpx.Request, path: str) -> httpx.Response:
        """cb/proj: three commit pages via X-HasMore (the second reaches past the window); cb/empty: 409;
        cb/offhost: a Link to another host on page 1."""
        parsed = httpx.URL(path)
        route, params = parsed.path, dict(parsed.params)
        repos = {"/repos/cb/proj": False, "/repos/cb/empty": True, "/repos/cb/offhost": False}
        if route in repos:
            return self._json(request, {"id": 9, "full_name": route.removeprefix("/repos/"), "stars_count": 4,
                                        "forks_count": 1, "watchers_count": 2, "empty": repos[route],
                                        "default_branch": "main", "description": "cb"})
        if route == "/repos/cb/empty/commits":
            return httpx.Response(409, json={"message": "Git Repository is empty.", "url": "x"})
        if route == "/repos/cb/proj/commits":
            page = int(params.get("page", "1"))
            date = {1: "2099-10-01T00:00:00+02:00", 2: "2000-01-01T00:00:00Z", 3: "1999-01-01T00:00:00Z"}[page]
            return self._json(request, [{"sha": f"c{page}", "created": date, "commit": {"committer": {"date": date}}}],
                              {"x-hasmore": "true" if page < 3 else "false", "x-total-count": "3"})
        if route == "/repos/cb/offhost/commits":
            date = "2099-10-01T00:00:00Z"
            return self._json(request, [{"sha": "c1", "commit": {"committer": {"date": date}}}],
                              {"link": '<https://evil.test/api/v1/repos/cb/offhost/commits?page=2>; rel="next"'})
        return httpx.Response(404, json={"errors": None, "message": "The target couldn't be found.", "url": "x"})
