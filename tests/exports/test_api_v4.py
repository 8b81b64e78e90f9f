"""The API v4 rendering: DRF datetimes, key order, pagination links, and the export tree."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson

from assets.exports.api_v4 import (
    ApiContext,
    drf_datetime,
    find,
    page,
    render_category,
    render_grid,
    render_package,
    write_tree,
)

NY = ZoneInfo("America/New_York")
CTX = ApiContext.create("https://example.org/", "America/New_York")

PACKAGE_KEYS = [
    "category", "grids", "id", "title", "slug", "last_updated", "last_fetched", "repo_url", "pypi_version",
    "created", "modified", "repo_forks", "repo_description", "pypi_url", "documentation_url", "repo_watchers",
    "commits_over_52", "participants",
]


def _package_row(**overrides):
    row = {
        "id": 1672, "title": "django-stronghold", "slug": "django-stronghold", "category_id": 1,
        "last_updated": datetime(2024, 11, 24, 19, 39, 30, tzinfo=UTC),
        "last_fetched": datetime(2026, 2, 15, 23, 1, 32, 757631, tzinfo=UTC),
        "repo_url": "https://github.com/mgrouchy/django-stronghold", "pypi_version": "0.4.0",
        "created": datetime(2013, 2, 19, 23, 26, 2, 271422, tzinfo=UTC),
        "modified": datetime(2026, 1, 28, 19, 20, 29, 80197, tzinfo=UTC),
        "repo_forks": 46, "repo_description": "Get inside your stronghold", "pypi_url": "",
        "documentation_url": None, "repo_watchers": 402, "grid_ids": [7, 66],
        "commits_over_52": [0] * 52, "participants": ["mgrouchy", "dependabot[bot]"],
    }
    row.update(overrides)
    return row


def test_drf_datetimes_follow_the_zone_and_drop_zero_microseconds():
    assert drf_datetime(datetime(2024, 11, 24, 19, 39, 30, tzinfo=UTC), NY) == "2024-11-24T14:39:30-05:00"
    assert drf_datetime(datetime(2026, 2, 15, 23, 1, 32, 757631, tzinfo=UTC), NY) == "2026-02-15T18:01:32.757631-05:00"
    assert drf_datetime(datetime(2024, 7, 1, 12, 0, tzinfo=UTC), NY) == "2024-07-01T08:00:00-04:00"
    assert drf_datetime(datetime(2024, 7, 1, 12, 0, tzinfo=UTC), ZoneInfo("UTC")) == "2024-07-01T12:00:00Z"
    assert drf_datetime(None, NY) is None


def test_package_record_matches_the_real_example():
    record = render_package(_package_row(), CTX)
    assert list(record) == PACKAGE_KEYS
    assert record["category"] == "https://example.org/api/v4/categories/1/"
    assert record["grids"] == ["https://example.org/api/v4/grids/7/", "https://example.org/api/v4/grids/66/"]
    assert record["last_updated"] == "2024-11-24T14:39:30-05:00"
    assert record["last_fetched"] == "2026-02-15T18:01:32.757631-05:00"
    assert record["created"] == "2013-02-19T18:26:02.271422-05:00"
    assert record["participants"] == ["mgrouchy", "dependabot[bot]"]


def test_unknown_upstream_values_render_like_the_real_api():
    record = render_package(
        _package_row(repo_forks=None, repo_watchers=None, repo_description=None, commits_over_52=[],
                     participants=[], last_updated=None, pypi_version=None),
        CTX,
    )
    assert (record["repo_forks"], record["repo_watchers"], record["repo_description"]) == (0, 0, "")
    assert record["commits_over_52"] == [] and record["participants"] == []
    assert record["last_updated"] is None and record["pypi_version"] is None


def test_grid_and_category_key_order():
    grid = render_grid({"id": 7, "title": "Auth", "slug": "auth", "description": None, "is_locked": False,
                        "header": True, "created": datetime(2020, 1, 1, tzinfo=UTC),
                        "modified": datetime(2020, 1, 1, tzinfo=UTC), "package_ids": [3, 1]}, CTX)
    assert list(grid) == ["id", "title", "slug", "description", "is_locked", "packages", "header", "created",
                          "modified"]
    assert grid["packages"] == ["https://example.org/api/v4/packages/3/", "https://example.org/api/v4/packages/1/"]
    category = render_category({"id": 1, "title": "App", "slug": "apps", "description": "d", "title_plural": "Apps",
                                "show_pypi": True, "created": datetime(2020, 1, 1, tzinfo=UTC),
                                "modified": datetime(2020, 1, 1, tzinfo=UTC)}, CTX)
    assert list(category) == ["id", "title", "slug", "description", "title_plural", "show_pypi", "created",
                              "modified"]


def test_pagination_links_are_absolute_like_drf():
    records = [{"id": i} for i in range(45, 0, -1)]
    first = page("packages", records, CTX)
    assert first["count"] == 45 and first["previous"] is None
    assert first["next"] == "https://example.org/api/v4/packages/?limit=20&offset=20"
    second = page("packages", records, CTX, offset=20)
    assert second["previous"] == "https://example.org/api/v4/packages/?limit=20"
    assert second["next"] == "https://example.org/api/v4/packages/?limit=20&offset=40"
    third = page("packages", records, CTX, offset=40)
    assert third["previous"] == "https://example.org/api/v4/packages/?limit=20&offset=20"
    assert third["next"] is None and [r["id"] for r in third["results"]] == [5, 4, 3, 2, 1]


def test_find_by_id_or_slug():
    records = [{"id": 12, "slug": "12-factor"}, {"id": 3, "slug": "abc"}]
    assert find(records, "12")["slug"] == "12-factor"
    assert find(records, "12-factor")["id"] == 12
    assert find(records, "nope") is None


def test_tree_paths_come_from_integer_ids_only(tmp_path):
    evil = render_package(_package_row(id=5, slug="../../../etc/passwd", title="../x"), CTX)
    records = {"packages": [evil], "grids": [], "categories": []}
    export = tmp_path / "export"
    counts = write_tree(export, records, CTX)
    assert counts["packages"] == 1
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "export/api/v4/categories/index.json",
        "export/api/v4/grids/index.json",
        "export/api/v4/index.json",
        "export/api/v4/packages/5/index.json",
        "export/api/v4/packages/index.json",
    ]
    assert orjson.loads((export / "api/v4/packages/5/index.json").read_bytes())["slug"] == "../../../etc/passwd"


def test_tree_is_replaced_whole(tmp_path):
    export = tmp_path / "export"
    write_tree(export, {"packages": [render_package(_package_row(id=1), CTX)], "grids": [], "categories": []}, CTX)
    write_tree(export, {"packages": [render_package(_package_row(id=2), CTX)], "grids": [], "categories": []}, CTX)
    assert not (export / "api/v4/packages/1").exists()
    assert (export / "api/v4/packages/2/index.json").exists()
    assert not list(tmp_path.glob("export.*"))
