"""djangopackages API v4 behaviours of the simulator, over HTTP."""

from __future__ import annotations

import re

import pytest

from tests.simulator.helpers import client

PACKAGE_KEYS = ["category", "grids", "id", "title", "slug", "last_updated", "last_fetched", "repo_url",
                "pypi_version", "created", "modified", "repo_forks", "repo_description", "pypi_url",
                "documentation_url", "repo_watchers", "commits_over_52", "participants"]
GRID_KEYS = ["id", "title", "slug", "description", "is_locked", "packages", "header", "created", "modified"]
CATEGORY_KEYS = ["id", "title", "slug", "description", "title_plural", "show_pypi", "created", "modified"]
DRF_DT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?(Z|[-+]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def v4(simulator):
    with client(simulator) as c:
        yield simulator, c


def test_root(v4):
    server, c = v4
    assert c.get("/api/v4/").json() == {
        "packages": f"{server.url}/api/v4/packages/", "search": f"{server.url}/api/v4/search/",
        "grids": f"{server.url}/api/v4/grids/", "categories": f"{server.url}/api/v4/categories/"}


def test_pagination_and_order(v4):
    server, c = v4
    first = c.get("/api/v4/packages/").json()
    assert list(first) == ["count", "next", "previous", "results"]
    assert first["count"] == server.world.n and len(first["results"]) == 20
    assert first["previous"] is None
    assert first["next"] == f"{server.url}/api/v4/packages/?limit=20&offset=20"
    ids = [r["id"] for r in first["results"]]
    assert ids == sorted(ids, reverse=True) and ids[0] == server.world.n
    second = c.get(first["next"]).json()
    assert second["previous"] == f"{server.url}/api/v4/packages/?limit=20"
    third = c.get(second["next"]).json()
    assert third["previous"] == f"{server.url}/api/v4/packages/?limit=20&offset=20"
    # walk everything with a big page
    seen = []
    url = f"{server.url}/api/v4/packages/?limit=100"
    while url:
        page = c.get(url).json()
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
    assert seen == list(range(server.world.n, 0, -1))
    last = c.get("/api/v4/packages/?limit=20&offset=240").json()
    assert last["next"] is None and len(last["results"]) == 10


def test_record_shapes(v4):
    server, c = v4
    rec = c.get("/api/v4/packages/1/").json()
    assert list(rec) == PACKAGE_KEYS
    assert rec["category"].startswith(f"{server.url}/api/v4/categories/")
    for key in ("created", "modified", "last_fetched"):
        assert DRF_DT.match(rec[key]), rec[key]
    assert rec["created"][-6:] in ("-05:00", "-04:00")
    grid = c.get("/api/v4/grids/1/").json()
    assert list(grid) == GRID_KEYS
    titles = [c.get(u).json()["title"].lower() for u in grid["packages"]]
    assert titles == sorted(titles)
    cats = c.get("/api/v4/categories/").json()
    assert [list(x) for x in cats["results"]] == [CATEGORY_KEYS] * 4
    assert {(x["title"], x["slug"]) for x in cats["results"]} == {
        ("App", "apps"), ("Framework", "frameworks"), ("Project", "projects"), ("Other", "other")}


def test_detail_by_slug_and_404s(v4):
    server, c = v4
    p = server.world.package(7)
    assert c.get(f"/api/v4/packages/{p.slug}/").json()["id"] == 7
    g = c.get("/api/v4/grids/2/").json()
    assert c.get(f"/api/v4/grids/{g['slug']}/").json()["id"] == 2
    assert c.get("/api/v4/packages/999999/").json() == {"detail": "No Package matches the given query."}
    r = c.get("/api/v4/packages/no-such-slug/")
    assert r.status_code == 404 and r.json() == {"detail": "No Package matches the given query."}
    assert c.get("/api/v4/grids/99999/").json() == {"detail": "No Grid matches the given query."}
    assert c.get("/api/v4/categories/apps/").json() == {"detail": "No Category matches the given query."}
    assert c.get("/api/v4/categories/9/").status_code == 404


def test_search(v4):
    _server, c = v4
    assert c.get("/api/v4/search/?q=").json() == []
    hits = c.get("/api/v4/search/", params={"q": "admin"}).json()
    assert 0 < len(hits) <= 20
    assert {h["item_type"] for h in hits} <= {"package", "grid"}
    h = next(x for x in hits if x["item_type"] == "package")
    assert h["absolute_url"] == f"/packages/p/{h['slug']}/" and isinstance(h["participants"], str)


def test_catalogue_data_quality_and_grids(simulator):
    w = simulator.world
    urls = [w.package(i).repo_url for i in w.ids()]
    assert any(u.endswith(".git") for u in urls)
    assert any("/tree/" in u for u in urls) and any(u.endswith("/wiki") for u in urls)
    assert any(u != u.strip() for u in urls) and "" in urls
    assert any("code.google.com" in u or "launchpad.net" in u for u in urls)
    forms = [w.package(i).pypi_url for i in w.ids()]
    assert "" in forms
    assert any(f.startswith("http://pypi.python.org/pypi/") for f in forms)
    assert any(f.startswith("https://pypi.org/project/") for f in forms)
    assert any(f and "/" not in f for f in forms)
    grids = w.grids()
    assert len(grids) >= 30 and all(2 <= len(g[8]) <= 60 for g in grids)
    stars = sorted(w.package(i).stars for i in w.ids())
    assert stars[len(stars) // 2] < 50 and stars[-1] > 1000
