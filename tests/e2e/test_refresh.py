"""`pulse refresh` end to end: the round trip through the simulator's djangopackages API."""

from __future__ import annotations

import json

import duckdb
import httpx
import orjson
import pytest

from tests.e2e.conftest import SIM_TOKENS, pulse_env, query_file, run_pulse

pytestmark = pytest.mark.slow  # real `pulse` refreshes in subprocesses, against the simulator


def _export(refreshed, kind: str, object_id: int) -> dict:
    return orjson.loads((refreshed.home / "export/api/v4" / kind / str(object_id) / "index.json").read_bytes())


def _served(refreshed, path: str) -> dict:
    response = httpx.get(f"{refreshed.sim.url}{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def test_refresh_exits_zero_and_reports_errors(refreshed):
    assert refreshed.result.returncode == 0, refreshed.result.stderr[-3000:]
    assert "refresh completed" in refreshed.result.stderr
    assert "packages with errors recorded" in refreshed.result.stderr  # deleted/blocked repos exist in this world
    assert "catalogue URLs outdated (the repository was renamed)" in refreshed.result.stderr  # renamed repos too
    for name in ("warehouse.duckdb", "published.duckdb", "export/api/v4/index.json",
                 "export/api/v4/packages/index.json", "dagster/dagster.yaml"):
        assert (refreshed.home / name).exists(), name


def _round_trip_ids(world) -> list[int]:
    ids = {p.id for p in world.select("healthy")}
    ids |= {p.id for p in world.select("gitlab", "crawlable")}
    ids |= {p.id for p in world.select("bitbucket", "crawlable")}
    ids |= {p.id for p in world.select("codeberg", "crawlable")}
    return sorted(ids)


def test_round_trip_packages_identical_except_last_fetched(refreshed):
    world = refreshed.sim.world
    ids = _round_trip_ids(world)
    assert len(ids) > 50
    mismatches = {}
    for pid in ids:
        expected = _served(refreshed, f"/api/v4/packages/{pid}/")
        got = _export(refreshed, "packages", pid)
        assert list(got) == list(expected)
        expected.pop("last_fetched")
        got.pop("last_fetched")
        if got != expected:
            mismatches[pid] = {k: (expected[k], got[k]) for k in expected if expected[k] != got[k]}
    assert not mismatches, json.dumps(dict(list(mismatches.items())[:5]), indent=1, default=str)


@pytest.mark.parametrize(
    ("traits", "why"),
    [
        (("healthy", "bots"), "bots among participants"),
        (("healthy", "not_on_pypi"), "null pypi_version"),
        (("healthy", "documentation_url"), "documentation_url from PyPI project_urls"),
        (("gitlab", "crawlable"), "a repo on a host that is not GitHub"),
        (("codeberg", "crawlable"), "a repo on Codeberg (Forgejo)"),
        (("healthy", "renamed"), "renamed"),
    ],
)
def test_round_trip_covers(refreshed, traits, why):
    world = refreshed.sim.world
    chosen = world.select(*traits, limit=3)
    if "renamed" in traits:
        chosen = world.select("renamed", "crawlable", limit=3)
    assert chosen, f"the world has no package for: {why}"
    for package in chosen:
        expected = _served(refreshed, f"/api/v4/packages/{package.id}/")
        got = _export(refreshed, "packages", package.id)
        expected.pop("last_fetched"), got.pop("last_fetched")
        assert got == expected, why
    if "bots" in traits:
        assert any(login.endswith("[bot]") for login in got["participants"])
    if "not_on_pypi" in traits:
        assert got["pypi_version"] is None


def test_every_pypi_url_form_round_trips(refreshed):
    world = refreshed.sim.world
    forms = {}
    for package in world.select("healthy", "on_pypi"):
        url = package.pypi_url
        form = ("bare" if url and "/" not in url else "legacy" if "pypi.python.org" in url
                else "project" if "pypi.org/project" in url else "empty" if not url else "other")
        forms.setdefault(form, package.id)
    assert {"bare", "legacy", "project"} <= set(forms), forms
    for pid in forms.values():
        expected = _served(refreshed, f"/api/v4/packages/{pid}/")
        got = _export(refreshed, "packages", pid)
        assert (got["pypi_url"], got["pypi_version"]) == (expected["pypi_url"], expected["pypi_version"])
        assert got["pypi_version"] is not None


def test_grids_and_categories_round_trip(refreshed):
    for kind in ("grids", "categories"):
        listing = _served(refreshed, f"/api/v4/{kind}/?limit=1000")
        for record in listing["results"]:
            assert _export(refreshed, kind, record["id"]) == record, (kind, record["id"])


def test_list_first_pages(refreshed):
    """Each exported list's first page is the served first page, record for record, links rebased."""
    for kind in ("packages", "grids", "categories"):
        got = orjson.loads((refreshed.home / "export/api/v4" / kind / "index.json").read_bytes())
        expected = _served(refreshed, f"/api/v4/{kind}/")
        assert list(got) == ["count", "next", "previous", "results"]
        assert got["previous"] is None
        assert got["count"] == expected["count"], kind  # every served record was kept
        assert (got["next"] is None) == (expected["next"] is None), kind
        assert [r["id"] for r in got["results"]] == [r["id"] for r in expected["results"]], kind
        for mine, theirs in zip(got["results"], expected["results"], strict=True):
            mine.pop("last_fetched", None), theirs.pop("last_fetched", None)
            if kind != "packages" or mine["id"] in set(_round_trip_ids(refreshed.sim.world)):
                assert mine == theirs, (kind, mine["id"])


def test_no_request_left_the_configured_hosts_and_no_token_in_outputs(refreshed):
    requests = refreshed.sim.requests()
    assert requests
    assert not [r for r in requests if r["route"] == "unknown"]  # nothing fetched as the catalogue gave it
    tokens = [t.encode() for t in SIM_TOKENS.split(",")]
    leaks = []
    for path in refreshed.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [str(path.relative_to(refreshed.home)) for t in tokens if t in data]
    assert leaks == []
    for stream in (refreshed.result.stdout, refreshed.result.stderr):
        assert not any(t.decode() in stream for t in tokens)


def test_fatal_error_is_one_line_and_non_zero(refreshed, tmp_path):
    env = pulse_env(refreshed.sim, tmp_path / "home", PULSE_CATALOGUE="http://127.0.0.1:9")
    result = run_pulse("refresh", env=env)
    assert result.returncode != 0
    last = [line for line in result.stderr.strip().splitlines() if line.strip()][-1]
    assert last.startswith("pulse: refresh failed") and "127.0.0.1:9" in last, result.stderr[-2000:]


def test_query_and_export_read_the_published_snapshot(refreshed, tmp_path):
    result = run_pulse("query", "SELECT count(*) AS n FROM core.packages", "--format", "json", env=refreshed.env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["n"] == _served(refreshed, "/api/v4/packages/")["count"]
    result = run_pulse("export", "--out", str(tmp_path / "datasets"), env=refreshed.env)
    assert result.returncode == 0, result.stderr
    assert {"core.packages.parquet", "core.packages.csv", "core.packages.jsonl", "datapackage.json"} <= \
        {p.name for p in (tmp_path / "datasets").iterdir()}
    # the refresh job's exports/dataset_release wrote a release; `pulse export` writes the same one again
    releases = refreshed.home / "releases"
    release_id = (releases / "LATEST").read_text().strip()
    descriptor = json.loads((releases / "latest" / "datapackage.json").read_text())
    run_id = query_file(refreshed.home / "published.duckdb", "SELECT refresh_id FROM history.refreshes")[0][0]
    assert descriptor["pulse:refresh_id"] == run_id and release_id.endswith("-" + run_id[:8])
    result = run_pulse("export", env=refreshed.env)
    assert result.returncode == 0, result.stderr
    assert str(releases / release_id / "datapackage.json") in result.stdout.splitlines()
    again = json.loads((releases / release_id / "datapackage.json").read_text())["resources"]
    assert [(r["name"], r["rows"]) for r in again] == [(r["name"], r["rows"]) for r in descriptor["resources"]]


def test_an_empty_repository_is_an_answer_not_an_error(refreshed):
    empty = refreshed.sim.world.select("empty")
    assert empty, "the world has no empty repository"
    ids = [p.id for p in empty]
    con = duckdb.connect(str(refreshed.home / "published.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT package_id, request_key, kind FROM core.crawl_errors WHERE source = 'github' AND package_id IN "
            f"({','.join(map(str, ids))})").fetchall()
    finally:
        con.close()
    assert rows == []
    for pid in ids:
        got = _export(refreshed, "packages", pid)
        assert (got["commits_over_52"], got["participants"], got["last_updated"]) == ([], [], None)


@pytest.mark.parametrize("broken", ["home_is_a_file", "warehouse_is_a_folder"])
def test_an_unwritable_warehouse_is_one_line_and_non_zero(refreshed, tmp_path, broken):
    home = tmp_path / "home"
    if broken == "home_is_a_file":
        home.write_text("not a folder")
    else:
        (home / "warehouse.duckdb").mkdir(parents=True)
    result = run_pulse("refresh", env=pulse_env(refreshed.sim, home))
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("pulse: "), result.stderr[-2000:]
    assert str(home) in lines[-1] and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_health_inputs_from_the_crawl_match_the_world(refreshed):
    """pypi_vulnerabilities (withdrawn advisories left out), repositories.created_at, and the v4
    catalogue's usage (none: 0) and deprecation (none: false) land in core as the world has them."""
    w = refreshed.sim.world
    con = duckdb.connect(str(refreshed.home / "published.duckdb"), read_only=True)
    try:
        packages = {row[0]: row[1:] for row in con.execute(
            "SELECT id, pypi_vulnerabilities, usage, catalogue_deprecated, pypi_version FROM core.packages").fetchall()}
        created = dict(con.execute("SELECT repo_key, created_at FROM core.repositories "
                                   "WHERE created_at IS NOT NULL").fetchall())
    finally:
        con.close()
    assert {(usage, deprecated) for _, usage, deprecated, _ in packages.values()} == {(0, False)}
    vulnerable = w.select("vulnerable")
    assert vulnerable
    for p in vulnerable:
        expected = sum(v["withdrawn"] is None for v in w.vulnerabilities(p.id))
        assert packages[p.id][0] == expected >= 1, p.slug
    read = [p for p in w.select("on_pypi", "healthy", exclude=("vulnerable",)) if packages[p.id][3] is not None]
    assert len(read) > 50
    for p in read:
        assert packages[p.id][0] == 0, p.slug  # read and none counted (withdrawn ones included)
    for p in w.select("not_on_pypi"):
        assert packages[p.id][0] is None, p.slug
    for p in w.select("github", "healthy", limit=20):
        key = f"github:{p.full_name}".lower()
        assert abs((created[key] - p.repo_created).total_seconds()) < 1, p.slug
    for host in ("gitlab", "bitbucket", "codeberg"):
        assert any(key.startswith(f"{host}:") for key in created), host
