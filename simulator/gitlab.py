"""GitLab (API v4): a project, its commits and contributors, with GitLab's pagination headers."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from simulator.core import Resp, SimState, json_resp, norm_time, query_int
from simulator.model import Package, RepoHost, gh_time

NAME = "gitlab"
_PATH = re.compile(r"^/api/v4/projects/([^/]+)(/repository/commits|/repository/contributors)?/?$")
_ROUTES = {"": f"{NAME}.project", "/repository/commits": f"{NAME}.commits",
           "/repository/contributors": f"{NAME}.contributors"}


def route(state: SimState, method: str, path: str, query: str, base: str):
    m = _PATH.match(path)
    if not m or method != "GET":
        return f"{NAME}.other", lambda: not_found()
    sub = m.group(2) or ""
    return _ROUTES[sub], lambda: answer(state, base, unquote(m.group(1)), sub, query)


def place(rng: random.Random, owner: str, name: str) -> tuple[str, str]:
    """A quarter of GitLab projects sit in a subgroup (``group/subgroup/name``)."""
    if rng.random() < 0.25:
        owner = f"{owner}/{rng.choice(('libs', 'django', 'contrib'))}"
    return owner, name


def not_found(what: str = "Project") -> Resp:
    return json_resp({"message": f"404 {what} Not Found"}, 404)


def _ms(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def project_json(state: SimState, p: Package, base: str) -> dict:
    commits = state.world.commits(p.id)
    ns_path, _, name = p.full_name.rpartition("/")
    last_activity = (commits[0].date if commits else p.repo_created) + timedelta(minutes=11)
    pid = 1_000_000 + p.id * 3
    web = f"https://gitlab.com/{p.full_name}"
    return {
        "id": pid, "description": p.description or "", "name": name,
        "name_with_namespace": f"{ns_path.replace('/', ' / ')} / {name}", "path": name,
        "path_with_namespace": p.full_name, "created_at": _ms(p.repo_created),
        "default_branch": p.default_branch, "tag_list": list(p.topics), "topics": list(p.topics),
        "ssh_url_to_repo": f"git@gitlab.com:{p.full_name}.git", "http_url_to_repo": f"{web}.git",
        "web_url": web, "readme_url": f"{web}/-/blob/{p.default_branch}/README.md",
        "forks_count": p.forks, "avatar_url": None, "star_count": p.stars,
        "last_activity_at": _ms(last_activity),
        "namespace": {"id": 50_000 + p.id, "name": ns_path.split("/")[-1], "path": ns_path.split("/")[-1],
                      "kind": "group" if "/" in ns_path else "user", "full_path": ns_path,
                      "parent_id": None, "avatar_url": None, "web_url": f"https://gitlab.com/{ns_path}"},
        "repository_storage": "default", "container_registry_image_prefix": f"registry.gitlab.com/{p.full_name}",
        "_links": {"self": f"{base}/api/v4/projects/{pid}"},
        "empty_repo": not commits, "archived": False, "visibility": "public",
        "open_issues_count": p.open_issues,
    }


def answer(state: SimState, base: str, ident: str, sub: str, query: str) -> Resp:
    w = state.world
    p = None
    if ident.isdigit():
        n = int(ident) - 1_000_000
        if n > 0 and n % 3 == 0 and n // 3 <= w.n:
            cand = w.package(n // 3)
            p = cand if cand.host == NAME else None
    else:
        p = w.find_hosted(NAME, ident)
    if p is None:
        return not_found()
    q = parse_qs(query)
    if sub == "":
        return json_resp(project_json(state, p, base), etag="weak")
    if sub == "/repository/contributors":
        people = contributors(state, p)
        page, per_page = query_int(q, "page", 1, 1, 10**6), query_int(q, "per_page", 20, 1, 100)
        return _page(base, p, sub, q, people, page, per_page)
    history = list(w.commits(p.id))
    ref = q.get("ref_name", [p.default_branch])[0]
    if ref != p.default_branch:
        return not_found("Commit")
    since = q.get("since", [None])[0]
    until = q.get("until", [None])[0]
    if since:
        history = [c for c in history if gh_time(c.date) >= norm_time(since)]
    if until:
        history = [c for c in history if gh_time(c.date) <= norm_time(until)]
    page, per_page = query_int(q, "page", 1, 1, 10**6), query_int(q, "per_page", 20, 1, 100)
    items = []
    for c in history[(page - 1) * per_page: page * per_page]:
        date = c.date.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
        authored = c.authored.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
        email = f"{(c.author or 'anon').replace('[bot]', '')}@example.org"
        committer = c.committer or c.author_name
        items.append({
            "id": c.sha, "short_id": c.sha[:8], "created_at": date, "parent_ids": [],
            "title": c.message, "message": c.message + "\n", "author_name": c.author_name,
            "author_email": email, "authored_date": authored, "committer_name": committer,
            "committer_email": f"{committer.lower()}@example.org" if c.committer else email,
            "committed_date": date, "trailers": {}, "extended_trailers": {},
            "web_url": f"https://gitlab.com/{p.full_name}/-/commit/{c.sha}",
        })
    return _page(base, p, sub, q, items, page, per_page, total=len(history), sliced=True)


def contributors(state: SimState, p: Package) -> list[dict]:
    """GitLab's contributors: name, email, commits, additions, deletions (commits desc)."""
    counts: dict[str, int] = {}
    for c in state.world.commits(p.id):
        counts[c.author_name] = counts.get(c.author_name, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"name": name, "email": f"{name.lower()}@example.org", "commits": n,
             "additions": n * (11 + p.id % 7), "deletions": n * (3 + p.id % 5)} for name, n in ranked]


def _page(base: str, p: Package, sub: str, q: dict, items: list, page: int, per_page: int,
                 total: int | None = None, sliced: bool = False) -> Resp:
    total = len(items) if total is None else total
    chunk = items if sliced else items[(page - 1) * per_page: page * per_page]
    pages = max(1, -(-total // per_page))
    headers = {"x-page": str(page), "x-per-page": str(per_page), "x-total": str(total),
               "x-total-pages": str(pages), "x-next-page": str(page + 1) if page < pages else "",
               "x-prev-page": str(page - 1) if page > 1 else ""}

    def url(n: int) -> str:
        params = {k: v[0] for k, v in q.items() if k not in ("page", "per_page")}
        params.update({"page": str(n), "per_page": str(per_page)})
        return f"{base}/api/v4/projects/{quote(p.full_name, safe='')}{sub}?{urlencode(params)}"

    links = []
    if page > 1:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if page < pages:
        links.append(f'<{url(page + 1)}>; rel="next"')
    links.append(f'<{url(1)}>; rel="first"')
    links.append(f'<{url(pages)}>; rel="last"')
    headers["Link"] = ", ".join(links)
    return json_resp(chunk, headers=headers, etag="weak")


def baseline(seq: Any, row: dict) -> None:
    """The crawl benchmark's sequential baseline: the project, then its commits and contributors pages."""
    path = quote(f"{row['repo_owner']}/{row['repo_name']}", safe="")
    project = seq.client.get(f"{seq.url}/api/v4/projects/{path}")
    if project.status_code != 200:
        return
    base = f"{seq.url}/api/v4/projects/{project.json()['id']}/repository"
    seq.pages(f"{base}/commits?per_page=100", lambda c: c.get("committed_date"),
              lambda answer, _: answer.links.get("next", {}).get("url"))
    seq.follow_links(f"{base}/contributors?per_page=100")


HOST = RepoHost(
    name=NAME, share=0.03, domain="gitlab.com", prefix="/api/v4/projects/", env=(("GITLAB_API_URL", "/api/v4"),),
    route=route, v4_stars=True, v4_forks=True, baseline=baseline, forced_after="many_contributors", place=place,
)
