"""The scores where users look: search hits, the score/health documents (tree and `pulse serve`, same
bytes), the dataset exports; and older snapshots without the score tables keep working."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from aiohttp.test_utils import TestClient, TestServer

from assets.exports.api_v4 import ApiContext, load_api_tables, render_all, write_tree
from assets.exports.datasets import export_datasets
from assets.exports.health_api import load_health_documents
from assets.exports.published_api import PublishedApi
from pipelines.serve import make_app
from tests.exports.health_fixture import GRID_WEIGHTS, PACKAGES, add_health_tables
from warehouse.db import connect_reader

NOW = datetime(2026, 11, 28, tzinfo=UTC)
CTX = ApiContext.create("https://example.org/", "America/New_York")
HIT_KEYS = ["description", "title", "title_no_prefix", "slug_no_prefix", "clean_title", "absolute_url", "created",
            "modified", "weight", "item_type", "slug", "category", "repo_watchers", "repo_forks", "pypi_downloads",
            "score", "usage", "participants", "last_committed", "last_released"]


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory, sample_published) -> dict[str, Path]:
    """`plain`: a published snapshot from before the scores (no health schema, marts or inputs);
    `scored`: the same plus the score tables; `ranked_here`: scored without the grid marts (the
    exports rank themselves)."""
    home = tmp_path_factory.mktemp("health_published")
    shutil.copyfile(sample_published, home / "plain.duckdb")
    # `plain` stands for a snapshot published before the scores existed
    con = duckdb.connect(str(home / "plain.duckdb"))
    con.execute("DROP SCHEMA IF EXISTS health CASCADE")
    for view in ("package_health", "grid_package_health", "grid_health"):
        con.execute(f"DROP VIEW IF EXISTS marts.{view}")
    for column in ("usage", "pypi_downloads"):
        con.execute(f"ALTER TABLE core.packages DROP COLUMN IF EXISTS {column}")
    con.close()
    shutil.copyfile(home / "plain.duckdb", home / "scored.duckdb")
    add_health_tables(home / "scored.duckdb")
    shutil.copyfile(home / "scored.duckdb", home / "ranked_here.duckdb")
    con = duckdb.connect(str(home / "ranked_here.duckdb"))
    con.execute("DROP TABLE marts.grid_package_health; DROP TABLE marts.grid_health; DROP TABLE marts.package_health")
    con.close()
    return {name: home / f"{name}.duckdb" for name in ("plain", "scored", "ranked_here")}


def _tree(published: Path, out: Path) -> Path:
    """What the `exports/api_v4` asset does."""
    con = connect_reader(published)
    try:
        tables, documents = load_api_tables(con), load_health_documents(con, CTX)
    finally:
        con.close()
    write_tree(out, render_all(tables, CTX), CTX, documents.items())
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def _serve(published: Path, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    async def run() -> dict[str, tuple[int, bytes]]:
        async with TestClient(TestServer(make_app(PublishedApi(published, CTX)))) as client:
            answers = {}
            for path in paths:
                response = await client.get(path)
                answers[path] = (response.status, await response.read())
            return answers
    return asyncio.run(run())


def test_search_hits_carry_the_real_scores(snapshots):
    api = PublishedApi(snapshots["scored"], CTX)
    alpha = next(hit for hit in api.search("alpha") if hit["slug"] == "alpha")
    assert list(alpha) == HIT_KEYS
    assert (alpha["weight"], alpha["score"], alpha["pypi_downloads"], alpha["usage"]) == (93, 380, 15645, 3)
    # the site's release time, rendered like every DRF datetime (America/New_York here)
    assert alpha["last_released"] == "2026-06-01T12:30:00-04:00"
    assert (alpha["title_no_prefix"], alpha["slug_no_prefix"], alpha["clean_title"]) == ("Alpha", "alpha", "Alpha")
    beta = next(hit for hit in api.search("alpha") if hit["slug"] == "beta")
    assert (beta["weight"], beta["pypi_downloads"], beta["usage"], beta["last_released"]) == (62, 0, 0, None)
    gamma = api.search("gamma")[0]
    assert gamma["last_released"] == "2021-03-04T00:06:07.500000-05:00" and gamma["score"] == -12
    assert [hit["slug"] for hit in api.search("alpha")] == ["alpha", "beta"]  # ordered by the real weight
    for slug, grid_id in (("forms", 10), ("auth", 11)):
        grid = next(hit for hit in api.search(slug) if hit["item_type"] == "grid")
        assert list(grid) == HIT_KEYS and grid["weight"] == GRID_WEIGHTS[grid_id]
        assert (grid["pypi_downloads"], grid["score"], grid["usage"], grid["last_released"]) == (0, 0, 0, None)


# every sample package and grid by its title (websearch "or"; "a" alone is an english stop word: no hit)
EVERY_TITLE = " or ".join(["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "forms", "auth"])


def test_search_ranks_by_the_real_weight(snapshots):
    # each row matches one title equally well, so the site's weight boost decides the order
    hits = PublishedApi(snapshots["scored"], CTX).search(EVERY_TITLE)
    weights = [hit["weight"] for hit in hits]
    assert weights == sorted(weights, reverse=True)
    assert hits[0]["slug"] == "alpha" and hits[0]["weight"] == max(w for _, w, *_ in PACKAGES.values())


def test_an_older_snapshot_keeps_the_placeholders(snapshots):
    api = PublishedApi(snapshots["plain"], CTX)
    for hit in api.search(EVERY_TITLE):
        if hit["item_type"] == "package":
            assert hit["weight"] == hit["score"] == hit["repo_watchers"]
            assert hit["pypi_downloads"] == 0 and hit["usage"] == 0
    forms = next(hit for hit in api.search("forms") if hit["item_type"] == "grid")
    assert forms["weight"] == len(api.detail("grids", "forms")["packages"])
    alpha = next(hit for hit in api.search("alpha") if hit["slug"] == "alpha")
    assert alpha["last_released"] is not None  # the newest upload time, as before
    assert api.document("packages", "score", "1") is None and api.document("grids", "health", "10") is None
    answers = _serve(snapshots["plain"], ["/api/v4/packages/1/score/", "/api/v4/grids/forms/health/"])
    assert answers["/api/v4/packages/1/score/"] == (404, b'{"detail":"No Package matches the given query."}')
    assert answers["/api/v4/grids/forms/health/"] == (404, b'{"detail":"No Grid matches the given query."}')


def test_existing_records_stay_byte_identical(snapshots, tmp_path):
    before = _files(_tree(snapshots["plain"], tmp_path / "plain"))
    after = _files(_tree(snapshots["scored"], tmp_path / "scored"))
    assert {path: after[path] for path in before} == before
    added = sorted(set(after) - set(before))
    assert added == sorted(
        [f"api/v4/packages/{i}/{name}/index.json" for i in PACKAGES for name in ("score", "health")]
        + [f"api/v4/grids/{g}/health/index.json" for g in (10, 11)])


def test_documents_in_the_tree_and_in_serve_are_the_same_bytes(snapshots, tmp_path):
    tree = _files(_tree(snapshots["scored"], tmp_path / "tree"))
    documents = {path: body for path, body in tree.items() if path.count("/") == 5}
    slugs = {1: "alpha", 3: "gamma", 10: "forms", 11: "auth"}
    paths = []
    for path in documents:
        paths.append("/" + path.removesuffix("index.json"))
        object_id = int(path.split("/")[3])
        if object_id in slugs:  # by slug as well, like the detail
            paths.append("/" + path.removesuffix("index.json").replace(f"/{object_id}/", f"/{slugs[object_id]}/"))
    answers = _serve(snapshots["scored"], paths)
    for path, (status, body) in answers.items():
        object_id = next(k for k, v in slugs.items() if f"/{v}/" in path) if not path.split("/")[4].isdigit() \
            else int(path.split("/")[4])
        kind, name = path.split("/")[3], path.split("/")[5]
        assert status == 200, path
        assert body == documents[f"api/v4/{kind}/{object_id}/{name}/index.json"], path


def test_the_score_document_is_the_stored_breakdown(snapshots, tmp_path):
    tree = _tree(snapshots["scored"], tmp_path / "tree")
    con = connect_reader(snapshots["scored"])
    stored = dict(con.execute("SELECT package_id, weight_breakdown FROM health.package_scores").fetchall())
    con.close()
    for package_id, text in stored.items():
        body = (tree / f"api/v4/packages/{package_id}/score/index.json").read_bytes()
        assert body == text.encode()
        document = orjson.loads(body)
        assert list(document) == ["total_score", "message", "breakdown"]
        assert list(document["breakdown"][0]) == ["rule", "description", "score", "max_score", "message",
                                                  "documentation_url"]
        assert document["total_score"] == PACKAGES[package_id][1]


def test_package_health_document(snapshots):
    api = PublishedApi(snapshots["scored"], CTX)
    alpha = api.document("packages", "health", "alpha")
    assert list(alpha)[:4] == ["health_score", "health_version", "cap", "cap_reason"]
    assert alpha["health_score"] == 71.5 and alpha["cap"] is None and alpha["health_version"] == "1+eol.2026-08"
    assert [c["name"] for c in alpha["components"]] == ["activity", "releases", "popularity", "community",
                                                        "currency", "security"]
    assert round(sum(c["points"] for c in alpha["components"]), 1) == alpha["health_uncapped"] == 71.5
    assert alpha["components"][0] == {"name": "activity", "points": 25.0, "max": 25.0,
                                      "reason": "why activity of package 1"}
    assert alpha["explanation"][0] == "activity 25.0/25: why activity of package 1"
    assert (alpha["change_30d"], alpha["change_90d"]) == (2.5, -1.0)
    # alpha is the healthiest of both its grids (forms: alpha and gamma; auth: alpha alone)
    assert [(g["slug"], g["rank"], g["of"], g["percentile"]) for g in alpha["grids"]] == [
        ("forms", 1, 2, 100.0), ("auth", 1, 1, 100.0)]
    assert alpha["grids"][0]["grid"] == "https://example.org/api/v4/grids/10/"
    assert (alpha["id"], alpha["slug"], alpha["computed_at"]) == (1, "alpha", "2026-11-27T19:00:00-05:00")
    gamma = api.document("packages", "health", "3")
    assert (gamma["health_score"], gamma["cap"], gamma["cap_reason"]) == (9.0, 10.0, "PyPI quarantined the project")
    assert gamma["explanation"][0] == "capped at 10: PyPI quarantined the project"
    assert gamma["change_30d"] is None and gamma["grids"][0]["rank"] == 2
    assert api.document("packages", "health", "eps")["change_30d"] is None  # no trend row


def test_grid_health_document(snapshots):
    api = PublishedApi(snapshots["scored"], CTX)
    forms = api.document("grids", "health", "forms")
    assert forms["median_health"] == (71.5 + 9.0) / 2 and forms["packages"] == 2
    assert (forms["min_health"], forms["max_health"]) == (9.0, 71.5)
    assert [(m["rank"], m["slug"], m["health_score"], m["percentile"]) for m in forms["ranking"]] == [
        (1, "alpha", 71.5, 100.0), (2, "gamma", 9.0, 0.0)]
    assert forms["ranking"][0]["package"] == "https://example.org/api/v4/packages/1/"
    assert (forms["id"], forms["slug"]) == (10, "forms")
    assert api.document("grids", "health", "11")["ranking"][0]["slug"] == "alpha"


def test_without_the_marts_the_exports_rank_the_same_way(snapshots):
    from_marts = PublishedApi(snapshots["scored"], CTX)
    computed = PublishedApi(snapshots["ranked_here"], CTX)
    for key in ("10", "11"):
        assert computed.document("grids", "health", key) == from_marts.document("grids", "health", key)
    alpha = computed.document("packages", "health", "1")
    assert alpha["grids"] == from_marts.document("packages", "health", "1")["grids"]
    assert alpha["change_30d"] is None  # no marts.package_health: no trend


def test_unknown_objects_and_documents_answer_drf_404s(snapshots):
    answers = _serve(snapshots["scored"], [
        "/api/v4/packages/999999/score/", "/api/v4/packages/nope/health/", "/api/v4/grids/999999/health/",
        "/api/v4/grids/10/score/", "/api/v4/categories/1/health/"])
    package_404 = (404, b'{"detail":"No Package matches the given query."}')
    grid_404 = (404, b'{"detail":"No Grid matches the given query."}')
    assert answers["/api/v4/packages/999999/score/"] == package_404
    assert answers["/api/v4/packages/nope/health/"] == package_404
    assert answers["/api/v4/grids/999999/health/"] == grid_404
    assert answers["/api/v4/grids/10/score/"][0] == 404  # no such document for grids
    assert answers["/api/v4/categories/1/health/"][0] == 404


def test_dataset_exports_include_the_score_tables(snapshots, tmp_path):
    written = {p.name for p in export_datasets(snapshots["scored"], tmp_path / "csv", "csv")}
    assert {"health.package_scores.csv", "health.grid_scores.csv", "marts.package_health.csv",
            "marts.grid_health.csv", "marts.grid_package_health.csv", "core.packages.csv"} <= written
    scores = pl.read_parquet(next(p for p in export_datasets(snapshots["scored"], tmp_path / "pq")
                                  if p.name == "health.package_scores.parquet"))
    assert scores.height == len(PACKAGES)
    assert {"weight", "score", "weight_breakdown", "health_score"} <= set(scores.columns)
    packages = pl.read_csv(tmp_path / "csv" / "core.packages.csv")
    assert {"pypi_downloads", "usage"} <= set(packages.columns)
    # an older snapshot simply has no health files
    assert not [p for p in export_datasets(snapshots["plain"], tmp_path / "old", "csv") if p.name.startswith("health.")]
