"""GitHub GraphQL behaviours of the simulator, over HTTP."""

from __future__ import annotations

import pytest

from tests.simulator.helpers import TOKEN, client

FIELDS = """
  stargazerCount forkCount watchers { totalCount } description homepageUrl isArchived isFork pushedAt
  licenseInfo { spdxId } repositoryTopics(first: 10) { nodes { topic { name } } }
  defaultBranchRef { name target { ... on Commit { committedDate oid } } }
  latestRelease { tagName publishedAt } issues(states: OPEN) { totalCount } nameWithOwner databaseId
"""


@pytest.fixture(scope="module")
def gql(simulator):
    with client(simulator) as c:
        def post(query, variables=None, headers=TOKEN):
            return c.post("/api/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        yield simulator, post


def test_aliased_batch_matches_rest(gql, simulator):
    server, post = gql
    w = server.world
    pkgs = w.select("healthy", limit=5)
    query = "query {\n" + "\n".join(
        f'  r{i}: repository(owner: "{p.owner}", name: "{p.name}") {{ {FIELDS} }}' for i, p in enumerate(pkgs)
    ) + "\n  rateLimit { cost remaining resetAt limit }\n}"
    r = post(query)
    assert r.status_code == 200
    body = r.json()
    assert "errors" not in body
    with client(server) as c:
        for i, p in enumerate(pkgs):
            node = body["data"][f"r{i}"]
            rest = c.get(f"/api/v3/repos/{p.full_name}", headers=TOKEN).json()
            assert node["stargazerCount"] == rest["stargazers_count"]
            assert node["forkCount"] == rest["forks_count"]
            assert node["watchers"]["totalCount"] == rest["subscribers_count"]
            assert node["description"] == rest["description"]
            assert node["pushedAt"] == rest["pushed_at"]
            assert node["isArchived"] == rest["archived"] and node["isFork"] == rest["fork"]
            assert node["nameWithOwner"] == rest["full_name"] and node["databaseId"] == rest["id"]
            assert node["defaultBranchRef"]["name"] == rest["default_branch"]
            newest = c.get(f"/api/v3/repos/{p.full_name}/commits?per_page=1", headers=TOKEN).json()[0]
            assert node["defaultBranchRef"]["target"]["oid"] == newest["sha"]
            assert node["defaultBranchRef"]["target"]["committedDate"] == newest["commit"]["committer"]["date"]
            assert [n["topic"]["name"] for n in node["repositoryTopics"]["nodes"]] == rest["topics"]
    rl = body["data"]["rateLimit"]
    assert rl["cost"] == 1 and rl["limit"] == 5000 and rl["remaining"] <= 4999
    assert rl["resetAt"].endswith("Z")


def test_missing_renamed_and_variables(gql):
    server, post = gql
    w = server.world
    ren = w.first("renamed")
    gone = w.first("deleted")
    q = f"""query($o: String!, $n: String!) {{
      a: repository(owner: $o, name: $n) {{ nameWithOwner }}
      b: repository(owner: "{gone.owner}", name: "{gone.name}") {{ nameWithOwner }}
    }}"""
    body = post(q, {"o": ren.url_owner, "n": ren.url_name}).json()
    assert body["data"]["a"]["nameWithOwner"] == ren.full_name
    assert body["data"]["b"] is None
    (err,) = body["errors"]
    assert err["type"] == "NOT_FOUND" and err["path"] == ["b"]
    assert err["message"] == f"Could not resolve to a Repository with the name '{gone.owner}/{gone.name}'."


def test_unknown_field_errors_like_github(gql):
    server, post = gql
    p = server.world.first("healthy")
    body = post(f'{{ r: repository(owner: "{p.owner}", name: "{p.name}") {{ stargazers_count }} }}').json()
    assert "data" not in body
    assert body["errors"][0]["message"] == "Field 'stargazers_count' doesn't exist on type 'Repository'"
    assert body["errors"][0]["extensions"]["code"] == "undefinedField"
    assert "Parse error" in post("{ r: repository(owner: ").json()["errors"][0]["message"]
    body = post('{ r: repository(owner: "a") { name } }').json()
    assert "missing required arguments: name" in body["errors"][0]["message"]
    body = post('{ r: repository(owner: "a", name: "b") { repositoryTopics { nodes { topic { name } } } } }').json()
    assert body["errors"][0]["type"] == "MISSING_PAGINATION_BOUNDARIES"


def test_unauthenticated_is_401(gql):
    _, post = gql
    r = post("{ rateLimit { remaining } }", headers={})
    assert r.status_code == 401
    assert r.json()["message"] == "This endpoint requires you to be authenticated."


def test_cost_model_and_rate_limited(make_simulator):
    server = make_simulator(packages=250, faults={"graphql_quota": 6})
    w = server.world
    pkgs = w.select("healthy", limit=3)
    with client(server) as c:
        small = "{ " + " ".join(f'r{i}: repository(owner: "{p.owner}", name: "{p.name}") {{ name }}'
                                for i, p in enumerate(pkgs)) + " rateLimit { cost remaining } }"
        r = c.post("/api/graphql", json={"query": small}, headers=TOKEN).json()
        assert r["data"]["rateLimit"] == {"cost": 1, "remaining": 5}
        # 3 repos x 100 history nodes x (connection inside connection) -> 3 + 0 requests... use a nested one
        nested = "{ " + " ".join(
            f'r{i}: repository(owner: "{p.owner}", name: "{p.name}") {{ defaultBranchRef {{ target {{ '
            f'... on Commit {{ history(first: 100) {{ nodes {{ oid }} }} }} }} }} '
            f'repositoryTopics(first: 100) {{ nodes {{ topic {{ name }} }} }} }}'
            for i, p in enumerate(pkgs)) + " rateLimit { cost remaining } }"
        r = c.post("/api/graphql", json={"query": nested}, headers=TOKEN)
        assert r.status_code == 200
        assert r.json()["data"]["rateLimit"]["cost"] == 1  # 6 requests / 100 -> rounds to the minimum 1
        # a connection inside 100 nodes of another: 3 + 3 * 100 requests -> cost 3
        deep = "{ " + " ".join(
            f'r{i}: repository(owner: "{p.owner}", name: "{p.name}") {{ defaultBranchRef {{ target {{ '
            f'... on Commit {{ history(first: 100) {{ nodes {{ history(first: 1) {{ totalCount }} }} }} }} }} }} }}'
            for i, p in enumerate(pkgs)) + " rateLimit { cost remaining } }"
        r = c.post("/api/graphql", json={"query": deep}, headers=TOKEN).json()
        assert r["data"]["rateLimit"] == {"cost": 3, "remaining": 1}
        c.post("/api/graphql", json={"query": small}, headers=TOKEN)
        limited = c.post("/api/graphql", json={"query": small}, headers=TOKEN)
        assert limited.status_code == 200
        assert limited.json()["errors"][0]["type"] == "RATE_LIMITED"
        assert limited.headers["x-ratelimit-resource"] == "graphql"
        assert limited.headers["x-ratelimit-remaining"] == "0"


def test_variables_are_type_checked_and_validation_errors_worded_like_github(gql):
    server, post = gql
    p = server.world.first("healthy")
    q = "query($o: String!, $n: String!) { r: repository(owner: $o, name: $n) { nameWithOwner } }"
    body = post(q, {"o": p.owner, "n": 5}).json()
    assert "data" not in body
    (err,) = body["errors"]
    assert err["message"] == "Variable $n of type String! was provided invalid value"
    assert err["extensions"]["value"] == 5
    assert "data" not in post(q, {"o": p.owner}).json()  # a required variable left out
    body = post(f'{{ r: repository(owner: "{p.owner}", name: "{p.name}") {{ stargazerCount {{ x }} }} }}').json()
    assert body["errors"][0]["message"] == (
        "Selections can't be made on scalars (field 'stargazerCount' returns Int! but has selections [x])")
    assert body["errors"][0]["path"] == ["query", "r", "stargazerCount"]
    body = post(f'{{ r: repository(owner: "{p.owner}", name: "{p.name}") {{ owner }} }}').json()
    assert body["errors"][0]["extensions"]["code"] == "selectionMismatch"
    body = post('{ r: repository(owner: "a", name: "b", bogus: 1) { name } }').json()
    assert body["errors"][0]["message"] == "Field 'repository' doesn't accept argument 'bogus'"
    body = post('query Q { r: repository(owner: $x, name: "b") { name } }').json()
    assert body["errors"][0]["message"] == "Variable $x is used by Q but not declared"
    body = post('{ r: repository(owner: "a", name: "b") { repositoryTopics(first: 101) { nodes { url } } } }').json()
    assert body["errors"][0]["type"] == "EXCESSIVE_PAGINATION"


def test_fragments_and_not_found_shape(gql):
    server, post = gql
    p = server.world.first("healthy")
    q = f"""query {{
      r0: repository(owner: "{p.owner}", name: "{p.name}") {{ ...Facts }}
      r1: repository(owner: "nobody-here", name: "nothing") {{ ...Facts }}
    }}
    fragment Facts on Repository {{ nameWithOwner owner {{ __typename login }} stargazerCount }}"""
    body = post(q).json()
    assert body["data"]["r0"] == {"nameWithOwner": p.full_name, "owner": {"__typename": "User", "login": p.owner},
                                  "stargazerCount": p.stars}
    assert body["data"]["r1"] is None
    assert body["errors"] == [{"type": "NOT_FOUND", "path": ["r1"], "locations": [{"line": 3, "column": 7}],
                               "message": "Could not resolve to a Repository with the name 'nobody-here/nothing'."}]


def test_same_shape_other_literals_answers_for_its_own_text(gql):
    """Queries of one shape share a parsed plan: the answer and error locations are still this query's."""
    server, post = gql
    a, b = server.world.select("healthy", limit=2)
    shape = '{{\n  x: repository(owner: "{}", name: "{}") {{ nameWithOwner }}\n  y: repository(owner: "{}", name: "{}") {{ nameWithOwner }}\n}}'  # noqa: E501
    first = post(shape.format(a.owner, a.name, "gone", "gone")).json()
    second = post(shape.format("someone-with-a-much-longer-login", "nothing-here", b.owner, b.name)).json()
    assert first["data"]["x"]["nameWithOwner"] == a.full_name and first["data"]["y"] is None
    assert second["data"] == {"x": None, "y": {"nameWithOwner": b.full_name}}
    (err,) = second["errors"]
    assert err["path"] == ["x"] and err["locations"] == [{"line": 2, "column": 3}]
    assert err["message"] == ("Could not resolve to a Repository with the name "
                              "'someone-with-a-much-longer-login/nothing-here'.")
    third = post(shape.format(b.owner, b.name, "x" * 40, "y")).json()
    assert third["errors"][0]["locations"] == [{"line": 3, "column": 3}]
