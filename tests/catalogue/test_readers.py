"""read_catalogue: API, JSON (v4 lists, bare package list, Django dumpdata), CSV, compressed, errors."""

from __future__ import annotations

import bz2
import gzip

import orjson
import pytest

from assets.catalogue.readers import read_catalogue
from assets.catalogue.transform import build_catalogue
from pipelines.sources.djangopackages import CatalogueInvalid, CatalogueUnreachable
from tests.catalogue.conftest import v4_world


def test_api_source(v4_server):
    records = read_catalogue(v4_server.url, max_wait=0.01)
    assert records.source_kind == "api"
    assert (len(records.categories), len(records.grids), len(records.packages)) == (2, 3, 7)


def test_json_object_of_lists(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_bytes(orjson.dumps(v4_world()))
    records = read_catalogue(str(path))
    assert records.source_kind == "json"
    assert (len(records.categories), len(records.grids), len(records.packages)) == (2, 3, 7)
    frames = build_catalogue(records)
    assert frames.packages.height == 7 and frames.rejects.is_empty()
    # memberships given on both sides agree: one row each
    assert frames.grid_packages.height == 7


def test_json_list_of_packages_and_compression(tmp_path):
    packages = v4_world()["packages"]
    path = tmp_path / "packages.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps(packages)))
    records = read_catalogue(str(path))
    assert records.packages == packages and records.grids == [] and records.categories == []
    frames = build_catalogue(records)
    assert frames.packages.height == 7
    # the packages list grids that are not in this catalogue: recorded, not fatal
    assert set(frames.rejects["kind"]) == {"grid_package"}
    assert frames.grid_packages.is_empty()


def test_json_saved_list_page(tmp_path):
    path = tmp_path / "page.json"
    path.write_bytes(orjson.dumps({"count": 7, "next": None, "previous": None, "results": v4_world()["packages"]}))
    assert len(read_catalogue(str(path)).packages) == 7


def test_csv_catalogue_small(tmp_path):
    path = tmp_path / "catalogue.csv"
    path.write_text(
        'dp_slug;dp_category;dp_grids;dp_repo_url\n'
        '"b-pkg";"apps";"zeta,alpha";"https://github.com/o/b"\n'
        '"a-pkg";"widgets";"alpha";""\n'
        '"c-pkg";"other";"";"http://code.google.com/p/c/"\n'
    )
    records = read_catalogue(str(path))
    assert records.source_kind == "csv"
    assert [p["id"] for p in records.packages] == [1, 2, 3]  # data row order
    assert {g["slug"]: g["id"] for g in records.grids} == {"alpha": 1, "zeta": 2}  # sorted slugs
    cats = {c["slug"]: c["id"] for c in records.categories}
    assert cats == {"apps": 1, "frameworks": 2, "projects": 3, "other": 4, "widgets": 5}
    assert records.packages[0]["grids"] == [2, 1] and records.packages[0]["pypi_url"] is None
    frames = build_catalogue(records)
    packages = frames.packages.sort("id")
    assert packages["pypi_name"].to_list() == ["b-pkg", "a-pkg", "c-pkg"]  # no pypi column: the slug
    assert packages["repo_key"].to_list() == ["github:o/b", None, None]
    assert packages["repo_url_problem"].to_list()[1:] == [
        "empty: no repository URL", "dead_host: code.google.com is a code host that is gone or not crawlable"]
    assert packages["category_id"].to_list() == [1, 5, 4]
    # (grid, package, position): package 1 lists zeta (2) before alpha (1) in its row
    assert frames.grid_packages.rows() == [(1, 1, 1), (1, 2, 0), (2, 1, 0)]


def test_csv_with_comma_and_optional_columns(tmp_path):
    path = tmp_path / "catalogue.csv"
    path.write_text(
        "id,slug,title,category,grids,repo_url,pypi_url,created,modified\n"
        '10,x,X Package,1,"g1,g2",https://gitlab.com/a/b/c,https://pypi.org/project/X/,2020-01-01T00:00:00Z,\n'
        "11,y,Y,2,,,,,\n"
    )
    frames = build_catalogue(read_catalogue(str(path)))
    rows = frames.packages.sort("id").to_dicts()
    assert [r["id"] for r in rows] == [10, 11]
    assert rows[0]["title"] == "X Package" and rows[0]["pypi_name"] == "x"
    assert rows[0]["repo_owner"] == "a/b" and rows[0]["created"].isoformat() == "2020-01-01T00:00:00+00:00"
    assert rows[1]["pypi_url"] == "" and rows[1]["pypi_name"] is None  # "" = not on PyPI


def test_real_csv_2022(csv_2022):
    records = read_catalogue(str(csv_2022))
    assert len(records.packages) == 4896
    assert len(records.categories) == 4
    assert len(records.grids) == 348
    frames = build_catalogue(records)
    assert frames.packages.height == 4896 and frames.rejects.is_empty()
    assert frames.packages["repo_key"].null_count() == 669
    assert frames.packages["repo_key"].n_unique() == 4227 + 1  # + null
    hosts = dict(frames.packages["repo_host"].value_counts().iter_rows())
    assert hosts == {"github": 4191, "gitlab": 36, None: 669}
    pairs = {(g, p["id"]) for p in records.packages for g in p["grids"]}
    assert frames.grid_packages.height == len(pairs) == 4936
    # dp_usage_count: djangopackages' "I use this" count; repo_maybe_deprecated is not the catalogue's word
    usage = frames.packages["usage"]
    assert usage.null_count() == 0 and usage.sum() == 13412 and (usage > 0).sum() == 2306 and usage.max() == 534
    assert not frames.packages["deprecated"].any()


def test_dump_memberships_in_gridpackage_pk_order(tmp_path):
    # Django's `gridpackage_set.all()` (no Meta.ordering) gives the rows in database order: pk order in
    # a dump, whatever order the file lists them in
    stamp = "2011-01-01T00:00:00"
    rows = [{"model": "package.category", "pk": 1, "fields": {"title": "App", "slug": "apps", "created": stamp,
                                                                "modified": stamp}}]
    rows += [{"model": "grid.grid", "pk": g, "fields": {"title": f"G{g}", "slug": f"g{g}", "created": stamp,
                                                         "modified": stamp}} for g in (1, 2, 3)]
    rows.append({"model": "package.package", "pk": 7, "fields": {"title": "P", "slug": "p", "category": 1,
                                                                  "created": stamp, "modified": stamp}})
    rows += [{"model": "grid.gridpackage", "pk": pk, "fields": {"grid": grid, "package": 7}}
             for pk, grid in ((12, 1), (5, 3), (9, 2))]
    path = tmp_path / "dump.json"
    path.write_bytes(orjson.dumps(rows))
    records = read_catalogue(str(path))
    assert records.packages[0]["grids"] == [3, 2, 1]
    frames = build_catalogue(records)
    assert frames.grid_packages.sort("position")["grid_id"].to_list() == [3, 2, 1]


def test_real_dump_2011(dump_2011):
    records = read_catalogue(str(dump_2011))
    assert records.source_kind == "dumpdata"
    assert (len(records.categories), len(records.grids), len(records.packages)) == (4, 89, 669)
    frames = build_catalogue(records)
    assert frames.rejects.is_empty()
    assert frames.grid_packages.height == 575
    assert frames.categories.sort("id")["slug"].to_list() == ["apps", "frameworks", "projects", "other"]
    django = frames.packages.filter(frames.packages["slug"] == "django").to_dicts()[0]
    assert django["repo_key"] == "github:django/django" and django["pypi_name"] == "django"
    # naive 2011 datetimes are read as UTC
    assert frames.grids["created"].dtype.time_zone == "UTC"
    # `usage` is the many-to-many list of users: counted
    assert django["usage"] == len(next(p for p in records.packages if p["slug"] == "django")["usage"]) > 0
    assert frames.packages["usage"].sum() == 3562 and not frames.packages["deprecated"].any()


def test_csv_usage_and_deprecation_columns(tmp_path):
    path = tmp_path / "catalogue.csv"
    path.write_text(
        "slug,repo_url,usage_count,deprecated,date_deprecated\n"
        "a,https://github.com/o/a,12,,\n"
        "b,https://github.com/o/b,,true,\n"
        "c,https://github.com/o/c,3,False,2021-05-01 10:00:00\n"
        "d,https://github.com/o/d,-1,,\n"
        "e,https://github.com/o/e,lots,,\n"
    )
    frames = build_catalogue(read_catalogue(str(path)))
    assert frames.packages.select("slug", "usage", "deprecated").rows() == [
        ("a", 12, False), ("b", 0, True), ("c", 3, True)]
    assert frames.rejects.select("source_id", "slug", "reason").rows() == [
        (4, "d", "invalid_usage: usage_count '-1' is not a non-negative integer"),
        (5, "e", "invalid_usage: usage_count 'lots' is not a non-negative integer"),
    ]


def test_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(CatalogueUnreachable, match=f"catalogue file not found: {missing}"):
        read_catalogue(str(missing))
    with pytest.raises(CatalogueUnreachable, match="not a file"):
        read_catalogue(str(tmp_path))


def test_unusable_files(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"packages": [')
    with pytest.raises(CatalogueInvalid, match="invalid JSON"):
        read_catalogue(str(bad_json))
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"packages": 3}')
    with pytest.raises(CatalogueInvalid, match="'packages' is not a list"):
        read_catalogue(str(wrong))
    no_slug = tmp_path / "no_slug.csv"
    no_slug.write_text("name,repo\nx,y\n")
    with pytest.raises(CatalogueInvalid, match="no slug column"):
        read_catalogue(str(no_slug))
    broken = tmp_path / "broken.json.bz2"
    broken.write_bytes(bz2.compress(b'{"packages": []}')[:-8])
    with pytest.raises(CatalogueInvalid, match="cannot decompress"):
        read_catalogue(str(broken))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("slug\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CatalogueInvalid, match="not UTF-8"):
        read_catalogue(str(latin))
