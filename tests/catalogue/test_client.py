"""The djangopackages API v4 reader over real HTTP (a small in-test server, and the simulator)."""

from __future__ import annotations

import socket

import httpx
import pytest
from packaging.utils import canonicalize_name

from pipelines.sources.djangopackages import (
    CatalogueError,
    CatalogueIncomplete,
    CatalogueInvalid,
    CatalogueUnreachable,
    DjangoPackagesClient,
    id_from_url,
    read_api,
)

FAST = {"max_wait": 0.01}


def test_reads_every_list_following_next_links(v4_server):
    client = DjangoPackagesClient(v4_server.url, page_size=3, **FAST)
    lists = client.read_all()
    assert [len(lists[k]) for k in ("categories", "grids", "packages")] == [2, 3, 7]
    assert [p["id"] for p in lists["packages"]] == [7, 6, 5, 4, 3, 2, 1]
    package_pages = [r for r in v4_server.requests if r.startswith("/api/v4/packages/")]
    assert package_pages == ["/api/v4/packages/?limit=3&offset=0", "/api/v4/packages/?limit=3&offset=3",
                             "/api/v4/packages/?limit=3&offset=6"]


def test_asks_for_large_pages(v4_server):
    read_api(v4_server.url + "/", **FAST)
    assert set(v4_server.requests) == {f"/api/v4/{n}/?limit=500&offset=0" for n in ("categories", "grids", "packages")}


def test_next_link_to_another_host_is_an_error_not_followed(v4_server):
    v4_server.rewrite_next = lambda url: url.replace("127.0.0.1", "evil.example")
    with pytest.raises(CatalogueInvalid, match=r"leaves 127\.0\.0\.1:\d+: not followed"):
        DjangoPackagesClient(v4_server.url, page_size=3, **FAST).read_all()
    assert all("evil" not in r for r in v4_server.requests)


@pytest.mark.parametrize("rewrite", [
    lambda url: url.replace("http://127.0.0.1:", "http://127.0.0.1:1"),  # another port
    lambda url: url.replace("http://", "https://"),  # another scheme: another default port
    lambda url: url.replace("http://", "http://user:pw@"),
    lambda url: "file:///etc/passwd",
])
def test_next_link_elsewhere_on_the_host_is_refused_too(v4_server, rewrite):
    v4_server.rewrite_next = rewrite
    # "1" before the port may also push it past 65535: then the link is not even a URL
    with pytest.raises(CatalogueInvalid, match=r"leaves 127\.0\.0\.1:\d+: not followed|is not a URL"):
        DjangoPackagesClient(v4_server.url, page_size=3, **FAST).read_all()
    assert all(r.endswith("&offset=0") for r in v4_server.requests), v4_server.requests  # first pages only


def test_redirects_are_followed_on_the_same_host_only(v4_server):
    v4_server.redirects["/old/api/v4/categories/"] = "/api/v4/categories/?limit=500&offset=0"
    client = DjangoPackagesClient(v4_server.url + "/old", **FAST)
    assert len(client.read_list("categories")) == 2
    v4_server.redirects["/old/api/v4/grids/"] = "https://evil.example/api/v4/grids/"
    with pytest.raises(CatalogueInvalid, match=r"redirect .* leaves"):
        client.read_list("grids")
    assert not any("evil" in r for r in v4_server.requests)


def test_pagination_loop_is_detected(v4_server):
    v4_server.rewrite_next = lambda url: url.split("&offset=")[0] + "&offset=0"
    with pytest.raises(CatalogueInvalid, match="loops back"):
        DjangoPackagesClient(v4_server.url, page_size=3, **FAST).read_all()


def test_transient_errors_are_retried(v4_server):
    v4_server.failures["packages"] = 2
    lists = DjangoPackagesClient(v4_server.url, attempts=3, **FAST).read_all()
    assert len(lists["packages"]) == 7
    assert sum(r.startswith("/api/v4/packages/") for r in v4_server.requests) == 3


def test_retries_are_bounded(v4_server):
    v4_server.failures["grids"] = 100
    with pytest.raises(CatalogueUnreachable) as caught:
        DjangoPackagesClient(v4_server.url, attempts=3, **FAST).read_all()
    message = str(caught.value)
    assert message == (f"catalogue unreachable: GET {v4_server.url}/api/v4/grids/?limit=500&offset=0: "
                       "HTTP 503 (after 3 attempts)")
    assert sum(r.startswith("/api/v4/grids/") for r in v4_server.requests) == 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_is_one_clear_line():
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(CatalogueUnreachable) as caught:
        read_api(url, attempts=2, **FAST)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"catalogue unreachable: GET {url}/api/v4/categories/")
    assert "ConnectError" in message
    assert isinstance(caught.value, CatalogueError)


def test_not_found_and_not_json(v4_server):
    v4_server.raw_body["categories"] = b"<html>maintenance</html>"
    with pytest.raises(CatalogueInvalid, match="not JSON"):
        read_api(v4_server.url, **FAST)
    v4_server.raw_body["categories"] = b'{"detail": "x"}'
    with pytest.raises(CatalogueInvalid, match="not a v4 list page"):
        read_api(v4_server.url, **FAST)
    v4_server.raw_body.clear()
    with pytest.raises(CatalogueUnreachable, match="HTTP 404"):
        read_api(v4_server.url + "/elsewhere", **FAST)


def test_injected_client_factory(v4_server):
    made = []

    def factory() -> httpx.Client:
        made.append(httpx.Client(headers={"X-Test": "1"}))
        return made[-1]

    lists = read_api(v4_server.url, http_client_factory=factory, **FAST)
    assert len(lists["packages"]) == 7 and len(made) == 1 and made[0].is_closed


def test_bad_base_url():
    with pytest.raises(CatalogueInvalid, match=r"'ftp://example\.org' is not an http\(s\) URL"):
        DjangoPackagesClient("ftp://example.org")


@pytest.mark.parametrize(("value", "expected"), [
    ("https://djangopackages.org/api/v4/categories/3/", 3),
    ("http://127.0.0.1:8123/api/v4/grids/66/", 66),
    ("https://other.example/api/v4/grids/7", 7),
    ("/api/v4/packages/12/", 12),
    ("https://djangopackages.org/api/v4/grids/7/?x=1#y", 7),
    (5, 5), ("42", 42), (0, None), (-1, None), (True, None), (None, None), ("", None),
    ("https://djangopackages.org/api/v4/grids/slug/", None), ([], None),
])
def test_id_from_url(value, expected):
    assert id_from_url(value) == expected


def test_reads_the_simulator_and_parses_what_its_world_means():
    server_module = pytest.importorskip("simulator.server", exc_type=ImportError)
    from assets.catalogue.readers import read_catalogue
    from assets.catalogue.transform import build_catalogue

    sim = server_module.start_in_thread(packages=300, seed=3)
    try:
        records = read_catalogue(sim.url, max_wait=0.01)
    finally:
        sim.stop()
    assert len(records.packages) == 300 and records.grids and records.categories
    frames = build_catalogue(records)
    assert frames.rejects.is_empty() and frames.packages.height == 300
    world = sim.world
    for row in frames.packages.iter_rows(named=True):
        truth = world.package(row["id"])
        assert row["slug"] == truth.slug and row["category_id"] == truth.category_id
        if truth.host in ("github", "gitlab", "bitbucket", "codeberg"):
            assert row["repo_key"] == f"{truth.host}:{truth.url_owner}/{truth.url_name}".lower(), row["repo_url"]
            assert row["repo_url_problem"] is None
        else:
            assert row["repo_key"] is None
            expected = {"dead": ("dead_host",), "none": ("empty",),
                        "malformed": ("missing_owner", "missing_name", "malformed")}[truth.host]
            assert row["repo_url_problem"].split(":")[0] in expected, (row["repo_url"], row["repo_url_problem"])
        expected_pypi = None if truth.pypi_name is None else canonicalize_name(truth.pypi_name)
        assert row["pypi_name"] == expected_pypi, row["pypi_url"]
    memberships = {(g, p) for p in world.ids() for g in world.package_grids(p)}
    assert set(frames.grid_packages.select("grid_id", "package_id").rows()) == memberships


def test_counts_are_kept(v4_server):
    lists, counts = DjangoPackagesClient(v4_server.url, page_size=3, **FAST).read_counted()
    assert counts == {"categories": 2, "grids": 3, "packages": 7} and len(lists["packages"]) == 7


def test_a_page_failing_after_the_first_is_incomplete_not_fewer_records(v4_server):
    v4_server.rewrite_next = lambda url: url.replace("/api/v4/packages/", "/api/v4/packages-broken/")
    with pytest.raises(CatalogueIncomplete) as caught:
        DjangoPackagesClient(v4_server.url, page_size=3, attempts=2, **FAST).read_all()
    message = str(caught.value)
    assert message.startswith("catalogue packages read stopped after 3 of 7 records: "
                              "catalogue unreachable: GET "), message
    assert "HTTP 404" in message and "\n" not in message


def test_an_html_page_after_the_first_is_incomplete(v4_server):
    v4_server.raw_body["maintenance"] = b"<html><body>Down for maintenance</body></html>"
    v4_server.rewrite_next = lambda url: url.replace("/api/v4/packages/", "/api/v4/maintenance/")
    with pytest.raises(CatalogueIncomplete, match=r"packages read stopped after 3 of 7 records: .*not JSON"):
        DjangoPackagesClient(v4_server.url, page_size=3, **FAST).read_list("packages")
