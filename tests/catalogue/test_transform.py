"""build_catalogue: the frames' schemas, reject rules, memberships, datetimes and speed."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime

import orjson
import polars as pl
import pytest

from assets.catalogue.readers import CatalogueRecords
from assets.catalogue.transform import (
    CATEGORY_SCHEMA,
    GRID_PACKAGE_SCHEMA,
    GRID_SCHEMA,
    PACKAGE_SCHEMA,
    REJECT_SCHEMA,
    build_catalogue,
    reject_codes,
    repo_problem_codes,
)
from pipelines.sources.times import parse_iso, utc_stamp
from tests.catalogue.conftest import v4_world


def _records(world: dict) -> CatalogueRecords:
    return CatalogueRecords(world["categories"], world["grids"], world["packages"], "test", "json")


def test_schemas_and_values_of_a_clean_catalogue():
    frames = build_catalogue(_records(v4_world()))
    assert frames.categories.schema == CATEGORY_SCHEMA
    assert frames.grids.schema == GRID_SCHEMA
    assert frames.grid_packages.schema == GRID_PACKAGE_SCHEMA
    assert frames.packages.schema == PACKAGE_SCHEMA
    assert frames.rejects.schema == REJECT_SCHEMA
    assert list(frames.packages.columns) == [
        "id", "title", "slug", "category_id", "repo_url", "pypi_url", "documentation_url", "created", "modified",
        "repo_host", "repo_owner", "repo_name", "repo_key", "pypi_name", "repo_url_problem", "pypi_url_problem",
        "usage", "deprecated"]
    # the v4 API carries neither: no usage, not deprecated
    assert set(frames.packages["usage"]) == {0} and set(frames.packages["deprecated"]) == {False}
    assert frames.packages["id"].to_list() == list(range(1, 8))  # sorted by id
    first = frames.packages.row(0, named=True)
    assert first["category_id"] == 2 and first["repo_key"] == "github:owner1/package-1"
    assert first["pypi_name"] == "package-1" and first["repo_url_problem"] is None
    assert first["pypi_url_problem"] is None
    assert first["created"] == datetime(2013, 2, 19, 23, 26, 2, 271422, tzinfo=UTC)  # -05:00 -> UTC
    assert frames.categories.row(0, named=True)["modified"] == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert frames.grids["header"].to_list() == [True, False, False]
    assert set(frames.tables()) == {f"catalogue.{n}" for n in
                                    ("categories", "grids", "grid_packages", "packages", "rejects")}


def test_parse_iso_forms():
    assert parse_iso("2024-11-24T14:39:30-05:00") == datetime(2024, 11, 24, 19, 39, 30, tzinfo=UTC)
    assert parse_iso("2024-11-24T14:39:30Z") == datetime(2024, 11, 24, 14, 39, 30, tzinfo=UTC)
    assert parse_iso("2010-08-15 01:29:37") == datetime(2010, 8, 15, 1, 29, 37, tzinfo=UTC)
    assert parse_iso("") is None and parse_iso(None) is None
    # the crawl reads upstream stamps leniently, the catalogue rejects what it cannot read
    assert parse_iso("yesterday") is None and parse_iso(17) is None
    with pytest.raises(ValueError):
        parse_iso("yesterday", strict=True)
    assert utc_stamp("2024-11-24T14:39:30.5-05:00") == "2024-11-24T19:39:30Z" and utc_stamp(None) == ""


def test_bad_rows_are_rejected_and_the_others_go_on():
    world = v4_world()
    packages = world["packages"]
    good = copy.deepcopy(packages[0])  # id 7
    packages.extend([
        {**good, "id": None, "slug": "no-id"},
        {**good, "id": "seven", "slug": "bad-id"},
        {**good, "id": 100, "slug": ""},
        {**good, "id": 101, "title": None, "slug": "no-title"},
        {**good, "id": 102, "slug": "bad-date", "created": "yesterday"},
        {**good, "id": 103, "slug": "package-3"},  # duplicate slug: id 3 kept
        {**good, "id": 5, "slug": "other-five"},  # duplicate id, different record
        copy.deepcopy(packages[1]),  # identical copy (pagination shift): dropped silently
        "not an object",
        {**good, "id": 104, "slug": "bad-repo", "repo_url": "http://localhost:8080/etc/passwd"},
        {**good, "id": 105, "slug": "bad-pypi", "pypi_url": "http://127.0.0.1:8080/pypi/x/json"},
    ])
    world["grids"].append({"id": None, "slug": "gridless", "title": "x"})
    world["grids"].append({"id": 9, "slug": "grid-1", "title": "dup slug"})
    world["categories"].append({"id": 3, "slug": "broken", "title": "Broken", "show_pypi": "maybe"})
    frames = build_catalogue(_records(world))
    assert frames.packages["id"].to_list() == [1, 2, 3, 4, 5, 6, 7, 104, 105]
    bad_repo = frames.packages.filter(pl.col("id") == 104).row(0, named=True)
    assert bad_repo["repo_key"] is None and bad_repo["repo_url_problem"].startswith("port: ")
    # an unusable pypi_url is kept with its reason; the repository is still crawled
    bad_pypi = frames.packages.filter(pl.col("id") == 105).row(0, named=True)
    assert bad_pypi["pypi_name"] is None and bad_pypi["pypi_url_problem"].startswith("not_pypi_host: 127.0.0.1")
    assert bad_pypi["repo_key"] is not None and bad_pypi["repo_url_problem"] is None
    assert frames.notes["package_identical_duplicates_dropped"] == 1
    codes = reject_codes(frames.rejects)
    assert codes == {
        "package/missing_id": 1, "package/invalid_id": 1, "package/missing_slug": 1, "package/missing_title": 1,
        "package/invalid_datetime": 1, "package/duplicate_slug": 1, "package/duplicate_id": 1,
        "package/not_an_object": 1, "grid/missing_id": 1, "grid/duplicate_slug": 1,
        "category/invalid_boolean": 1,
    }
    dup = frames.rejects.filter(pl.col("reason").str.starts_with("duplicate_slug"), pl.col("kind") == "package").row(
        0, named=True)
    assert dup["source_id"] == 103 and dup["slug"] == "package-3" and "id 3" in dup["reason"]
    assert orjson.loads(dup["record"])["id"] == 103
    assert frames.rejects.filter(pl.col("reason").str.starts_with("missing_id"))["source_id"].to_list() == [None,
                                                                                                          None]
    assert repo_problem_codes(frames.packages) == {"port": 1}


def test_usage_and_deprecation_from_v3_records_dumps_and_csv_values():
    world = v4_world()
    by_id = {p["id"]: p for p in world["packages"]}
    by_id[1]["usage_count"] = 356  # API v3
    by_id[2]["usage"] = [4, 8, 15]  # a dumpdata many-to-many list of users
    by_id[3].update(usage=12, usage_count=None)  # a bare count; a null usage_count falls through
    by_id[4].update(usage_count="7", deprecated="True")  # CSV text
    by_id[5]["date_deprecated"] = "2023-04-01T10:00:00Z"
    by_id[6].update(deprecated_by=17, deprecated=False)
    by_id[7].update(usage_count=0, usage=99, date_deprecated=None, deprecated_by=None)  # usage_count wins
    frames = build_catalogue(_records(world))
    assert frames.rejects.is_empty()
    rows = dict(frames.packages.select("id", pl.struct("usage", "deprecated")).iter_rows())
    assert {k: (v["usage"], v["deprecated"]) for k, v in rows.items()} == {
        1: (356, False), 2: (3, False), 3: (12, False), 4: (7, True), 5: (0, True), 6: (0, True), 7: (0, False)}


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("usage_count", -3, "invalid_usage: usage_count -3 is not a non-negative integer"),
    ("usage_count", "many", "invalid_usage: usage_count 'many' is not a non-negative integer"),
    ("usage", 2.5, "invalid_usage: usage 2.5 is not a non-negative integer"),
    ("usage_count", True, "invalid_usage: usage_count True is not a non-negative integer"),
    ("usage_count", {"n": 1}, "invalid_usage: usage_count {'n': 1} is not a non-negative integer"),
    ("deprecated", "maybe", "invalid_boolean: deprecated 'maybe' is not a boolean"),
])
def test_a_bad_usage_or_deprecated_rejects_the_row_by_name(field, value, reason):
    world = v4_world()
    world["packages"][0][field] = value
    frames = build_catalogue(_records(world))
    reject = frames.rejects.row(0, named=True)
    assert frames.rejects.height == 1 and reject["kind"] == "package" and reject["reason"] == reason
    assert (reject["source_id"], reject["slug"]) == (world["packages"][0]["id"], world["packages"][0]["slug"])
    assert frames.packages.height == 6


def test_memberships_both_sides_deduplicated_and_unknown_ones_rejected():
    world = v4_world()
    by_id = {p["id"]: p for p in world["packages"]}
    by_id[1]["grids"] += ["https://elsewhere.example/api/v4/grids/42/", "https://x/api/v4/grids/nope/",
                          by_id[1]["grids"][0]]
    world["grids"][0]["packages"].append("https://djangopackages.org/api/v4/packages/999/")
    world["grids"][0]["packages"].append(3)  # an int id works too
    frames = build_catalogue(_records(world))
    pairs = set(frames.grid_packages.select("grid_id", "package_id").rows())
    assert (1, 3) in pairs and len(pairs) == 7  # package 3 is already in grid 1
    rejects = frames.rejects.filter(pl.col("kind") == "grid_package")
    reasons = sorted(r.split(":")[0] for r in rejects["reason"])
    assert reasons == ["invalid_grid_ref", "unknown_grid", "unknown_package"]
    unknown = rejects.filter(pl.col("reason").str.starts_with("unknown_grid")).row(0, named=True)
    assert unknown["source_id"] == 1 and unknown["slug"] == "package-1"


def test_membership_position_is_the_packages_own_order_then_grid_side_ones():
    # the site lists a package's grids in the database order of its memberships (the order its
    # `grids` list gives), not by id; memberships known only from a grid's `packages` come after
    world = v4_world()
    by_id = {p["id"]: p for p in world["packages"]}
    grid_ids = [g["id"] for g in world["grids"]]
    package = by_id[1]
    package["grids"] = [f"https://djangopackages.org/api/v4/grids/{g}/" for g in sorted(grid_ids, reverse=True)[:2]]
    others = [g for g in world["grids"] if g["id"] not in sorted(grid_ids, reverse=True)[:2]]
    for grid in others:
        grid["packages"] = [*(grid.get("packages") or []), 1]
    frames = build_catalogue(_records(world))
    mine = frames.grid_packages.filter(pl.col("package_id") == 1).sort("position")
    expected = sorted(grid_ids, reverse=True)[:2] + sorted(g["id"] for g in others)
    assert mine["grid_id"].to_list() == expected
    assert mine["position"].to_list() == list(range(len(expected)))


def test_memberships_of_rejected_rows_are_dropped_with_them():
    world = v4_world()
    world["grids"][0]["slug"] = None  # grid 1 rejected
    frames = build_catalogue(_records(world))
    assert 1 not in set(frames.grid_packages["grid_id"])
    assert reject_codes(frames.rejects) == {"grid/missing_slug": 1}


def test_empty_catalogue():
    frames = build_catalogue(CatalogueRecords())
    for name in ("categories", "grids", "grid_packages", "packages", "rejects"):
        assert getattr(frames, name).is_empty()
    assert frames.packages.schema == PACKAGE_SCHEMA


def _synthetic(n: int) -> CatalogueRecords:
    hosts = ["https://github.com/o{i}/p{i}", "git@gitlab.com:g{i}/sub/p{i}.git", "https://bitbucket.org/w{i}/r{i}/",
             "http://code.google.com/p/x{i}/", "", "https://github.com/o{i}/p{i}/tree/main"]
    packages = [
        {"category": f"https://djangopackages.org/api/v4/categories/{1 + i % 4}/",
         "grids": [f"https://djangopackages.org/api/v4/grids/{1 + i % 400}/"],
         "id": i, "title": f"Package {i}", "slug": f"package-{i}",
         "repo_url": hosts[i % len(hosts)].format(i=i), "pypi_url": f"https://pypi.org/project/Package_{i}/",
         "documentation_url": None,
         "created": "2013-02-19T18:26:02.271422-05:00", "modified": "2026-01-28T14:20:29-05:00"}
        for i in range(n, 0, -1)
    ]
    grids = [{"id": g, "slug": f"g{g}", "title": f"G{g}", "created": "2011-01-01T00:00:00Z",
              "modified": "2011-01-01T00:00:00Z"} for g in range(1, 401)]
    categories = [{"id": c, "slug": f"c{c}", "title": f"C{c}"} for c in range(1, 5)]
    return CatalogueRecords(categories, grids, packages, "synthetic", "json")


@pytest.mark.slow  # a 100k-package catalogue
def test_hundred_thousand_packages(record_property):
    """Scale, not speed (benchmarks measure speed): 100,000 rows come out whole and counted."""
    records = _synthetic(100_000)
    started = time.perf_counter()
    frames = build_catalogue(records)
    seconds = time.perf_counter() - started
    record_property("build_100k_seconds", round(seconds, 2))
    print(f"\nbuild_catalogue(100,000 packages): {seconds:.2f}s")
    assert frames.packages.height == 100_000 and frames.grid_packages.height == 100_000
    assert frames.rejects.is_empty()
    assert repo_problem_codes(frames.packages) == {"dead_host": 16_667, "empty": 16_667}
