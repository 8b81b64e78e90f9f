"""Bitbucket Cloud 2.0: repository and commits, paged inside the body (`values`, `next`)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode

from simulator.core import Resp, SimState, json_resp
from simulator.params import int_param
from simulator.world import sha1


def not_found(path: str = "") -> Resp:
    return json_resp({"type": "error", "error": {"message": "Repository not found" if path else "Resource not found"}},
                     404)


def serve(state: SimState, base: str, ws: str, slug: str, sub: str, query: str) -> Resp:
    w = state.world
    p = w.find_bitbucket(ws, slug)
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
    pagelen = int_param(q, "pagelen", 30, 1, 100)
    page = int_param(q, "page", 1, 1, 10**6)
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
