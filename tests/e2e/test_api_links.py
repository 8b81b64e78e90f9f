"""A client of the real `pulse serve` that walks the whole API the way site importers do: every list
paged with `next` until null, every URL inside every record followed. It must stay on the server it
started on (links built for the host it asked, or the proxy's X-Forwarded-* host) and see every object
exactly once. v4 (absolute links) and v3 (relative links)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import query_file, serving

pytestmark = pytest.mark.slow  # the shared real refresh, then a real `pulse serve` subprocess

PROXIED = {"X-Forwarded-Host": "pulse.example:8443", "X-Forwarded-Proto": "https"}



@pytest.fixture(scope="module")
def server(refreshed) -> Iterator[str]:
    """`pulse serve` without PULSE_PUBLIC_URL: links follow the client's host."""
    env = {k: v for k, v in refreshed.env.items() if k != "PULSE_PUBLIC_URL"}
    with serving(env) as base:
        yield base


class Walker:
    """GETs through one keep-alive client; `link_base` is where every absolute link must point."""

    def __init__(self, client: httpx.Client, server: str, link_base: str, headers: dict[str, str]):
        self.client, self.server, self.link_base, self.headers = client, server, link_base, headers

    def get(self, link: str) -> object:
        """GET an absolute link (must be on `link_base`) or a relative `/api/...` one; 200 expected."""
        if link.startswith("/"):
            url = self.server + link
        else:
            assert link.startswith(self.link_base + "/api/"), f"{link} leaves {self.link_base}"
            url = self.server + link[len(self.link_base):]
        response = self.client.get(url, headers=self.headers)
        assert response.status_code == 200, (link, response.status_code, response.text[:200])
        return response.json()

    def pages(self, link: str, *, v3: bool) -> list[dict]:
        """Every object of a list, following `next` until null."""
        objects: list[dict] = []
        total = None
        while link:
            page = self.get(link)
            meta = page["meta"] if v3 else page
            total = meta["total_count"] if v3 else meta["count"]
            objects += page["objects"] if v3 else page["results"]
            link = meta["next"]
            if v3 and link:
                assert link.startswith("/api/v3/"), link  # the site's relative links
        assert len(objects) == total
        return objects


def _v4_links(record: dict) -> list[str]:
    links = [record.get("category"), *record.get("grids", []), *record.get("packages", [])]
    return [link for link in links if link]


def _walk_v4(walker: Walker) -> dict[str, set[int]]:
    root = walker.get(f"{walker.link_base}/api/v4/")
    assert all(link.startswith(walker.link_base + "/api/v4/") for link in root.values())
    seen: dict[str, set[int]] = {}
    by_url: dict[str, dict] = {}
    for kind in ("packages", "grids", "categories"):
        records = walker.pages(root[kind], v3=False)
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)), f"{kind}: an object seen twice"
        seen[kind] = set(ids)
        by_url.update({f"{walker.link_base}/api/v4/{kind}/{r['id']}/": r for r in records})
    links = {link for record in by_url.values() for link in _v4_links(record)}
    assert links <= set(by_url), "a record links to an object no list gave"
    for link in sorted(links):
        assert walker.get(link) == by_url[link]  # the detail is the record the list gave
    return seen


def _walk_v3(walker: Walker) -> dict[str, set[str]]:
    assert walker.get("/api/v3/")["packages"] == "/api/v3/packages/"
    seen: dict[str, set[str]] = {}
    by_uri: dict[str, dict] = {}
    for kind in ("packages", "grids", "categories"):
        objects = walker.pages(f"/api/v3/{kind}/", v3=True)
        slugs = [o["slug"] for o in objects]
        assert len(slugs) == len(set(slugs)), f"{kind}: an object seen twice"
        seen[kind] = set(slugs)
        by_uri.update({o["resource_uri"]: o for o in objects})
    links = set()
    for resource in by_uri.values():
        links |= {resource["resource_uri"], *resource.get("grids", []), *resource.get("packages", [])}
        if resource.get("category"):
            links.add(resource["category"])
    assert links <= set(by_uri), "a resource links to an object no list gave"
    for link in sorted(links):
        assert walker.get(link) == by_uri[link]
    for grid in seen["grids"]:
        members = walker.pages(f"/api/v3/grids/{grid}/packages/", v3=True)
        assert [f"/api/v3/packages/{o['slug']}/" for o in members] == by_uri[f"/api/v3/grids/{grid}/"]["packages"]
    return seen


def test_walking_the_api_stays_on_the_server_and_sees_everything_once(server, refreshed):
    published = refreshed.home / "published.duckdb"
    expected = {kind: {r[0] for r in query_file(published, f"SELECT id FROM core.{kind}")}
                for kind in ("packages", "grids", "categories")}
    slugs = {kind: {r[0] for r in query_file(published, f"SELECT slug FROM core.{kind}")} for kind in expected}
    with httpx.Client(timeout=10) as client:
        direct = _walk_v4(Walker(client, server, server, {}))
        assert direct == expected
        # behind a proxy: links are built for the host the proxy was asked for
        proxied = _walk_v4(Walker(client, server, "https://pulse.example:8443", PROXIED))
        assert proxied == expected
        # the same client through another name of the same server
        other_name = server.replace("127.0.0.1", "localhost")
        assert Walker(client, other_name, other_name, {}).get(f"{other_name}/api/v4/")["packages"] == (
            f"{other_name}/api/v4/packages/")
        assert _walk_v3(Walker(client, server, server, {})) == slugs
