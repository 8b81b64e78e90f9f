"""GitHub REST v3 (as on GitHub Enterprise: ``{base}/api/v3``), built from the world."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlencode

from simulator.core import Resp, SimState, fingerprint, json_resp
from simulator.model import Package, gh_time, sha1
from simulator.world import is_org

DOCS = "https://docs.github.com/rest"


def not_found(doc: str = "repos/repos#get-a-repository") -> Resp:
    return json_resp({"message": "Not Found", "documentation_url": f"{DOCS}/{doc}", "status": "404"}, 404)


def http_date(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC), usegmt=True)


def node_id(prefix: str, n: int) -> str:
    return base64.b64encode(f"{prefix}{n}".encode()).decode()


def user_json(api: str, login: str, uid: int, kind: str = "User") -> dict:
    u = f"{api}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": node_id("04:User", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
        "url": u, "html_url": f"https://github.com/{login}", "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}", "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs", "repos_url": f"{u}/repos", "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events", "type": kind, "user_view_type": "public",
        "site_admin": False,
    }


# Accounts: several tokens may belong to one account, as on GitHub (a user's personal access tokens
# share its limits). A token's account is the part before its first "+" ("alice+1" and "alice+2": one
# account; a token without "+" is an account of its own). Its login is derived, never the token's text.
ACCOUNT_SEP = "+"


def account_of(token: str) -> str:
    """The account part of a token (what its limits are counted by)."""
    return token.split(ACCOUNT_SEP, 1)[0]


def login_for(token: str) -> str:
    """The login `GET /user` answers for a token: `user-` and a short digest of its account part."""
    return "user-" + fingerprint(account_of(token)).removeprefix("tok_")


def authenticated_user(api: str, token: str | None) -> Resp:
    """`GET /user` ("Get the authenticated user"): the token's account, or 401 without a token."""
    if token is None:
        return json_resp({"message": "Requires authentication",
                          "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                          "status": "401"}, 401)
    login = login_for(token)
    body = user_json(api, login, owner_id(login))
    body.update({"name": None, "company": None, "blog": "", "location": None, "email": None, "hireable": None,
                 "bio": None, "twitter_username": None, "public_repos": 0, "public_gists": 0, "followers": 0,
                 "following": 0, "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"})
    return json_resp(body)


def owner_id(login: str) -> int:
    return 10_000 + int(sha1("owner", login.lower())[:8], 16) % 90_000_000


def pushed_at(state: SimState, p: Package) -> datetime:
    commits = state.world.commits(p.id)
    if commits:
        return commits[0].date + timedelta(seconds=7)
    return p.repo_created + timedelta(minutes=3)


def updated_at(state: SimState, p: Package) -> datetime:
    """Repository ``updated_at`` (any change: push, stars, settings); its REST ``Last-Modified``."""
    pushed = pushed_at(state, p)
    return max(pushed, state.world.now - timedelta(days=(p.id * 7919) % 200 + 1)).replace(microsecond=0)


def repo_json(state: SimState, p: Package, api: str, token: bool = True) -> dict:
    """``GET /repos/{owner}/{repo}``; ``token``: the request was authenticated (adds ``permissions``)."""
    full = p.full_name
    r = f"{api}/repos/{full}"
    pushed = pushed_at(state, p)
    updated = updated_at(state, p)
    lic = None
    if p.license:
        lic = {"key": p.license[0], "name": p.license[1], "spdx_id": p.license[2],
               "url": None if p.license[0] == "other" else f"{api}/licenses/{p.license[0]}",
               "node_id": node_id("07:License", p.license[0].__len__())}
    org = is_org(p.owner)
    owner_kind = "Organization" if org else "User"
    out = {
        "id": p.repo_id, "node_id": node_id("010:Repository", p.repo_id), "name": p.name,
        "full_name": full, "private": False,
        "owner": user_json(api, p.owner, owner_id(p.owner), owner_kind),
        "html_url": f"https://github.com/{full}", "description": p.description, "fork": p.fork,
        "url": r, "forks_url": f"{r}/forks", "keys_url": f"{r}/keys{{/key_id}}",
        "collaborators_url": f"{r}/collaborators{{/collaborator}}", "teams_url": f"{r}/teams",
        "hooks_url": f"{r}/hooks", "issue_events_url": f"{r}/issues/events{{/number}}",
        "events_url": f"{r}/events", "assignees_url": f"{r}/assignees{{/user}}",
        "branches_url": f"{r}/branches{{/branch}}", "tags_url": f"{r}/tags",
        "blobs_url": f"{r}/git/blobs{{/sha}}", "git_tags_url": f"{r}/git/tags{{/sha}}",
        "git_refs_url": f"{r}/git/refs{{/sha}}", "trees_url": f"{r}/git/trees{{/sha}}",
        "statuses_url": f"{r}/statuses/{{sha}}", "languages_url": f"{r}/languages",
        "stargazers_url": f"{r}/stargazers", "contributors_url": f"{r}/contributors",
        "subscribers_url": f"{r}/subscribers", "subscription_url": f"{r}/subscription",
        "commits_url": f"{r}/commits{{/sha}}", "git_commits_url": f"{r}/git/commits{{/sha}}",
        "comments_url": f"{r}/comments{{/number}}", "issue_comment_url": f"{r}/issues/comments{{/number}}",
        "contents_url": f"{r}/contents/{{+path}}", "compare_url": f"{r}/compare/{{base}}...{{head}}",
        "merges_url": f"{r}/merges", "archive_url": f"{r}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{r}/downloads", "issues_url": f"{r}/issues{{/number}}",
        "pulls_url": f"{r}/pulls{{/number}}", "milestones_url": f"{r}/milestones{{/number}}",
        "notifications_url": f"{r}/notifications{{?since,all,participating}}",
        "labels_url": f"{r}/labels{{/name}}", "releases_url": f"{r}/releases{{/id}}",
        "deployments_url": f"{r}/deployments",
        "created_at": gh_time(p.repo_created), "updated_at": gh_time(updated), "pushed_at": gh_time(pushed),
        "git_url": f"git://github.com/{full}.git", "ssh_url": f"git@github.com:{full}.git",
        "clone_url": f"https://github.com/{full}.git", "svn_url": f"https://github.com/{full}",
        "homepage": (p.homepage or None) if p.id % 3 == 0 else p.homepage,
        "size": 0 if p.status == "empty" else 20 + (p.id * 37) % 9000,
        "stargazers_count": p.stars, "watchers_count": p.stars,
        "language": None if p.status == "empty" else "Python",
        "has_issues": True, "has_projects": True, "has_downloads": True, "has_wiki": p.id % 4 != 0,
        "has_pages": p.id % 9 == 0, "has_discussions": p.id % 11 == 0, "forks_count": p.forks,
        "mirror_url": None, "archived": p.archived, "disabled": False,
        "open_issues_count": p.open_issues, "license": lic, "allow_forking": True,
        "is_template": False, "web_commit_signoff_required": False, "topics": list(p.topics),
        "visibility": "public", "forks": p.forks, "open_issues": p.open_issues, "watchers": p.stars,
        "default_branch": p.default_branch,
    }
    # as recorded: an authenticated read of someone else's public repository carries `permissions`
    # (pull only) and `temp_clone_token: ""`; anonymous reads have no `permissions` and a null token;
    # repositories of organizations add `custom_properties` and `organization`
    if token:
        out["permissions"] = {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True}
        out["temp_clone_token"] = ""
    else:
        out["temp_clone_token"] = None
    if org:
        out["custom_properties"] = {}
        out["organization"] = user_json(api, p.owner, owner_id(p.owner), "Organization")
    out["network_count"] = p.forks
    out["subscribers_count"] = p.subscribers
    if p.fork:
        parent_owner = "upstream-" + p.owner.lower()
        parent = {k: v for k, v in out.items() if k not in (
            "network_count", "subscribers_count", "permissions", "custom_properties", "organization")}
        parent.update({"id": p.repo_id + 1, "full_name": f"{parent_owner}/{p.name}", "fork": False,
                       "owner": user_json(api, parent_owner, owner_id(parent_owner)),
                       "html_url": f"https://github.com/{parent_owner}/{p.name}",
                       "url": f"{api}/repos/{parent_owner}/{p.name}",
                       "stargazers_count": p.stars * 4 + 10, "watchers_count": p.stars * 4 + 10,
                       "watchers": p.stars * 4 + 10})
        out["parent"] = parent
        out["source"] = parent
    return out


def blocked(p: Package) -> Resp:
    if p.status == "blocked_dmca":
        return json_resp({"message": "Repository access blocked", "block": {
            "reason": "dmca", "created_at": "2021-03-04T17:31:20Z",
            "html_url": f"https://github.com/github/dmca/blob/master/2021/03/2021-03-04-{p.slug}.md"}}, 451)
    return json_resp({"message": "Repository access blocked", "block": {
        "reason": "tos", "created_at": "2022-06-10T08:12:40Z", "html_url": None}}, 403)


def moved(base: str, p: Package, rest: str, query: str) -> Resp:
    loc = f"{base}/api/v3/repositories/{p.repo_id}{rest}" + (f"?{query}" if query else "")
    return json_resp({"message": "Moved Permanently", "url": loc,
                      "documentation_url": f"{DOCS}/repos/repos#get-a-repository"}, 301,
                     {"Location": loc})


def resolve(state: SimState, base: str, kind: str, ident: str, rest: str, query: str
            ) -> tuple[Package | None, Resp | None]:
    """Find the repository a path names; returns (package, None) or (None, error response)."""
    if kind == "id":
        p = state.world.find_github_id(int(ident))
        if p is None or p.status == "deleted":
            return None, not_found()
    else:
        owner, _, name = ident.partition("/")
        p = state.world.find_github(owner, name)
        if p is None or p.status == "deleted":
            return None, not_found()
        if p.status == "renamed" and ident.lower() != p.full_name.lower():
            return None, moved(base, p, rest, query)
    if p.status.startswith("blocked"):
        return None, blocked(p)
    return p, None


def _int_param(q: dict, name: str, default: int, lo: int, hi: int) -> int:
    try:
        v = int(q.get(name, [default])[0])
    except ValueError:
        return default
    return max(lo, min(hi, v))


def link_header(base: str, p: Package, endpoint: str, q: dict, page: int, last: int) -> str | None:
    if last <= 1:
        return None

    def url(n: int) -> str:
        params = {k: v[0] for k, v in q.items() if k != "page"}
        params["page"] = str(n)
        return f"{base}/api/v3/repositories/{p.repo_id}/{endpoint}?{urlencode(params)}"

    parts = []
    if page > 1:
        parts.append(f'<{url(page - 1)}>; rel="prev"')
    if page < last:
        parts.append(f'<{url(page + 1)}>; rel="next"')
        parts.append(f'<{url(last)}>; rel="last"')
    if page > 1:
        parts.append(f'<{url(1)}>; rel="first"')
    return ", ".join(parts)


def repo(state: SimState, base: str, p: Package, q: dict, token: bool = True) -> Resp:
    resp = json_resp(repo_json(state, p, f"{base}/api/v3", token), etag="weak")
    resp.headers["Last-Modified"] = http_date(updated_at(state, p))  # like the recordings: updated_at
    return resp


def _stats_gate(state: SimState, p: Package, endpoint: str) -> Resp | None:
    if p.status == "empty":
        return Resp(204, b"", {}, None)
    f = state.faults
    if f.roll("stats202forever", "repo", p.full_name.lower()) and f.applies_to("github"):
        resp = computing(p, endpoint)
        resp.fault = "stats202forever"
        return resp
    key = (p.id, endpoint)
    n = state.stats_calls[key]
    state.stats_calls[key] = n + 1
    if n < p.stats_202:
        return computing(p, endpoint)
    return None


def computing(p: Package, endpoint: str) -> Resp:
    """202 Accepted "statistics are being computed", as GitHub sends it: body ``{}`` (JSON), an ETag,
    the usual rate-limit headers; charged like any answer. Never turned into a 304."""
    resp = json_resp({}, 202)
    resp.headers["ETag"] = f'"{sha1("computing", p.repo_id, endpoint)[:32]}"'
    return resp


def participation(state: SimState, base: str, p: Package, q: dict) -> Resp:
    gate = _stats_gate(state, p, "participation")
    if gate:
        return gate
    w = state.world
    return json_resp({"all": w.participation(p.id), "owner": w.participation_owner(p.id)}, etag="weak")


def commit_activity(state: SimState, base: str, p: Package, q: dict) -> Resp:
    gate = _stats_gate(state, p, "commit_activity")
    if gate:
        return gate
    w = state.world
    start = w.window_start()
    weeks = [[0] * 7 for _ in range(52)]
    for c in w.commits(p.id):
        if c.date < start:
            break
        secs = (c.date - start).total_seconds()
        wi = int(secs // (7 * 86400))
        if 0 <= wi < 52:
            weeks[wi][int(secs // 86400) % 7] += 1
    out = [{"days": d, "total": sum(d), "week": int((start + timedelta(weeks=i)).timestamp())}
           for i, d in enumerate(weeks)]
    return json_resp(out, etag="weak")


def contributors(state: SimState, base: str, p: Package, q: dict) -> Resp:
    if p.status == "empty":
        return Resp(204, b"", {}, None)
    if p.contributors_too_large:
        return json_resp({
            "message": "The history or contributor list is too large to list contributors for this "
                       "repository via the API.",
            "documentation_url": f"{DOCS}/repos/repos#list-repository-contributors", "status": "403"}, 403)
    anon = q.get("anon", ["false"])[0].lower() in ("1", "true")
    per_page = _int_param(q, "per_page", 30, 1, 100)
    page = _int_param(q, "page", 1, 1, 10**6)
    people = [c for c in state.world.contributors(p.id) if anon or c["type"] != "Anonymous"]
    last = max(1, -(-len(people) // per_page))
    chunk = people[(page - 1) * per_page: page * per_page]
    api = f"{base}/api/v3"
    out = []
    for c in chunk:
        if c["type"] == "Anonymous":
            out.append({"email": c["email"], "name": c["name"], "type": "Anonymous",
                        "contributions": c["contributions"]})
        else:
            u = user_json(api, c["login"], c["id"], c["type"])
            u["contributions"] = c["contributions"]
            out.append(u)
    resp = json_resp(out, etag="weak")
    resp.headers["Last-Modified"] = http_date(updated_at(state, p))  # recorded: the repository's
    link = link_header(base, p, "contributors", q, page, last)
    if link:
        resp.headers["Link"] = link
    return resp


def _parse_time(value: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def commit_json(api: str, p: Package, c, parent: str | None) -> dict:
    r = f"{api}/repos/{p.full_name}"
    author_user = None
    if c.author:
        kind = "Bot" if c.author.endswith("[bot]") else "User"
        author_user = user_json(api, c.author, owner_id(c.author), kind)
    email = f"{c.author or 'anon'}@users.noreply.github.com"
    tree = sha1("tree", c.sha)
    if c.committer:  # rebased / applied by a maintainer: a person, later than the author date
        committer = {"name": c.committer, "email": f"{c.committer}@users.noreply.github.com",
                     "date": gh_time(c.date)}
        committer_user = user_json(api, c.committer, owner_id(c.committer))
    else:  # merged or committed through the web UI
        committer = {"name": "GitHub", "email": "noreply@github.com", "date": gh_time(c.date)}
        committer_user = user_json(api, "web-flow", 19864447)
    return {
        "sha": c.sha, "node_id": node_id("06:Commit", int(c.sha[:8], 16)),
        "commit": {
            "author": {"name": c.author_name, "email": email, "date": gh_time(c.authored)},
            "committer": committer,
            "message": c.message, "tree": {"sha": tree, "url": f"{r}/git/trees/{tree}"},
            "url": f"{r}/git/commits/{c.sha}", "comment_count": 0,
            "verification": {"verified": False, "reason": "unsigned", "signature": None,
                             "payload": None, "verified_at": None},
        },
        "url": f"{r}/commits/{c.sha}", "html_url": f"https://github.com/{p.full_name}/commit/{c.sha}",
        "comments_url": f"{r}/commits/{c.sha}/comments", "author": author_user,
        "committer": committer_user,
        "parents": [] if parent is None else [
            {"sha": parent, "url": f"{r}/commits/{parent}",
             "html_url": f"https://github.com/{p.full_name}/commit/{parent}"}],
    }


def commits(state: SimState, base: str, p: Package, q: dict) -> Resp:
    if p.status == "empty":
        return json_resp({"message": "Git Repository is empty.",
                          "documentation_url": f"{DOCS}/commits/commits#list-commits", "status": "409"}, 409)
    history = state.world.commits(p.id)
    sha = q.get("sha", [p.default_branch])[0]
    start = 0
    if sha != p.default_branch:
        for i, c in enumerate(history):
            if c.sha.startswith(sha) and len(sha) >= 7:
                start = i
                break
        else:
            return json_resp({"message": f"No commit found for SHA: {sha}",
                              "documentation_url": f"{DOCS}/commits/commits#list-commits",
                              "status": "404"}, 404)
    since = until = None
    for name in ("since", "until"):
        if name in q:
            t = _parse_time(q[name][0])
            if t is None:
                return json_resp({"message": "Invalid request.\n\nInvalid time: " + q[name][0],
                                  "documentation_url": f"{DOCS}/commits/commits#list-commits",
                                  "status": "422"}, 422)
            if name == "since":
                since = t
            else:
                until = t
    selected = [
        (i, c) for i, c in enumerate(history[start:], start)
        if (since is None or c.date >= since) and (until is None or c.date <= until)
    ]
    per_page = _int_param(q, "per_page", 30, 1, 100)
    page = _int_param(q, "page", 1, 1, 10**6)
    last = max(1, -(-len(selected) // per_page))
    api = f"{base}/api/v3"
    out = []
    for i, c in selected[(page - 1) * per_page: page * per_page]:
        parent = history[i + 1].sha if i + 1 < len(history) else None
        out.append(commit_json(api, p, c, parent))
    resp = json_resp(out, etag="weak")
    if out:
        resp.headers["Last-Modified"] = http_date(selected[0][1].date)
    link = link_header(base, p, "commits", q, page, last)
    if link:
        resp.headers["Link"] = link
    return resp


def release_json(api: str, p: Package, rel) -> dict:
    rid = 1_000_000 + p.id * 101 + len(rel.version)
    r = f"{api}/repos/{p.full_name}"
    published = gh_time(rel.upload_time)
    return {
        "url": f"{r}/releases/{rid}", "assets_url": f"{r}/releases/{rid}/assets",
        "upload_url": f"https://uploads.github.com/repos/{p.full_name}/releases/{rid}/assets{{?name,label}}",
        "html_url": f"https://github.com/{p.full_name}/releases/tag/v{rel.version}", "id": rid,
        "author": user_json(api, p.owner, owner_id(p.owner)),
        "node_id": node_id("07:Release", rid), "tag_name": f"v{rel.version}",
        "target_commitish": p.default_branch, "name": f"v{rel.version}", "draft": False,
        "immutable": False, "prerelease": False, "created_at": published, "updated_at": published,
        "published_at": published, "assets": [], "tarball_url": f"{api}/repos/{p.full_name}/tarball/v{rel.version}",
        "zipball_url": f"{api}/repos/{p.full_name}/zipball/v{rel.version}",
        "body": f"Release {rel.version}",
    }


def releases_latest(state: SimState, base: str, p: Package, q: dict) -> Resp:
    rel = state.world.gh_latest_release(p.id) if p.status != "empty" else None
    if rel is None:
        return not_found("releases/releases#get-the-latest-release")
    return json_resp(release_json(f"{base}/api/v3", p, rel), etag="weak")


ENDPOINTS = {
    "": ("github.repo", repo),
    "/stats/participation": ("github.participation", participation),
    "/stats/commit_activity": ("github.commit_activity", commit_activity),
    "/contributors": ("github.contributors", contributors),
    "/commits": ("github.commits", commits),
    "/releases/latest": ("github.releases_latest", releases_latest),
}


def route_name(rest: str) -> str | None:
    hit = ENDPOINTS.get(rest)
    return hit[0] if hit else None


def handle(state: SimState, base: str, kind: str, ident: str, rest: str, query: str,
           token: bool = True) -> Resp:
    hit = ENDPOINTS.get(rest)
    if hit is None:
        return not_found("")
    p, err = resolve(state, base, kind, ident, rest, query)
    if err is not None:
        return err
    assert p is not None
    if state.faults.roll("repo5xx", "repo", p.full_name.lower()) and state.faults.applies_to("github"):
        return Resp(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {}, "text/html", quota=False,
                    fault="repo5xx")
    q = parse_qs(query, keep_blank_values=True)
    if hit[1] is repo:
        return repo(state, base, p, q, token)
    return hit[1](state, base, p, q)


def rate_limit_body(resources: dict[str, dict]) -> dict:
    return {"resources": resources, "rate": resources["core"]}
