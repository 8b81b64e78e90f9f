"""A local JSON catalogue that nobody vetted, crawled without a token (REST only), end to end.

The real `pulse` CLI in a subprocess, the simulator over real HTTP, real DuckDB files. The catalogue is
the simulator's own v4 records (so GitHub, PyPI and the catalogue agree) plus:

- hostile rows whose repo_url / pypi_url point at the simulator itself (loopback, its port, `file:`,
  look-alike hosts, path traversal) and whose slug tries to climb out of the export folder: none of
  them may cause a request, each is a recorded `bad_entry`, and every file lands under PULSE_HOME;
- packages whose catalogue `documentation_url` is outdated while PyPI's `project_urls` has the real
  one: the export must carry PyPI's.

Without GITHUB_TOKEN the crawl takes the REST path (GraphQL needs a token); the simulator's anonymous
quota is lifted so the run does not wait an hour for GitHub's 60 requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from simulator.server import SimServer, start_in_thread
from tests.e2e.conftest import pulse_env, run_pulse

pytestmark = pytest.mark.slow  # real `pulse` refreshes of a hostile catalogue

OUTDATED_DOCS = "https://outdated-docs.example/"
HOSTILE_FIRST_ID = 900_001


@dataclass
class Untrusted:
    sim: SimServer
    root: Path
    home: Path
    result: object
    hostile: dict[int, dict]
    outdated_docs: list[int]
    round_trip: list[int]


def _hostile_rows(port: int, category: str) -> list[dict]:
    local = f"127.0.0.1:{port}"
    rows = [
        ("sneaky-ip", f"http://{local}/sneaky-owner/sneaky-repo", "", "port"),  # the port is the first thing wrong
        ("sneaky-localhost", "http://localhost/api/v3/repos/sneaky/x", "", "localhost"),
        ("sneaky-loopback", "http://127.0.0.1/sneaky/x", "", "ip_address"),
        ("sneaky-file", "file:///etc/passwd", "", "unsupported_scheme"),
        ("sneaky-lookalike", "https://github.com.evil.example/sneaky/x", "", "lookalike_host"),
        ("sneaky-traversal", "https://github.com/sneaky/../../../etc", "", "path_traversal"),
        ("sneaky-port", f"https://github.com:{port}/sneaky/x", "", "port"),
        ("../../../../sneaky-slug", "", f"http://{local}/pypi/sneaky-pypi/json", "not_pypi_host"),
        ("sneaky-pypi-file", "", "file:///pypi/sneaky/json", "unsupported_scheme"),
    ]
    out = []
    for offset, (slug, repo_url, pypi_url, code) in enumerate(rows):
        out.append({
            "category": category, "grids": [], "modified": "2026-01-01T00:00:00Z", "created": "2026-01-01T00:00:00Z",
            "id": HOSTILE_FIRST_ID + offset, "title": f"{slug} <script>alert(1)</script>", "slug": slug,
            "repo_url": repo_url, "pypi_url": pypi_url, "documentation_url": None, "expect": code,
        })
    return out


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory) -> Untrusted:
    sim = start_in_thread(packages=90, seed=31, faults={"anon_quota": 1_000_000})
    root = tmp_path_factory.mktemp("untrusted")
    get = lambda path: httpx.get(f"{sim.url}{path}", timeout=30).raise_for_status().json()  # noqa: E731
    packages = get("/api/v4/packages/?limit=1000")["results"]
    grids = get("/api/v4/grids/?limit=1000")["results"]
    categories = get("/api/v4/categories/?limit=1000")["results"]
    world = sim.world
    outdated = [p.id for p in world.select("healthy", "documentation_url", limit=4)]
    assert outdated, "the world has no package whose documentation_url comes from PyPI"
    for record in packages:
        if record["id"] in outdated:
            record["documentation_url"] = OUTDATED_DOCS
    hostile = _hostile_rows(int(sim.url.rsplit(":", 1)[1]), packages[0]["category"])
    expectations = {row["id"]: {"slug": row["slug"], "code": row.pop("expect")} for row in hostile}
    catalogue = root / "catalogue.json"
    catalogue.write_bytes(orjson.dumps({"categories": categories, "grids": grids, "packages": packages + hostile}))
    home = root / "home"
    env = pulse_env(sim, home, PULSE_CATALOGUE=str(catalogue))
    env.pop("GITHUB_TOKEN")
    sim.reset_stats()
    result = run_pulse("refresh", env=env, cwd=root)
    ids = {p.id for p in world.select("healthy")} | {p.id for p in world.select("gitlab", "crawlable")}
    yield Untrusted(sim, root, home, result, expectations, outdated, sorted(ids))
    sim.stop()


def _export(home: Path, kind: str, object_id: int) -> dict:
    return orjson.loads((home / "export/api/v4" / kind / str(object_id) / "index.json").read_bytes())


def test_the_refresh_succeeds_without_a_token(untrusted):
    assert untrusted.result.returncode == 0, untrusted.result.stderr[-3000:]
    by_route = untrusted.sim.stats()["by_route"]
    assert by_route.get("github.repo", 0) > 0  # REST repository metadata ...
    assert "github.graphql" not in by_route  # ... and no GraphQL, which needs a token


def test_rest_round_trip_identical_except_last_fetched(untrusted):
    assert len(untrusted.round_trip) > 20
    mismatches = {}
    for pid in untrusted.round_trip:
        expected = httpx.get(f"{untrusted.sim.url}/api/v4/packages/{pid}/", timeout=10).json()
        got = _export(untrusted.home, "packages", pid)
        assert list(got) == list(expected)
        expected.pop("last_fetched"), got.pop("last_fetched")
        if pid in untrusted.outdated_docs:
            continue  # compared below, against PyPI
        if got != expected:
            mismatches[pid] = {k: (expected[k], got[k]) for k in expected if expected[k] != got[k]}
    assert not mismatches, dict(list(mismatches.items())[:5])


def test_documentation_url_comes_from_pypi_project_urls(untrusted):
    for pid in untrusted.outdated_docs:
        pypi_name = untrusted.sim.world.package(pid).pypi_name
        info = httpx.get(f"{untrusted.sim.url}/pypi/{pypi_name}/json", timeout=10, follow_redirects=True).json()["info"]
        from_pypi = next(url for label, url in (info["project_urls"] or {}).items()
                         if label.lower() in ("documentation", "docs"))
        got = _export(untrusted.home, "packages", pid)["documentation_url"]
        assert got == from_pypi != OUTDATED_DOCS, pid


def test_no_catalogue_url_is_fetched_as_given(untrusted):
    requests = untrusted.sim.requests()
    assert requests, "the simulator saw no request at all"
    assert not [r for r in requests if "sneaky" in r["path"].lower()]
    assert not [r for r in requests if r["route"] == "unknown"]
    prefixes = ("/api/v4/", "/api/v3/", "/api/graphql", "/pypi/", "/simple/", "/2.0/", "/api/v1/", "/api/packages/")
    assert all(r["path"].startswith(prefixes) for r in requests)


def test_each_hostile_row_is_a_recorded_bad_entry(untrusted):
    con = duckdb.connect(str(untrusted.home / "published.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT package_id, source, message FROM core.crawl_errors WHERE kind = 'bad_entry' AND package_id >= ?",
            [HOSTILE_FIRST_ID]).fetchall()
        kept = {r[0] for r in con.execute("SELECT id FROM core.packages WHERE id >= ?", [HOSTILE_FIRST_ID]).fetchall()}
    finally:
        con.close()
    assert kept == set(untrusted.hostile)  # kept in the catalogue, just not crawled
    codes = {}
    for package_id, source, message in rows:
        codes.setdefault(package_id, set()).add((source, message.split(":")[0]))
    for package_id, expected in untrusted.hostile.items():
        assert any(code == expected["code"] for _, code in codes.get(package_id, set())), (expected, codes)


def test_every_file_stays_under_pulse_home(untrusted):
    outside = [p for p in untrusted.root.rglob("*") if "sneaky" in p.name]
    assert outside == []
    for kind in ("packages", "grids", "categories"):
        folder = untrusted.home / "export/api/v4" / kind
        names = {p.name for p in folder.iterdir()}
        assert all(name.isdigit() or name == "index.json" for name in names), sorted(names)[:10]
    for pid, expected in untrusted.hostile.items():
        assert _export(untrusted.home, "packages", pid)["slug"] == expected["slug"]  # kept as data, not as a path
    escaped = [p for p in Path(os.sep, "tmp").glob("*sneaky*")]
    assert escaped == []
