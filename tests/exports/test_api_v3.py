"""API v3 answered like djangopackages.org: expectations from the site's apiv3/views.py (GET_int,
calc_next, calc_previous, the list views), apiv3/resources.py (field names and values), apiv3/urls.py
(`<slug:slug>` routes), django-jsonview's `@json_view` (404/500 bodies) and Django's DjangoJSONEncoder
(datetimes), not from our own output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from assets.exports.api_v3 import django_datetime
from assets.exports.published_api import ApiResponse, PublishedApi

SERVER_ERROR = ApiResponse(500, {"error": 500, "message": "An error occurred"})
META_KEYS = ["limit", "next", "offset", "previous", "total_count"]
PACKAGE_KEYS = ["absolute_url", "created", "modified", "slug", "title",  # base_resource
                "category", "commit_list", "commits_over_52", "created_by", "documentation_url", "grids",
                "last_fetched", "last_modified_by", "participants", "pypi_url", "pypi_version",
                "repo_description", "repo_forks", "repo_url", "repo_watchers", "resource_uri", "usage_count"]
TITLES = ["Alpha", "Beta", "Delta", "Eps", "Eta", "Gamma", "Iota", "Theta", "Zeta"]


@pytest.fixture(scope="module")
def api(sample_published) -> PublishedApi:
    return PublishedApi(sample_published, "America/New_York")


def get(api: PublishedApi, path: str, **query: str) -> ApiResponse:
    return api.respond(path, query)


def titles(answer: ApiResponse) -> list[str]:
    return [o["title"] for o in answer.document["objects"]]


def test_index(api):
    assert get(api, "/api/v3/").document == {
        "categories": "/api/v3/categories/", "grids": "/api/v3/grids/", "packages": "/api/v3/packages/",
        "users": "/api/v3/users/"}


def test_package_list_shape_and_title_order(api):
    answer = get(api, "/api/v3/packages/")
    assert answer.status == 200 and list(answer.document) == ["meta", "category", "objects"]
    assert answer.document["category"] is None
    assert list(answer.document["meta"]) == META_KEYS
    assert answer.document["meta"] == {"limit": 20, "next": None, "offset": 0, "previous": None, "total_count": 9}
    assert titles(answer) == TITLES  # Package.Meta.ordering = ["title"]


def test_next_and_previous_are_relative_and_previous_keeps_offset_zero(api):
    first = get(api, "/api/v3/packages/", limit="4").document["meta"]
    assert first["next"] == "/api/v3/packages/?limit=4&offset=4" and first["previous"] is None
    second = get(api, "/api/v3/packages/", limit="4", offset="4").document["meta"]
    assert second["previous"] == "/api/v3/packages/?limit=4&offset=0"  # max(offset - limit, 0)
    assert second["next"] == "/api/v3/packages/?limit=4&offset=8"
    odd = get(api, "/api/v3/packages/", limit="4", offset="1").document["meta"]
    assert odd["previous"] == "/api/v3/packages/?limit=4&offset=0"
    last = get(api, "/api/v3/packages/", limit="4", offset="8")
    assert last.document["meta"]["next"] is None and titles(last) == ["Zeta"]  # count > limit + offset only


def test_limit_zero_gives_nothing_and_a_next_to_the_same_offset(api):
    answer = get(api, "/api/v3/packages/", limit="0", offset="3").document
    assert answer["objects"] == []
    assert answer["meta"]["limit"] == 0 and answer["meta"]["next"] == "/api/v3/packages/?limit=0&offset=3"


def test_limit_and_offset_fall_back_only_when_not_integers(api):
    answer = get(api, "/api/v3/packages/", limit="many", offset="x").document
    assert answer["meta"]["limit"] == 20 and answer["meta"]["offset"] == 0 and len(answer["objects"]) == 9


def test_negative_slices_fail_like_the_site(api):
    # QuerySet[offset:offset + limit] with a negative bound raises; @json_view answers a 500 body
    assert get(api, "/api/v3/packages/", offset="-1") == SERVER_ERROR
    assert get(api, "/api/v3/grids/", limit="-5", offset="2") == SERVER_ERROR
    # a negative limit whose stop stays >= 0 is an empty slice, not an error
    answer = get(api, "/api/v3/packages/", limit="-2", offset="5").document
    assert answer["objects"] == [] and answer["meta"]["next"] == "/api/v3/packages/?limit=-2&offset=3"
    # PostgreSQL's LIMIT is a bigint
    assert get(api, "/api/v3/packages/", limit=str(2**64)) == SERVER_ERROR


def test_category_filter_and_its_quirks(api):
    answer = get(api, "/api/v3/packages/", category="frameworks", limit="1").document
    assert answer["meta"]["total_count"] == 2 and titles(get(api, "/api/v3/packages/", category="frameworks")) == [
        "Gamma", "Zeta"]
    assert answer["category"] is None  # always null
    assert answer["meta"]["next"] == "/api/v3/packages/?limit=1&offset=1"  # the filter is not carried
    unknown = get(api, "/api/v3/packages/", category="no-such").document
    assert unknown["meta"]["total_count"] == 9  # Category.DoesNotExist: every package


def test_package_resource(api):
    alpha = get(api, "/api/v3/packages/alpha/").document
    assert list(alpha) == PACKAGE_KEYS
    v4 = get(api, "/api/v4/packages/alpha/").document
    assert alpha["absolute_url"] == "/packages/p/alpha/" and alpha["resource_uri"] == "/api/v3/packages/alpha/"
    assert alpha["category"] == "/api/v3/categories/apps/"
    assert alpha["grids"] == ["/api/v3/grids/auth/", "/api/v3/grids/forms/"]  # gridpackage_set order
    assert alpha["participants"] == ",".join(v4["participants"])
    assert alpha["commit_list"] == alpha["commits_over_52"] == ",".join(map(str, v4["commits_over_52"]))
    assert alpha["usage_count"] == 42  # the catalogue's "I use this" count
    assert alpha["created_by"] is None and alpha["last_modified_by"] is None
    assert (alpha["repo_watchers"], alpha["repo_forks"], alpha["pypi_version"]) == (
        v4["repo_watchers"], v4["repo_forks"], v4["pypi_version"])
    assert alpha["created"] == "2020-01-01T00:00:00Z"  # DjangoJSONEncoder: UTC, not the v4 zone


def test_grid_and_category_resources(api):
    forms = get(api, "/api/v3/grids/forms/").document
    assert list(forms) == ["absolute_url", "created", "modified", "slug", "title", "description", "is_locked",
                           "resource_uri", "header", "packages"]
    assert forms["absolute_url"] == "/grids/g/forms/" and forms["resource_uri"] == "/api/v3/grids/forms/"
    assert forms["packages"] == ["/api/v3/packages/alpha/", "/api/v3/packages/gamma/"]
    grids = get(api, "/api/v3/grids/").document
    assert list(grids) == ["meta", "objects"] and titles(get(api, "/api/v3/grids/")) == ["Auth", "Forms"]
    apps = get(api, "/api/v3/categories/apps/").document
    assert list(apps) == ["absolute_url", "created", "modified", "slug", "title", "description", "resource_uri",
                          "show_pypi", "title_plural"]
    assert apps["absolute_url"] == "/categories/apps/" and apps["resource_uri"] == "/api/v3/categories/apps/"
    assert titles(get(api, "/api/v3/categories/")) == ["App", "Framework"]


def test_grid_packages_list(api):
    answer = get(api, "/api/v3/grids/forms/packages/", limit="1").document
    assert list(answer) == ["meta", "grid", "objects"]
    assert answer["grid"] == get(api, "/api/v3/grids/forms/").document
    assert titles(get(api, "/api/v3/grids/forms/packages/")) == ["Alpha", "Gamma"]
    assert answer["meta"]["next"] == "/api/v3/grids/forms/packages/?limit=1&offset=1"


def test_misses_answer_json_views_404(api):
    for path, model in (("/api/v3/packages/no-such/", "Package"), ("/api/v3/grids/no-such/", "Grid"),
                        ("/api/v3/grids/no-such/packages/", "Grid"), ("/api/v3/categories/no-such/", "Category")):
        assert get(api, path) == ApiResponse(404, {"error": 404, "message": f"No {model} matches the given query."})


@pytest.mark.parametrize("path", ["/api/v3/packages/a.b/", "/api/v3/users/", "/api/v3/packages/1/extra/",
                                  "/api/v3/nothing/"])
def test_no_route(api, path):
    assert get(api, path) == ApiResponse(404, {"detail": "Not found."})


def test_v3_ignores_format(api):
    assert get(api, "/api/v3/packages/alpha/", format="xml") == get(api, "/api/v3/packages/alpha/")


@pytest.mark.parametrize(("value", "text"), [
    (datetime(2013, 2, 19, 23, 26, 2, 271422, tzinfo=UTC), "2013-02-19T23:26:02.271Z"),
    (datetime(2010, 8, 14, 22, 47, 52, tzinfo=UTC), "2010-08-14T22:47:52Z"),
    (datetime(2024, 1, 1, 7, 0, 0, 500, tzinfo=timezone(timedelta(hours=2))), "2024-01-01T05:00:00.000Z"),
    (None, None),
])
def test_django_json_encoder_datetimes(value, text):
    assert django_datetime(value) == text
