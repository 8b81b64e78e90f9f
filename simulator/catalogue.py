"""The djangopackages.org API v4 (see ../shared/API_V4.md), computed from the world.

Whole-service faults (`Faults.catalogue`, the `catalogue=` fault key), on every list answer:

- `empty`: every list answers `{"count": 0, "next": null, "previous": null, "results": []}`;
- `truncated`: the package list ends early (`next` null) with a tenth of its records missing, while its
  `count` still says how many there are;
- `500after1`: every page after a list's first answers Django's HTML "Server Error (500)";
- `html`: every list answers 200 with an HTML maintenance page instead of JSON.

`catalogue_drop=N` removes N packages from the catalogue for real (the list, its count, the grids'
memberships and the detail pages): drawn from the fault seed, the same for a seed.
`catalogue_edit=N` has an editor change N packages (drawn from the fault seed, the same for a seed;
`edited_packages`): their `documentation_url` is a new one and their `modified` moves to an hour after
the world's `now`, as django-extensions' `ModificationDateTimeField` does on any save; ids and the
`-id` order stay, so only a client that looks at those records sees the edit. Like the real site
(apiv4/viewsets.py, settings.py `REST_FRAMEWORK`), the lists take `limit`/`offset` only: any other
parameter (`ordering`, `modified__gt`...) is ignored, the answer stays ordered by `-id`.
`catalogue_max_limit=N` caps a page at N records, whatever `limit` asks (DRF's `max_limit`), so a
small world has several pages.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from urllib.parse import parse_qs, urlencode

from simulator.core import Resp, SimState, json_resp
from simulator.faults import unit_hash
from simulator.world import CATEGORIES, drf_datetime

MAINTENANCE_PAGE = (b"<!DOCTYPE html><html><head><title>Down for maintenance</title></head><body>"
                    b"<h1>Django Packages is down for maintenance</h1><p>We will be back shortly.</p></body></html>")
SERVER_ERROR_PAGE = (b'<!doctype html><html lang="en"><head><title>Server Error (500)</title></head><body>'
                     b"<h1>Server Error (500)</h1><p></p></body></html>")


@lru_cache(maxsize=8)
def dropped_packages(n: int, seed: int, drop: int) -> frozenset[int]:
    """The `drop` package ids (of 1..n) gone from the catalogue for fault seed `seed`."""
    if drop <= 0:
        return frozenset()
    return frozenset(sorted(range(1, n + 1), key=lambda pid: unit_hash(seed, "catalogue_drop", pid))[:drop])


def _dropped(state: SimState) -> frozenset[int]:
    return dropped_packages(state.world.n, state.faults.seed, state.faults.catalogue_drop)


EDIT_DELAY = timedelta(hours=1)  # an edit's `modified`: this long after the world's `now`


@lru_cache(maxsize=8)
def edited_packages(n: int, seed: int, edit: int) -> frozenset[int]:
    """The `edit` package ids (of 1..n) an editor changed, for fault seed `seed`."""
    if edit <= 0:
        return frozenset()
    return frozenset(sorted(range(1, n + 1), key=lambda pid: unit_hash(seed, "catalogue_edit", pid))[:edit])


def _edit(state: SimState, record: dict) -> dict:
    if record["id"] in edited_packages(state.world.n, state.faults.seed, state.faults.catalogue_edit):
        record = dict(record)  # never the world's own (possibly cached) record
        record["documentation_url"] = f"https://docs.example.org/{record['slug']}/"
        record["modified"] = drf_datetime(state.world.now + EDIT_DELAY)
    return record

KINDS = {"packages": "Package", "grids": "Grid", "categories": "Category"}


def not_found(kind: str) -> Resp:
    return json_resp({"detail": f"No {KINDS[kind]} matches the given query."}, 404,
                     content_type="application/json")


def root(state: SimState, base: str) -> Resp:
    api = f"{base}/api/v4"
    return json_resp({"packages": f"{api}/packages/", "search": f"{api}/search/",
                      "grids": f"{api}/grids/", "categories": f"{api}/categories/"},
                     content_type="application/json")


def _count(state: SimState, kind: str) -> int:
    if kind == "packages":
        return state.world.n
    if kind == "grids":
        return len(state.world.grids())
    return len(CATEGORIES)


def _listed(state: SimState, kind: str) -> Sequence[int]:
    """The ids a list serves, in its order (-id; ids are 1..count, less the dropped packages)."""
    count = _count(state, kind)
    dropped = _dropped(state) if kind == "packages" else frozenset()
    if not dropped:
        return range(count, 0, -1)
    return [pid for pid in range(count, 0, -1) if pid not in dropped]


def _detail(state: SimState, base: str, kind: str, ident: int) -> dict:
    w = state.world
    if kind == "packages":
        return _edit(state, w.v4_package(ident, base))
    if kind == "grids":
        record = w.v4_grid(ident, base)
        dropped = _dropped(state)
        if dropped:
            record["packages"] = [url for url in record["packages"]
                                  if int(url.rstrip("/").rsplit("/", 1)[1]) not in dropped]
        return record
    return w.v4_category(ident)


def listing(state: SimState, base: str, kind: str, query: str) -> Resp:
    q = parse_qs(query)
    try:
        limit = int(q.get("limit", ["20"])[0])
        if limit <= 0:
            limit = 20
    except ValueError:
        limit = 20
    try:
        offset = max(0, int(q.get("offset", ["0"])[0]))
    except ValueError:
        offset = 0
    faults = state.faults
    if faults.catalogue_max_limit > 0:
        limit = min(limit, faults.catalogue_max_limit)
    if faults.catalogue == "html":
        return Resp(200, MAINTENANCE_PAGE, {}, "text/html; charset=utf-8")
    if faults.catalogue == "500after1" and offset > 0:
        return Resp(500, SERVER_ERROR_PAGE, {}, "text/html; charset=utf-8")
    if faults.catalogue == "empty":
        return json_resp({"count": 0, "next": None, "previous": None, "results": []},
                         content_type="application/json")
    listed = _listed(state, kind)
    count = served = len(listed)
    if faults.catalogue == "truncated" and kind == "packages":
        served = count - max(1, count // 10)  # the count still announces them all
    results = [_detail(state, base, kind, i) for i in listed[offset:min(served, offset + limit)]]
    url = f"{base}/api/v4/{kind}/"
    nxt = f"{url}?{urlencode({'limit': limit, 'offset': offset + limit})}" if offset + limit < served else None
    prev = None
    if offset > 0:
        prev_offset = max(0, offset - limit)
        prev = (f"{url}?{urlencode({'limit': limit})}" if prev_offset == 0
                else f"{url}?{urlencode({'limit': limit, 'offset': prev_offset})}")
    return json_resp({"count": count, "next": nxt, "previous": prev, "results": results},
                     content_type="application/json")


def detail(state: SimState, base: str, kind: str, ident: str) -> Resp:
    w = state.world
    pid: int | None = None
    if ident.isdigit():
        pid = int(ident)
        if not 1 <= pid <= _count(state, kind):
            return not_found(kind)
    elif kind == "packages":
        p = w.find_slug(ident)
        pid = p.id if p else None
    elif kind == "grids":
        pid = next((g[0] for g in w.grids() if g[2] == ident), None)
    if pid is None or (kind == "packages" and pid in _dropped(state)):
        return not_found(kind)
    return json_resp(_detail(state, base, kind, pid), content_type="application/json")


def _strip_prefix(text: str) -> str:
    for prefix in ("django-", "django_", "django ", "dj-"):
        if text.lower().startswith(prefix):
            return text[len(prefix):]
    return text


SEARCH_CHUNK = 10_000  # packages scanned between two yields to the event loop


async def search(state: SimState, base: str, query: str) -> Resp:
    """``/api/v4/search/?q=``: grids and packages whose title or slug contains q, by weight, at most 20.

    Matching and ranking run on the world's compact search index (slug, title, repo_watchers), in
    chunks that yield to the event loop, so a search on a huge world never stalls other requests;
    full records are built only for the 20 hits served.
    """
    q = parse_qs(query).get("q", [""])[0].strip().lower()
    if not q:
        return json_resp([], content_type="application/json")
    w = state.world
    hits = []
    for g in w.grids():
        if q in g[1].lower() or q in g[2]:
            hits.append({
                "description": g[3], "title": g[1], "title_no_prefix": _strip_prefix(g[1]),
                "slug_no_prefix": _strip_prefix(g[2]), "clean_title": g[2].replace("-", ""),
                "absolute_url": f"/grids/g/{g[2]}/", "created": drf_datetime(g[6]),
                "modified": drf_datetime(g[7]), "weight": float(len(g[8])), "item_type": "grid",
                "slug": g[2], "category": "", "repo_watchers": 0, "repo_forks": 0,
                "pypi_downloads": 0, "score": 0, "usage": 0, "participants": "",
                "last_committed": None, "last_released": None,
            })
    index = w.search_index()
    best: list[tuple[int, str, int]] = []  # (-weight, slug, id): the 20 best packages so far
    for start in range(0, w.n, SEARCH_CHUNK):
        stop = min(w.n, start + SEARCH_CHUNK)
        found = [(-index.weights[pid - 1], index.slugs[pid - 1], pid) for pid in index.matches(q, start, stop)]
        best = heapq.nsmallest(20, best + found)
        if stop < w.n:
            await asyncio.sleep(0)  # let other requests in between chunks
    for _, _, pid in best:
        await asyncio.sleep(0)  # a record can take a few ms to build (big histories): one at a time
        rec = w.v4_package(pid, base)
        p = w.package(pid)
        rels = w.releases(pid) if p.pypi_status == "ok" else ()
        hits.append({
            "description": rec["repo_description"], "title": p.title,
            "title_no_prefix": _strip_prefix(p.title), "slug_no_prefix": _strip_prefix(p.slug),
            "clean_title": p.slug.replace("-", ""), "absolute_url": f"/packages/p/{p.slug}/",
            "created": rec["created"], "modified": rec["modified"],
            "weight": float(rec["repo_watchers"]), "item_type": "package", "slug": p.slug,
            "category": CATEGORIES[p.category_id - 1][1], "repo_watchers": rec["repo_watchers"],
            "repo_forks": rec["repo_forks"], "pypi_downloads": 0, "score": rec["repo_watchers"],
            "usage": (pid * 7) % 40, "participants": ",".join(rec["participants"]),
            "last_committed": rec["last_updated"],
            "last_released": drf_datetime(rels[-1].upload_time) if rels else None,
        })
    hits.sort(key=lambda h: (-h["weight"], h["slug"]))
    return json_resp(hits[:20], content_type="application/json")
