"""Bitbucket (API 2.0): a repository (no stars) and its commits, paginated with ``pagelen``/``page``."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from simulator.core import Resp, SimState, json_resp, query_int
from simulator.model import RepoHost, sha1

NAME = "bitbucket"
_PATH = re.compile(r"^/2\.0/repositories/([^/]+)/([^/]+)(/commits(?:/[^/]+)?)?/?$")


def route(state: SimState, method: str, path: str, query: str, base: str):
    m = _PATH.match(path)
    if not m or method != "GET":
        return f"{NAME}.other", lambda: not_found()
    sub = m.group(3) or ""
    name = f"{NAME}.commits" if sub.startswith("/commits") else f"{NAME}.repo"
    return name, lambda: answer(state, base, unquote(m.group(1)), unquote(m.group(2)), sub, query)


def place(_rng: random.Random, owner: str, name: str) -> tuple[str, str]:
    """Bitbucket workspaces and repository slugs are lower case."""
    return owner.lower(), name.lower()


def not_found(path: str = "") -> Resp:
    return json_resp({"type": "error", "error": {"message": "Repository not found" if path else "Resource not found"}},
                     404)


def answer(state: SimState, base: str, ws: str, slug: str, sub: str, query: str) -> Resp:
    w = state.world
    p = w.find_hosted(NAME, f"{ws}/{slug}")
    if p is None:
        return not_found("repo")
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
        return not_found("commit")
    pagelen = query_int(q, "pagelen", 30, 1, 100)
    page = query_int(q, "page", 1, 1, 10**6)
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

def baseline(seq: Any, row: dict) -> None:
    """The crawl benchmark's sequential baseline: the repository, then its commits pages."""
    base = f"{seq.url}/2.0/repositories/{row['repo_owner']}/{row['repo_name']}"
    if seq.client.get(base).status_code != 200:
        return
    seq.pages(f"{base}/commits?pagelen=100", lambda c: c.get("date"), lambda _, body: body.get("next"))


HOST = RepoHost(
    name=NAME, share=0.03, domain="bitbucket.org", prefix="/2.0/", env=(("BITBUCKET_API_URL", "/2.0"),),
    route=route, v4_stars=False, v4_forks=False, baseline=baseline, forced_after="many_contributors", place=place,
)
