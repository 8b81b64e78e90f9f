"""PyPI behaviours of the simulator, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.simulator.helpers import client

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "upstream"
SIMPLE = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def py(simulator):
    with client(simulator) as c:
        yield simulator, c


def test_json_field_set_like_real_pypi(py):
    server, c = py
    p = server.world.first("on_pypi", exclude=("pypi_name_differs",))
    r = c.get(f"/pypi/{p.pypi_name}/json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"info", "last_serial", "releases", "urls", "vulnerabilities"}
    assert r.headers["x-pypi-last-serial"] == str(body["last_serial"])
    real_file = REFERENCE / "pypi_json_django-crispy-forms_2022-02.json"
    if real_file.exists():
        real = json.loads(real_file.read_text())
        assert set(real["info"]) <= set(body["info"]), set(real["info"]) - set(body["info"])
        real_file_keys = set(real["urls"][0]) - {"digests"}
        assert real_file_keys <= set(body["urls"][0])
    assert body["urls"] and all(u["upload_time_iso_8601"].endswith("Z") for u in body["urls"])
    assert body["info"]["version"] in body["releases"]
    assert body["urls"] == body["releases"][body["info"]["version"]]
    assert list(body["releases"]) == sorted(body["releases"])  # by version string, like PyPI


def test_redirect_to_the_display_name_like_warehouse_and_404(py):
    """Warehouse json_project: any spelling but the display name gets a 301 to /pypi/<display name>/json."""
    server, c = py
    w = server.world
    kinds = {"mixed case": lambda n: any(ch.isupper() for ch in n), "underscore": lambda n: "_" in n,
             "dot": lambda n: "." in n}
    differing = w.select("on_pypi", "pypi_name_differs")
    for kind, test in kinds.items():
        assert any(test(p.pypi_name) for p in differing), f"no display name with a {kind} in the world"
    for p in [next(p for p in differing if test(p.pypi_name)) for test in kinds.values()]:
        norm = canonicalize_name(p.pypi_name)
        assert norm != p.pypi_name
        r = c.get(f"/pypi/{norm}/json")  # what a crawler asks: the normalised name
        assert r.status_code == 301, p.pypi_name
        assert r.headers["location"] == f"/pypi/{p.pypi_name}/json"
        assert r.headers["access-control-allow-origin"] == "*"
        for path in (f"/pypi/{norm.upper()}/json", f"/pypi/{p.pypi_name}/json/"):  # other spelling, slash
            other = c.get(path)
            assert other.status_code == 301 and other.headers["location"] == f"/pypi/{p.pypi_name}/json"
        exact = c.get(f"/pypi/{p.pypi_name}/json")
        assert exact.status_code == 200 and exact.json()["info"]["name"] == p.pypi_name
        followed = c.get(f"/pypi/{norm}/json", follow_redirects=True)
        assert followed.status_code == 200 and followed.content == exact.content
        assert followed.headers["etag"] == exact.headers["etag"]
        # the Simple API goes the other way: to the normalised name
        s = c.get(f"/simple/{p.pypi_name}/", headers=SIMPLE)
        assert s.status_code == 301 and s.headers["location"].endswith(f"/simple/{norm}/")
    same = w.first("on_pypi", exclude=("pypi_name_differs",))
    assert c.get(f"/pypi/{same.pypi_name}/json").status_code == 200  # display name == normalised name
    missing = w.first("not_on_pypi")
    r = c.get(f"/pypi/{canonicalize_name(missing.pypi_name)}/json")
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    assert c.get("/pypi/no-such-project-anywhere/json").status_code == 404


def test_conditional_request_through_the_redirect(py):
    server, c = py
    p = server.world.first("on_pypi", "pypi_name_differs")
    first = c.get(f"/pypi/{canonicalize_name(p.pypi_name)}/json", follow_redirects=True)
    again = c.get(f"/pypi/{canonicalize_name(p.pypi_name)}/json", follow_redirects=True,
                  headers={"If-None-Match": first.headers["etag"]})
    assert [h.status_code for h in again.history] == [301] and again.status_code == 304


def test_variants(py):
    server, c = py
    w = server.world

    def info(trait):
        p = w.first(trait, "on_pypi")
        return p, c.get(f"/pypi/{p.pypi_name}/json").json()

    _, body = info("project_urls_null")
    assert body["info"]["project_urls"] is None
    p, body = info("yanked_latest")
    newest = w.releases(p.id)[-1].version
    assert all(f["yanked"] for f in body["releases"][newest])
    assert body["info"]["version"] != newest and not body["urls"][0]["yanked"]
    p, body = info("prerelease_only")
    assert all(any(ch in v for ch in "ab") for v in body["releases"])
    assert body["info"]["version"] == w.releases(p.id)[-1].version
    _, body = info("inactive_classifier")
    assert "Development Status :: 7 - Inactive" in body["info"]["classifiers"]
    _, body = info("documentation_url")
    urls = body["info"]["project_urls"]
    assert urls.get("Documentation") or urls.get("Docs")
    _p, body = info("vulnerable")
    assert body["vulnerabilities"][0]["id"].startswith("PYSEC-")


VULN_FIELDS = {"aliases", "details", "fixed_in", "id", "link", "source", "summary", "withdrawn"}


def test_vulnerabilities_of_the_latest_version(py):
    """PyPI's JSON lists the latest version's known vulnerabilities (OSV entries); some are withdrawn."""
    server, c = py
    w = server.world
    on_pypi = w.select("on_pypi")
    served = {p.id: w.vulnerabilities(p.id) for p in on_pypi}
    for p in w.select("vulnerable"):
        body = c.get(f"/pypi/{p.pypi_name}/json").json()
        vulns = body["vulnerabilities"]
        assert vulns == list(served[p.id])
        assert 1 <= sum(v["withdrawn"] is None for v in vulns) <= 3
        for v in vulns:
            assert set(v) == VULN_FIELDS and v["source"] == "osv" and v["summary"] is None
            assert v["id"].startswith(("PYSEC-", "GHSA-")) and v["link"] == f"https://osv.dev/vulnerability/{v['id']}"
            assert v["aliases"][0].startswith("CVE-") and v["details"]
            # the latest version is affected: any fix is in a later version
            assert body["info"]["version"] not in v["fixed_in"]
        assert len({v["id"] for v in vulns}) == len(vulns)
    # a small share; the others list none, or (rarely) only a withdrawn one
    vulnerable = {p.id for p in w.select("vulnerable")}
    assert 0 < len(vulnerable) < 0.1 * len(on_pypi)
    for pid, vulns in served.items():
        if pid not in vulnerable:
            assert all(v["withdrawn"] for v in vulns)


def test_withdrawn_advisories_occur_and_leave_the_world_as_it_was():
    from simulator.hosts import REPO_HOSTS
    from simulator.world import World

    w = World(seed=1, packages=2000, hosts=REPO_HOSTS)
    withdrawn_only = [pid for pid in w.ids() if w.vulnerabilities(pid)
                      and all(v["withdrawn"] for v in w.vulnerabilities(pid))]
    mixed = [pid for pid in w.ids() if w.package(pid).vulnerable
             and any(v["withdrawn"] for v in w.vulnerabilities(pid))]
    assert withdrawn_only and mixed
    assert not any(w.package(pid).vulnerable for pid in withdrawn_only)
    assert all(w.package(pid).pypi_status == "ok" for pid in withdrawn_only)
    assert all(v["withdrawn"].endswith("Z") for pid in withdrawn_only for v in w.vulnerabilities(pid))
    # drawn from a stream of their own: asking again (or first) gives the same, in any order
    again = World(seed=1, packages=2000, hosts=REPO_HOSTS)
    assert [again.vulnerabilities(pid) for pid in reversed(withdrawn_only)] == [
        w.vulnerabilities(pid) for pid in reversed(withdrawn_only)]


def test_etag_and_304(py):
    server, c = py
    p = server.world.first("on_pypi")
    url = f"/pypi/{p.pypi_name}/json"
    r = c.get(url)
    etag = r.headers["etag"]
    assert etag.startswith('"')
    again = c.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_simple_api_pep691_and_status(py):
    server, c = py
    w = server.world
    p = w.first("on_pypi", exclude=("pypi_archived",))
    r = c.get(f"/simple/{canonicalize_name(p.pypi_name)}/", headers=SIMPLE)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    body = r.json()
    assert body["meta"]["api-version"].startswith("1.")
    assert body["project-status"] == {"status": "active"}
    assert body["name"] == canonicalize_name(p.pypi_name) and body["files"] and body["versions"]
    assert all("sha256" in f["hashes"] for f in body["files"])
    a = w.first("pypi_archived")
    archived = c.get(f"/simple/{canonicalize_name(a.pypi_name)}/", headers=SIMPLE).json()
    assert archived["project-status"]["status"] == "archived"
    q = w.first("pypi_quarantined")
    qb = c.get(f"/simple/{canonicalize_name(q.pypi_name)}/", headers=SIMPLE).json()
    assert qb["project-status"]["status"] == "quarantined" and qb["files"] == []
    assert c.get(f"/pypi/{canonicalize_name(q.pypi_name)}/json").status_code == 404
    html = c.get(f"/simple/{canonicalize_name(p.pypi_name)}/")
    assert html.headers["content-type"].startswith("application/vnd.pypi.simple.v1+html")
    assert "<a href=" in html.text
    d = w.first("pypi_name_differs", "on_pypi")
    r = c.get(f"/simple/{d.pypi_name}/", headers=SIMPLE)
    assert r.status_code == 301 and r.headers["location"].endswith(f"/simple/{canonicalize_name(d.pypi_name)}/")
