"""Codeberg (Forgejo, Gitea-compatible API v1): a repository and its commits, with Gitea's paging headers.

Modelled on Gitea's ``GetAllCommits`` / repository handlers, which Forgejo shares.
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from simulator.core import Resp, SimState, json_resp, norm_time, query_int
from simulator.model import Package, RepoHost, gh_time, sha1

NAME = "codeberg"
_PATH = re.compile(r"^/api/v1/repos/([^/]+)/([^/]+)(/commits)?/?$")


def route(state: SimState, method: str, path: str, query: str, base: str):
    m = _PATH.match(path)
    if not m or method not in ("GET", "HEAD"):
        return f"{NAME}.other", lambda: not_found(base)
    name = f"{NAME}.commits" if m.group(3) else f"{NAME}.repo"
    return name, lambda: answer(state, base, unquote(m.group(1)), unquote(m.group(2)), m.group(3) or "", query)


PAGE_MAX = 50  # Codeberg's MAX_RESPONSE_ITEMS
PAGE_DEFAULT = 30  # Gitea's DEFAULT_PAGING_NUM


def not_found(base: str = "https://codeberg.org") -> Resp:
    return json_resp({"errors": None, "message": "The target couldn't be found.", "url": f"{base}/api/swagger"},
                     404)


def _rfc3339(dt, offset_hours: int = 0) -> str:
    """Gitea renders times in RFC 3339 with an offset (the server's, or the committer's for commits)."""
    return dt.astimezone(timezone(timedelta(hours=offset_hours))).replace(microsecond=0).isoformat()


def _user(base: str, login: str) -> dict:
    uid = 90_000 + int(sha1("cbu", login.lower())[:6], 16) % 900_000
    return {"id": uid, "login": login, "login_name": "", "source_id": 0, "full_name": "", "email":
            f"{login.lower()}@noreply.codeberg.org", "avatar_url": f"{base}/avatars/{sha1('av', login)[:32]}",
            "html_url": f"https://codeberg.org/{login}", "language": "", "is_admin": False,
            "last_login": "0001-01-01T00:00:00Z", "created": "2020-01-01T00:00:00+00:00", "restricted": False,
            "active": False, "prohibit_login": False, "location": "", "pronouns": "", "website": "",
            "description": "", "visibility": "public", "followers_count": 0, "following_count": 0,
            "starred_repos_count": 0, "username": login}


def repo_json(state: SimState, p: Package, base: str) -> dict:
    commits = state.world.commits(p.id)
    updated = (commits[0].date if commits else p.repo_created) + timedelta(minutes=7)
    html = f"https://codeberg.org/{p.full_name}"
    api = f"{base}/api/v1/repos/{p.full_name}"
    return {
        "id": 300_000 + p.id * 7, "owner": _user(base, p.owner), "name": p.name,
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


def _commit(base: str, p: Package, c, parent: str | None) -> dict:
    api = f"{base}/api/v1/repos/{p.full_name}"
    when = _rfc3339(c.date, p.id % 5 - 2)  # the committer's time zone: -02:00 .. +02:00
    email = f"{c.author_name.lower().replace(' ', '.')}@example.org"
    person = {"name": c.author_name, "email": email, "date": _rfc3339(c.authored, p.id % 5 - 2)}
    committer = dict(person, date=when)
    if c.committer:
        committer.update(name=c.committer, email=f"{c.committer.lower()}@example.org")
    user = _user(base, c.author) if c.author and not c.author.endswith("[bot]") else None
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


def answer(state: SimState, base: str, owner: str, name: str, sub: str, query: str) -> Resp:
    w = state.world
    p = w.find_hosted(NAME, f"{owner}/{name}")
    if p is None:
        return not_found(base)
    if sub == "":
        return json_resp(repo_json(state, p, base), etag="weak")
    history = w.commits(p.id)
    if not history:
        return json_resp({"message": "Git Repository is empty.", "url": f"{base}/api/swagger"}, 409)
    q = parse_qs(query)
    sha = q.get("sha", [""])[0]
    if sha and sha != p.default_branch and sha not in {c.sha for c in history}:
        return not_found(base)
    if sha and sha != p.default_branch:
        history = history[next(i for i, c in enumerate(history) if c.sha == sha):]
    since, until = q.get("since", [None])[0], q.get("until", [None])[0]
    if since:
        history = tuple(c for c in history if gh_time(c.date) >= norm_time(since))
    if until:
        history = tuple(c for c in history if gh_time(c.date) <= norm_time(until))
    page = query_int(q, "page", 1, 1, 10**6)
    limit = query_int(q, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
    start = (page - 1) * limit
    chunk = history[start: start + limit]
    items = [_commit(base, p, c, history[i + 1].sha if i + 1 < len(history) else None)
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

def baseline(seq: Any, row: dict) -> None:
    """The crawl benchmark's sequential baseline: the repository, then its commits pages."""
    base = f"{seq.url}/api/v1/repos/{row['repo_owner']}/{row['repo_name']}"
    if seq.client.get(base).status_code != 200:
        return
    seq.pages(f"{base}/commits?limit=50&stat=false&verification=false&files=false",
              lambda c: ((c.get("commit") or {}).get("committer") or {}).get("date") or c.get("created"),
              lambda answer, _: answer.links.get("next", {}).get("url"))


HOST = RepoHost(
    name=NAME, share=0.015, domain="codeberg.org", prefix="/api/v1/", env=(("CODEBERG_API_URL", "/api/v1"),),
    route=route, v4_stars=True, v4_forks=True, baseline=baseline,
)
