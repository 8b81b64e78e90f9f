"""API v4 answered like djangopackages.org: each expectation below comes from the site's code
(djangopackages apiv4/viewsets.py, apiv4/mixins.py, apiv4/serializers.py, settings.py REST_FRAMEWORK =
{LimitOffsetPagination, PAGE_SIZE 20}, no max_limit) and Django REST framework 3.17
(pagination.LimitOffsetPagination, utils/urls.replace_query_param, negotiation, generics.get_object_or_404,
views.exception_handler), not from our own output."""

from __future__ import annotations

import os
import shutil

import orjson
import pytest

from assets.exports.api_v4 import LINK_BASE, drf_page
from assets.exports.published_api import ApiResponse, PublishedApi

BASE = f"{LINK_BASE}/api/v4"
NOT_FOUND = {"detail": "Not found."}


@pytest.fixture(scope="module")
def api(sample_published) -> PublishedApi:
    return PublishedApi(sample_published, "America/New_York")


def get(api: PublishedApi, path: str, **query: str) -> ApiResponse:
    return api.respond(path, query)


def ids(answer: ApiResponse) -> list[int]:
    return [record["id"] for record in answer.document["results"]]


# -- pagination: LimitOffsetPagination ----------------------------------------------------------------

def test_default_limit_is_page_size_20_and_no_maximum():
    records = [{"id": i} for i in range(45, 0, -1)]
    url = f"{BASE}/packages/"
    first = drf_page(records, url, {})
    assert len(first["results"]) == 20 and first["count"] == 45
    assert first["next"] == f"{url}?limit=20&offset=20" and first["previous"] is None
    everything = drf_page(records, url, {"limit": "100000"})  # max_limit = None: no cap
    assert len(everything["results"]) == 45 and everything["next"] is None


@pytest.mark.parametrize("limit", ["0", "-3", "abc", "", "1.5", "9" * 5000])
def test_a_limit_that_is_not_strictly_positive_is_ignored(limit):
    # get_limit: _positive_int(strict=True) raising ValueError -> default_limit (0 is not strictly positive)
    records = [{"id": i} for i in range(30)]
    page = drf_page(records, f"{BASE}/packages/", {"limit": limit})
    assert len(page["results"]) == 20
    assert page["next"] == f"{BASE}/packages/?limit=20&offset=20"


@pytest.mark.parametrize(("limit", "expected"), [(" 5", 5), ("+5", 5), ("1_0", 10)])
def test_limit_is_read_with_python_int(limit, expected):
    records = [{"id": i} for i in range(30)]
    assert len(drf_page(records, f"{BASE}/packages/", {"limit": limit})["results"]) == expected


def test_pages_newest_id_first_with_next_and_previous(api):
    first = get(api, "/api/v4/packages/", limit="3")
    assert first.status == 200 and list(first.document) == ["count", "next", "previous", "results"]
    assert first.document["count"] == 9 and ids(first) == [9, 8, 7]  # order_by("-id")
    assert first.document["next"] == f"{BASE}/packages/?limit=3&offset=3"
    assert first.document["previous"] is None
    second = get(api, "/api/v4/packages/", limit="3", offset="3")
    assert ids(second) == [6, 5, 4]
    assert second.document["previous"] == f"{BASE}/packages/?limit=3"  # offset - limit <= 0: no offset
    third = get(api, "/api/v4/packages/", limit="3", offset="6")
    assert third.document["next"] is None  # offset + limit >= count
    assert third.document["previous"] == f"{BASE}/packages/?limit=3&offset=3"
    middle = get(api, "/api/v4/packages/", limit="3", offset="2")
    assert middle.document["previous"] == f"{BASE}/packages/?limit=3"


def test_offset_past_the_end_is_an_empty_page_and_a_bad_offset_is_zero(api):
    past = get(api, "/api/v4/packages/", offset="50")
    assert past.status == 200 and past.document["results"] == [] and past.document["count"] == 9
    assert past.document["next"] is None
    assert past.document["previous"] == f"{BASE}/packages/?limit=20&offset=30"
    for offset in ("-4", "x", ""):  # get_offset: ValueError -> 0
        answer = get(api, "/api/v4/packages/", offset=offset, limit="2")
        assert ids(answer) == [9, 8] and answer.document["previous"] is None


def test_links_keep_the_requests_other_parameters_sorted_and_encoded(api):
    # replace_query_param: parse_qs(keep_blank_values) of the request URL, urlencode(sorted(...))
    answer = get(api, "/api/v4/packages/", offset="3", limit="3", format="json", zeta="a b&c", empty="")
    assert answer.document["next"] == f"{BASE}/packages/?empty=&format=json&limit=3&offset=6&zeta=a+b%26c"
    assert answer.document["previous"] == f"{BASE}/packages/?empty=&format=json&limit=3&zeta=a+b%26c"


def test_every_list_pages_the_same_way(api):
    assert ids(get(api, "/api/v4/grids/", limit="1")) == [11]
    assert get(api, "/api/v4/grids/", limit="1").document["next"] == f"{BASE}/grids/?limit=1&offset=1"
    assert ids(get(api, "/api/v4/categories/")) == [2, 1]


# -- records ---------------------------------------------------------------------------------------

def test_a_packages_grids_keep_membership_order(api):
    # PackageSerializer.grids is Package.grids(): gridpackage_set.all(), no ordering: the order the
    # package joined them (the sample's package 1 joined grid 11 first)
    alpha = get(api, "/api/v4/packages/1/").document
    assert alpha["grids"] == [f"{BASE}/grids/11/", f"{BASE}/grids/10/"]


def test_a_grids_packages_are_ordered_by_title(api):
    # GridSerializer.packages is grid.packages (prefetched), ordered by Package.Meta.ordering = ["title"]
    forms = get(api, "/api/v4/grids/forms/").document
    assert forms["packages"] == [f"{BASE}/packages/1/", f"{BASE}/packages/3/"]  # Alpha, Gamma


def test_root_lists_the_routers_prefixes(api):
    assert get(api, "/api/v4/").document == {
        "packages": f"{BASE}/packages/", "search": f"{BASE}/search/", "grids": f"{BASE}/grids/",
        "categories": f"{BASE}/categories/"}


def test_every_absolute_link_starts_with_the_placeholder(api):
    body = orjson.dumps([get(api, path).document for path in (
        "/api/v4/", "/api/v4/packages/", "/api/v4/grids/", "/api/v4/categories/", "/api/v4/packages/1/")]).decode()
    assert "http" in body
    links = [part for part in body.split('"') if part.startswith("http") and "/api/" in part]
    assert links and all(link.startswith(LINK_BASE + "/api/v4/") for link in links)


# -- detail lookups and 404 bodies -----------------------------------------------------------------

def test_detail_by_id_or_slug_for_packages_and_grids(api):
    # MultiLookupFieldMixin: all digits -> pk, anything else -> slug
    assert get(api, "/api/v4/packages/alpha/").document == get(api, "/api/v4/packages/1/").document
    assert get(api, "/api/v4/grids/forms/").document["id"] == 10
    assert get(api, "/api/v4/grids/10/").document["slug"] == "forms"


def test_categories_by_id_only(api):
    assert get(api, "/api/v4/categories/1/").document["slug"] == "apps"
    # default lookup pk: Category.objects.get(pk="apps") raises ValueError -> DRF's bare Http404
    assert get(api, "/api/v4/categories/apps/") == ApiResponse(404, NOT_FOUND)
    assert get(api, "/api/v4/categories/999/") == ApiResponse(404, {"detail": "No Category matches the given query."})


def test_a_miss_answers_djangos_message(api):
    for path, model in (("/api/v4/packages/999/", "Package"), ("/api/v4/packages/no-such/", "Package"),
                        ("/api/v4/grids/999/", "Grid"), ("/api/v4/grids/no-such/", "Grid")):
        assert get(api, path) == ApiResponse(404, {"detail": f"No {model} matches the given query."}), path


def test_digits_int_cannot_read_are_a_bare_404(api):
    # "²".isdigit() is True (pk lookup), int("²") raises ValueError -> generics.get_object_or_404: Http404
    assert get(api, "/api/v4/packages/²/") == ApiResponse(404, NOT_FOUND)


@pytest.mark.parametrize("path", ["/api/v4/nothing/", "/api/v4/packages/1/extra/", "/api/v4/search/alpha/",
                                  "/api/v4/packages/a.b/", "/api/v4/categories/1/health/", "/api/v5/",
                                  "/api/v4//packages/", "/"])
def test_unknown_paths_are_not_found(api, path):
    assert get(api, path) == ApiResponse(404, NOT_FOUND)


# -- ?format= ----------------------------------------------------------------------------------------

def test_format_json_is_accepted_and_an_unknown_format_is_a_404(api):
    plain = get(api, "/api/v4/packages/1/")
    assert get(api, "/api/v4/packages/1/", format="json") == plain
    assert get(api, "/api/v4/packages/1/", format="") == plain  # empty: no format asked
    # DefaultContentNegotiation.filter_renderers: no renderer for the format -> Http404, before the view
    for path in ("/api/v4/", "/api/v4/packages/", "/api/v4/packages/1/", "/api/v4/packages/999/",
                 "/api/v4/search/"):
        assert get(api, path, format="xml") == ApiResponse(404, NOT_FOUND), path


# -- search ------------------------------------------------------------------------------------------

def test_search_is_a_bare_list_and_blank_is_empty(api):
    hits = get(api, "/api/v4/search/", q="alpha")
    assert hits.status == 200 and isinstance(hits.document, list) and 0 < len(hits.document) <= 20
    assert get(api, "/api/v4/search/", q="   ").document == []
    assert get(api, "/api/v4/search/").document == []


# -- snapshots ---------------------------------------------------------------------------------------

def test_reload_swaps_only_when_the_file_changes_and_old_snapshots_keep_answering(sample_published, tmp_path):
    path = tmp_path / "published.duckdb"
    shutil.copyfile(sample_published, path)
    api = PublishedApi(path, "UTC")
    old = api.snapshot()
    assert api.reload_if_changed() is False and api.snapshot() is old
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert api.reload_if_changed() is True
    new = api.snapshot()
    assert new is not old and new.token != old.token and new.published_at > old.published_at
    assert api.respond("/api/v4/packages/1/", {}, snapshot=old) == api.respond("/api/v4/packages/1/", {})


# -- format suffixes (DefaultRouter include_format_suffixes, urlpatterns.format_suffix_patterns) ----

def test_format_suffix_routes_and_suffixed_hyperlinks(api):
    # HyperlinkedRelatedField / APIRootView reverse with the view's format_kwarg: links carry `.json`
    alpha = get(api, "/api/v4/packages/1.json/").document
    assert alpha["grids"] == [f"{BASE}/grids/11.json", f"{BASE}/grids/10.json"]
    assert alpha["category"] == f"{BASE}/categories/1.json"
    assert {k: v for k, v in alpha.items() if k not in ("grids", "category")} == {
        k: v for k, v in get(api, "/api/v4/packages/1/").document.items() if k not in ("grids", "category")}
    assert get(api, "/api/v4/packages/alpha.json/").document == alpha
    assert get(api, "/api/v4/.json/").document["packages"] == f"{BASE}/packages.json"
    listing = get(api, "/api/v4/grids.json/", limit="1").document
    assert listing["results"][0]["id"] == 11 and listing["results"][0]["packages"] == [f"{BASE}/packages/1.json"]
    assert listing["next"] == f"{BASE}/grids.json/?limit=1&offset=1"  # the request's own path
    assert get(api, "/api/v4/search.json/", q="alpha").document == get(api, "/api/v4/search/", q="alpha").document
    # the suffix wins over ?format=; an unknown suffix is the negotiation 404; no suffix on documents
    assert get(api, "/api/v4/packages/1.json/", format="xml").status == 200
    for path in ("/api/v4/packages/1.xml/", "/api/v4/packages.JSON/", "/api/v4/packages/1/score.json/",
                 "/api/v4/categories/.json/"):
        assert get(api, path) == ApiResponse(404, NOT_FOUND), path
