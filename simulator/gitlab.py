"""GitLab v4: project, default-branch commits and contributors, with GitLab's pagination headers."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, quote, urlencode

from simulator.core import Resp, SimState, json_resp
from simulator.params import int_param, norm_time
from simulator.world import Package, gh_time


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


def serve(state: SimState, base: str, ident: str, sub: str, query: str) -> Resp:
    w = state.world
    p = None
    if ident.isdigit():
        n = int(ident) - 1_000_000
        if n > 0 and n % 3 == 0 and n // 3 <= w.n:
            cand = w.package(n // 3)
            p = cand if cand.host == "gitlab" else None
    else:
        p = w.find_gitlab(ident)
    if p is None:
        return not_found()
    q = parse_qs(query)
    if sub == "":
        return json_resp(project_json(state, p, base), etag="weak")
    if sub == "/repository/contributors":
        people = [c for c in w.contributors_generic(p.id)]
        page, per_page = int_param(q, "page", 1, 1, 10**6), int_param(q, "per_page", 20, 1, 100)
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
    page, per_page = int_param(q, "page", 1, 1, 10**6), int_param(q, "per_page", 20, 1, 100)
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
