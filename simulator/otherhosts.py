"""GitLab v4, Bitbucket 2.0 and Codeberg (Forgejo API v1): the endpoints a crawler needs, with their pagination."""

from __future__ import annotations

from datetime import timedelta, timezone
from urllib.parse import parse_qs, quote, urlencode

from simulator.core import Resp, SimState, json_resp
from simulator.world import Package, gh_time, sha1


def gitlab_404(what: str = "Project") -> Resp:
    return json_resp({"message": f"404 {what} Not Found"}, 404)


def bitbucket_404(path: str = "") -> Resp:
    return json_resp({"type": "error", "error": {"message": "Repository not found" if path else "Resource not found"}},
                     404)


def _ms(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _int(q: dict, name: str, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(q.get(name, [default])[0])))
    except ValueError:
        return default


def gitlab_project_json(state: SimState, p: Package, base: str) -> dict:
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


def gitlab(state: SimState, base: str, ident: str, sub: str, query: str) -> Resp:
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
        return gitlab_404()
    q = parse_qs(query)
    if sub == "":
        return json_resp(gitlab_project_json(state, p, base), etag="weak")
    if sub == "/repository/contributors":
        people = [c for c in w.contributors_generic(p.id)]
        page, per_page = _int(q, "page", 1, 1, 10**6), _int(q, "per_page", 20, 1, 100)
        return _gitlab_page(base, p, sub, q, people, page, per_page)
    history = list(w.commits(p.id))
    ref = q.get("ref_name", [p.default_branch])[0]
    if ref != p.default_branch:
        return gitlab_404("Commit")
    since = q.get("since", [None])[0]
    until = q.get("until", [None])[0]
    if since:
        history = [c for c in history if gh_time(c.date) >= _norm(since)]
    if until:
        history = [c for c in history if gh_time(c.date) <= _norm(until)]
    page, per_page = _int(q, "page", 1, 1, 10**6), _int(q, "per_page", 20, 1, 100)
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
    return _gitlab_page(base, p, sub, q, items, page, per_page, total=len(history), sliced=True)


def _norm(value: str) -> str:
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return gh_time(dt if dt.tzinfo else dt.replace(tzinfo=UTC)) or value


def _gitlab_page(base: str, p: Package, sub: str, q: dict, items: list, page: int, per_page: int,
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


def bitbucket(state: SimState, base: str, ws: str, slug: str, sub: str, query: str) -> Resp:
    w = state.world
    p = w.find_bitbucket(ws, slug)
    if p is None:
        return bitbucket_404("repo")
    api = f"{base}/2.0/repositories/{p.full_name}"
    uuid = "{" + f"{sha1('bb', p.id)[:8]}-{sha1('bb', p.id)[8:12]}-4{sha1('bb', p.id)[13:16]}-" \
        f"a{sha1('bb', p.id)[17:20]}-{sha1('bb', p.id)[20:32]}" + "}"
    if sub == "":
        commits = w.commits(p.id)
        updated = (commits[0].date if commits else p.repo_created) + timedelta(minutes=2)
        owner = p.owner
        return json_resp({
            "type": "repository", "full_name": p.full_name,
            "links": {"self": {"href": api}, "html": {"href": f"https://bitbucket.org/{p.full_name}"},
                      "commits": {"href": f"{api}/commits"}, "forks": {"href": f"{api}/forks"},
                      "watchers": {"href": f"{api}/watchers"},
                      "clone": [{"name": "https", "href": f"https://bitbucket.org/{p.full_name}.git"}]},
            "name": p.name, "slug": p.name, "description": p.description or "", "scm": "git",
            "website": p.homepage or None,
            "owner": {"display_name": owner, "type": "user", "nickname": owner,
                      "uuid": "{" + sha1("bbu", owner)[:8] + "-0000-4000-8000-000000000000}"},
            "workspace": {"type": "workspace", "slug": owner, "name": owner},
            "is_private": False, "project": {"type": "project", "key": "PROJ", "name": "Untitled project"},
            "fork_policy": "allow_forks", "created_on": p.repo_created.isoformat(),
            "updated_on": updated.isoformat(), "size": 100_000 + p.id * 11, "language": "python",
            "uuid": uuid, "mainbranch": {"name": p.default_branch, "type": "branch"},
            "override_settings": {"default_merge_strategy": True, "branching_model": True},
            "parent": None, "enforced_signed_commits": None, "has_issues": False, "has_wiki": False,
        }, etag="weak")
    q = parse_qs(query)
    history = w.commits(p.id)
    if sub not in ("/commits", f"/commits/{p.default_branch}"):
        return bitbucket_404("commit")
    pagelen = _int(q, "pagelen", 30, 1, 100)
    page = _int(q, "page", 1, 1, 10**6)
    chunk = history[(page - 1) * pagelen: page * pagelen]
    values = []
    for i, c in enumerate(chunk, (page - 1) * pagelen):
        parent = history[i + 1].sha if i + 1 < len(history) else None
        author = c.author_name
        values.append({
            "type": "commit", "hash": c.sha, "date": c.date.isoformat(),
            "author": {"type": "author",
                       "raw": f"{author} <{author.lower().replace(' ', '.')}@example.org>"},
            "message": c.message + "\n", "summary": {"type": "rendered", "raw": c.message + "\n",
                                                     "markup": "markdown", "html": f"<p>{c.message}</p>"},
            "links": {"self": {"href": f"{api}/commit/{c.sha}"},
                      "html": {"href": f"https://bitbucket.org/{p.full_name}/commits/{c.sha}"}},
            "parents": [] if parent is None else [{"hash": parent, "type": "commit",
                                                   "links": {"self": {"href": f"{api}/commit/{parent}"}}}],
            "repository": {"type": "repository", "full_name": p.full_name, "name": p.name, "uuid": uuid},
        })
    body: dict = {"values": values, "pagelen": pagelen, "page": page}
    if page * pagelen < len(history):
        params = {k: v[0] for k, v in q.items() if k != "page"}
        params["page"] = str(page + 1)
        body["next"] = f"{api}{sub}?{urlencode(params)}"
    if page > 1:
        params = {k: v[0] for k, v in q.items() if k != "page"}
        params["page"] = str(page - 1)
        body["previous"] = f"{api}{sub}?{urlencode(params)}"
    return json_resp(body, etag="weak")


# --------------------------------------------------------------------------------------------
# Codeberg (Forgejo, Gitea-compatible API v1)

CODEBERG_PAGE_MAX = 50  # Codeberg's MAX_RESPONSE_ITEMS
CODEBERG_PAGE_DEFAULT = 30  # Gitea's DEFAULT_PAGING_NUM


def codeberg_404(base: str = "https://codeberg.org") -> Resp:
    return json_resp({"errors": None, "message": "The target couldn't be found.", "url": f"{base}/api/swagger"},
                     404)


def _rfc3339(dt, offset_hours: int = 0) -> str:
    """Gitea renders times in RFC 3339 with an offset (the server's, or the committer's for commits)."""
    return dt.astimezone(timezone(timedelta(hours=offset_hours))).replace(microsecond=0).isoformat()


def _codeberg_user(base: str, login: str) -> dict:
    uid = 90_000 + int(sha1("cbu", login.lower())[:6], 16) % 900_000
    return {"id": uid, "login": login, "login_name": "", "source_id": 0, "full_name": "", "email":
            f"{login.lower()}@noreply.codeberg.org", "avatar_url": f"{base}/avatars/{sha1('av', login)[:32]}",
            "html_url": f"https://codeberg.org/{login}", "language": "", "is_admin": False,
            "last_login": "0001-01-01T00:00:00Z", "created": "2020-01-01T00:00:00+00:00", "restricted": False,
            "active": False, "prohibit_login": False, "location": "", "pronouns": "", "website": "",
            "description": "", "visibility": "public", "followers_count": 0, "following_count": 0,
            "starred_repos_count": 0, "username": login}


def codeberg_repo_json(state: SimState, p: Package, base: str) -> dict:
    commits = state.world.commits(p.id)
    updated = (commits[0].date if commits else p.repo_created) + timedelta(minutes=7)
    html = f"https://codeberg.org/{p.full_name}"
    api = f"{base}/api/v1/repos/{p.full_name}"
    return {
        "id": 300_000 + p.id * 7, "owner": _codeberg_user(base, p.owner), "name": p.name,
        "full_name": p.full_name, "description": p.description or "", "empty": not commits, "private": False,
        "fork": False, "template": False, "parent": None, "mirror": False, "size": 120 + p.id % 900,
        "language": "Python", "languages_url": f"{api}/languages", "html_url": html, "url": api, "link": "",
        "ssh_url": f"git@codeberg.org:{p.full_name}.git", "clone_url": f"{html}.git", "original_url": "",
        "website": p.homepage, "stars_count": p.stars, "forks_count": p.forks, "watchers_count": p.subscribers,
        "open_issues_count": p.open_issues, "open_pr_counter": p.open_issues // 3, "release_counter": 0,
        "default_branch": p.default_branch, "archived": False, "created_at": _rfc3339(p.repo_created),
        "updated_at": _rfc3339(updated), "archived_at": "1970-01-01T00:00:00Z",
        "permissions": {"admin": False, "push": False, "pull": True}, "has_issues": True,
        "internal_tracker": {"enable_time_tracker": True, "allow_only_contributors_to_track_time": True,
                             "enable_issue_dependencies": True},
        "has_wiki": True, "wiki_branch": p.default_branch, "globally_editable_wiki": False,
        "has_pull_requests": True, "has_projects": False, "has_releases": True, "has_packages": False,
        "has_actions": False, "ignore_whitespace_conflicts": False, "allow_merge_commits": True,
        "allow_rebase": True, "allow_rebase_explicit": True, "allow_squash_merge": True,
        "allow_fast_forward_only_merge": True, "allow_rebase_update": True,
        "default_delete_branch_after_merge": False, "default_merge_style": "merge",
        "default_allow_maintainer_edit": False, "default_update_style": "merge",
        "avatar_url": "", "internal": False, "mirror_interval": "", "object_format_name": "sha1",
        "mirror_updated": "0001-01-01T00:00:00Z", "repo_transfer": None, "topics": list(p.topics),
    }


def _codeberg_commit(base: str, p: Package, c, parent: str | None) -> dict:
    api = f"{base}/api/v1/repos/{p.full_name}"
    when = _rfc3339(c.date, p.id % 5 - 2)  # the committer's time zone: -02:00 .. +02:00
    email = f"{c.author_name.lower().replace(' ', '.')}@example.org"
    person = {"name": c.author_name, "email": email, "date": _rfc3339(c.authored, p.id % 5 - 2)}
    committer = dict(person, date=when)
    if c.committer:
        committer.update(name=c.committer, email=f"{c.committer.lower()}@example.org")
    user = _codeberg_user(base, c.author) if c.author and not c.author.endswith("[bot]") else None
    return {
        "url": f"{api}/git/commits/{c.sha}", "sha": c.sha, "created": when,
        "html_url": f"https://codeberg.org/{p.full_name}/commit/{c.sha}",
        "commit": {"url": f"{api}/git/commits/{c.sha}", "author": person, "committer": committer,
                   "message": c.message + "\n", "tree": {"url": f"{api}/git/trees/{sha1('t', c.sha)}",
                                                         "sha": sha1("t", c.sha), "created": when},
                   "verification": {"verified": False, "reason": "gpg.error.not_signed_commit",
                                    "signature": "", "signer": None, "payload": ""}},
        "author": user, "committer": user,
        "parents": [] if parent is None else [{"url": f"{api}/git/commits/{parent}", "sha": parent,
                                               "created": when}],
    }


def codeberg(state: SimState, base: str, owner: str, name: str, sub: str, query: str) -> Resp:
    w = state.world
    p = w.find_codeberg(owner, name)
    if p is None:
        return codeberg_404(base)
    if sub == "":
        return json_resp(codeberg_repo_json(state, p, base), etag="weak")
    history = w.commits(p.id)
    if not history:
        return json_resp({"message": "Git Repository is empty.", "url": f"{base}/api/swagger"}, 409)
    q = parse_qs(query)
    sha = q.get("sha", [""])[0]
    if sha and sha != p.default_branch and sha not in {c.sha for c in history}:
        return codeberg_404(base)
    if sha and sha != p.default_branch:
        history = history[next(i for i, c in enumerate(history) if c.sha == sha):]
    since, until = q.get("since", [None])[0], q.get("until", [None])[0]
    if since:
        history = tuple(c for c in history if gh_time(c.date) >= _norm(since))
    if until:
        history = tuple(c for c in history if gh_time(c.date) <= _norm(until))
    page = _int(q, "page", 1, 1, 10**6)
    limit = _int(q, "limit", CODEBERG_PAGE_DEFAULT, 1, CODEBERG_PAGE_MAX)
    start = (page - 1) * limit
    chunk = history[start: start + limit]
    items = [_codeberg_commit(base, p, c, history[i + 1].sha if i + 1 < len(history) else None)
             for i, c in enumerate(chunk, start)]
    total = len(history)
    pages = max(1, -(-total // limit))

    def url(n: int) -> str:
        params = {k: v[0] for k, v in q.items() if k != "page"}
        params.update({"limit": str(limit), "page": str(n)})
        return f"{base}/api/v1/repos/{quote(p.owner)}/{quote(p.name)}/commits?{urlencode(params)}"

    links = []
    if page < pages:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(pages)}>; rel="last"']
    if page > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
    headers = {"x-total-count": str(total), "X-Page": str(page), "X-PerPage": str(limit), "X-Total": str(total),
               "X-PageCount": str(pages), "X-HasMore": "true" if page < pages else "false",
               "Access-Control-Expose-Headers": "X-Total-Count, Link, X-Page, X-PerPage, X-Total, X-PageCount, "
                                                "X-HasMore"}
    if links:
        headers["Link"] = ",".join(links)
    return json_resp(items, headers=headers, etag="weak")
