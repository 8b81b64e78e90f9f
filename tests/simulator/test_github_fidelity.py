"""GitHub REST fidelity against the recordings in shared/reference/upstream, over HTTP.

Last-Modified follows `updated_at`, If-Modified-Since, `permissions` / `organization` /
`temp_clone_token`, 202 "computing" answers, and author vs committer dates.
"""

from __future__ import annotations

import json
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest

from simulator.model import gh_time
from simulator.world import REBASED_SHARE, drf_datetime, is_org
from tests.simulator.helpers import TOKEN, client

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "upstream"
DEPS = REFERENCE / "github_vcr_djangopackages_fetch_metadata_django-deps.yaml"  # an organization's repo
PAGINATOR = REFERENCE / "github_vcr_djangopackages_fetch_metadata_archived_pydanny-dj-paginator.yaml"  # a user's
COMMITS = REFERENCE / "github_vcr_djangopackages_fetch_commits_django-deps.yaml"


def _cassette(path: Path) -> dict[str, tuple[dict, object]]:
    """URI -> (response headers, decoded body) of a vcrpy cassette (rate_limit calls left out)."""
    yaml = pytest.importorskip("yaml")
    if not path.exists():
        pytest.skip(f"reference file absent: {path}")
    out = {}
    for it in yaml.safe_load(path.read_text())["interactions"]:
        uri = it["request"]["uri"]
        if "rate_limit" not in uri:
            headers = {k.lower(): v[0] for k, v in it["response"]["headers"].items()}
            out[uri] = (headers, json.loads(it["response"]["body"]["string"]))
    return out


def _http_date(text: str):
    return parsedate_to_datetime(text)


@pytest.fixture(scope="module")
def gh(simulator):
    with client(simulator) as c:
        yield simulator, c


def test_recordings_last_modified_is_updated_at_and_commits_newest_committer_date():
    """What the simulator copies: the recorded relations themselves."""
    for path in (DEPS, PAGINATOR):
        rec = _cassette(path)
        repo_uri = next(u for u in rec if u.endswith(("/repos/django/deps", "/repos/pydanny/dj-paginator")))
        headers, body = rec[repo_uri]
        assert gh_time(_http_date(headers["last-modified"])) == body["updated_at"] != body["pushed_at"]
        contributors = next(v for u, v in rec.items() if "/contributors" in u)
        assert contributors[0]["last-modified"] == headers["last-modified"]
        assert body["temp_clone_token"] == "" and body["permissions"]["pull"] is True
        assert ("organization" in body) == (body["owner"]["type"] == "Organization")
    headers, commits = next(v for u, v in _cassette(COMMITS).items() if "/commits" in u)
    assert gh_time(_http_date(headers["last-modified"])) == commits[0]["commit"]["committer"]["date"]
    assert any(c["commit"]["author"]["date"] < c["commit"]["committer"]["date"] for c in commits)


def test_last_modified_follows_updated_at(gh):
    server, c = gh
    p = server.world.first("healthy", "active")
    repo = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN)
    body = repo.json()
    assert gh_time(_http_date(repo.headers["last-modified"])) == body["updated_at"]
    assert body["updated_at"] >= body["pushed_at"]
    contributors = c.get(f"/api/v3/repos/{p.full_name}/contributors?per_page=100", headers=TOKEN)
    assert contributors.headers["last-modified"] == repo.headers["last-modified"]
    commits = c.get(f"/api/v3/repos/{p.full_name}/commits?per_page=5", headers=TOKEN)
    newest = commits.json()[0]["commit"]["committer"]["date"]
    assert gh_time(_http_date(commits.headers["last-modified"])) == newest


def test_if_modified_since(make_simulator):
    server = make_simulator(packages=60)
    p = server.world.first("healthy")
    url = f"/api/v3/repos/{p.full_name}"
    with client(server) as c:
        first = c.get(url, headers=TOKEN)
        stamp = first.headers["last-modified"]
        remaining = int(first.headers["x-ratelimit-remaining"])
        same = c.get(url, headers={**TOKEN, "If-Modified-Since": stamp})
        assert same.status_code == 304 and same.content == b""
        assert int(same.headers["x-ratelimit-remaining"]) == remaining  # an authorised 304 is free
        earlier = format_datetime(_http_date(stamp).replace(year=_http_date(stamp).year - 1), usegmt=True)
        assert c.get(url, headers={**TOKEN, "If-Modified-Since": earlier}).status_code == 200
        # If-None-Match wins over If-Modified-Since when both are sent
        both = c.get(url, headers={**TOKEN, "If-Modified-Since": stamp, "If-None-Match": 'W/"other"'})
        assert both.status_code == 200
        assert c.get(url, headers={**TOKEN, "If-Modified-Since": "not a date"}).status_code == 200
        sub = f"{url}/contributors?per_page=100"
        stamp = c.get(sub, headers=TOKEN).headers["last-modified"]
        assert c.get(sub, headers={**TOKEN, "If-Modified-Since": stamp}).status_code == 304
        # PyPI sends no Last-Modified: If-Modified-Since never applies there
        q = server.world.first("on_pypi")
        r = c.get(f"/pypi/{q.pypi_name}/json", headers={"If-Modified-Since": stamp})
        assert r.status_code == 200
    not_modified = [e for e in server.requests() if e["status"] == 304]
    assert len(not_modified) == 2 and all(e["if_modified_since"] and e["charged"] == 0 for e in not_modified)


def test_permissions_organization_and_temp_clone_token(gh):
    server, c = gh
    w = server.world
    org = next(p for p in w.select("healthy") if is_org(p.owner))
    user = next(p for p in w.select("healthy") if not is_org(p.owner))
    with_token = c.get(f"/api/v3/repos/{org.full_name}", headers=TOKEN).json()
    assert with_token["permissions"] == {"admin": False, "maintain": False, "push": False, "triage": False,
                                         "pull": True}
    assert with_token["temp_clone_token"] == ""
    assert with_token["owner"]["type"] == "Organization"
    assert with_token["organization"]["login"] == org.owner and with_token["organization"]["type"] == "Organization"
    assert with_token["custom_properties"] == {}
    anonymous = c.get(f"/api/v3/repos/{org.full_name}").json()
    assert "permissions" not in anonymous and anonymous["temp_clone_token"] is None
    assert "organization" in anonymous
    mine = c.get(f"/api/v3/repos/{user.full_name}", headers=TOKEN).json()
    assert mine["owner"]["type"] == "User" and "organization" not in mine and "custom_properties" not in mine
    if DEPS.exists():
        _, real = next(v for u, v in _cassette(DEPS).items() if u.endswith("/repos/django/deps"))
        assert list(with_token) == [k for k in real if k in with_token]  # the recorded key order
        assert set(real) <= set(with_token), set(real) - set(with_token)
        assert set(real["organization"]) <= set(with_token["organization"])


def test_202_computing_as_github_sends_it(make_simulator):
    server = make_simulator(packages=250)
    p = next(x for x in server.world.select("stats_202", "healthy") if x.stats_202 == 2)
    url = f"/api/v3/repos/{p.full_name}/stats/participation"
    with client(server) as c:
        first = c.get(url, headers=TOKEN)
        second = c.get(url, headers={**TOKEN, "If-None-Match": first.headers["etag"]})
        third = c.get(url, headers=TOKEN)
    assert first.status_code == 202 and first.content == b"{}"
    assert first.headers["content-type"] == "application/json; charset=utf-8"
    assert first.headers["etag"] and "last-modified" not in first.headers
    assert first.headers["x-ratelimit-resource"] == "core"
    assert second.status_code == 202 and second.content == b"{}"  # never a 304 while computing
    used = [int(r.headers["x-ratelimit-used"]) for r in (first, second, third)]
    assert used == [used[0], used[0] + 1, used[0] + 2]  # charged like any answer
    assert third.status_code == 200 and third.headers["etag"] != first.headers["etag"]


def test_author_and_committer_dates_differ_for_a_share_of_commits(simulator):
    w = simulator.world
    histories = [w.commits(p.id) for p in w.select("healthy")]
    commits = [c for h in histories for c in h]
    rebased = [c for c in commits if c.authored != c.date]
    assert all(c.authored < c.date for c in rebased)  # the committer date is the later one
    assert abs(len(rebased) / len(commits) - REBASED_SHARE) < 0.05
    newest_differs = [h for h in histories if h and h[0].authored != h[0].date]
    assert len(newest_differs) > len(histories) * 0.15


def test_a_crawler_reading_the_author_date_fails_the_round_trip(gh):
    """last_updated is the committer date of the newest commit: REST, GraphQL and v4 agree; author dates do not."""
    server, c = gh
    w = server.world
    wrong = 0
    checked = 0
    for p in w.select("healthy", limit=80):
        if not w.commits(p.id):
            continue
        record = c.get(f"/api/v4/packages/{p.id}/").json()
        newest = c.get(f"/api/v3/repos/{p.full_name}/commits?per_page=1", headers=TOKEN).json()[0]["commit"]
        committed = drf_datetime(_iso(newest["committer"]["date"]))
        authored = drf_datetime(_iso(newest["author"]["date"]))
        assert record["last_updated"] == committed, p.slug
        wrong += authored != record["last_updated"]
        checked += 1
    assert checked > 40 and wrong > checked * 0.1
    p = next(p for p in w.select("healthy") if (h := w.commits(p.id)) and h[0].authored < h[0].date)
    q = (f'query {{ repository(owner: "{p.owner}", name: "{p.name}") {{ defaultBranchRef {{ target {{ '
         f'... on Commit {{ committedDate authoredDate }} }} }} }} }}')
    node = c.post("/api/graphql", json={"query": q}, headers=TOKEN).json()["data"]["repository"]
    target = node["defaultBranchRef"]["target"]
    assert target["committedDate"] == gh_time(w.commits(p.id)[0].date)
    assert target["authoredDate"] == gh_time(w.commits(p.id)[0].authored) < target["committedDate"]
    rest = c.get(f"/api/v3/repos/{p.full_name}/commits?per_page=1", headers=TOKEN).json()[0]
    assert rest["commit"]["committer"]["name"] != "GitHub" and rest["committer"]["login"] != "web-flow"


def _iso(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
