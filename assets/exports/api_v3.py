"""djangopackages' read API v3 (`/api/v3/`), rendered from the same rows as v4.

Pure functions, written from the site's `apiv3/views.py` and `apiv3/resources.py` (django-jsonview
`@json_view`, plain dicts, Django's `DjangoJSONEncoder`), including the quirks clients depend on:

- lists answer `{"meta": {"limit", "next", "offset", "previous", "total_count"}, "objects": [...]}`
  (packages add `"category": null`, always null; a grid's packages add `"grid": {...}`), ordered by
  title (the models' `Meta.ordering = ["title"]`);
- `limit`/`offset` are read with `int()` and fall back to 20/0 only when they are not integers
  (`GET_int`): `limit=0` gives no objects and a `next` that points at the same offset again (a client
  that follows it loops: the site does the same); a negative bound on the slice (`offset=-1`, or
  `limit=-30&offset=10`) makes Django raise, which `@json_view` turns into a 500
  `{"error": 500, "message": "An error occurred"}`; so does a slice too large for PostgreSQL's
  bigint LIMIT/OFFSET;
- `next` is `<path>?limit=L&offset=O+L` when `total_count > L + O`, `previous` is
  `<path>?limit=L&offset=max(O-L, 0)` when `O > 0`: relative links, other parameters dropped (so a
  `?category=` filter is lost on the next page, as on the site);
- `?category=<slug>` filters the package list when a category has that slug, otherwise (unknown or
  empty) it is ignored and every package is listed;
- a detail miss is a 404 `{"error": 404, "message": "No Package matches the given query."}`
  (Django's `get_object_or_404` message through `@json_view`);
- datetimes as `DjangoJSONEncoder` writes them: UTC (Django reads them from PostgreSQL in UTC),
  milliseconds only when there are microseconds, `Z` for UTC (`2013-02-19T23:26:02.271Z`).

Fields the site has and the warehouse does not store, and how they are filled:

- `created_by` (a `/api/v3/users/<github_account>/` link to the user who added the package) and
  `last_modified_by` (that user's GitHub account): the catalogue does not carry users, so both are
  null, as the site gives them for packages added by a removed or profile-less user;
- `usage_count` (the "I use this" count): `core.packages.usage`, the catalogue's count (0 when the
  catalogue does not give one, e.g. the v4 API, or in a snapshot from before that column);
- `participants`: the contributor logins joined by "," (the site stores that comma string);
- `commit_list` and `commits_over_52`: both the site's `commits_over_52w_str`, the 52 weekly counts
  joined by "," ("" when unknown);
- `category` of a package whose category is not in the catalogue: null (the site would fail).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_LIMIT = 20
SLUG = re.compile(r"[-a-zA-Z0-9_]+\Z")  # Django's <slug:...> path converter
BIGINT_MAX = 2**63 - 1
SERVER_ERROR = {"error": 500, "message": "An error occurred"}  # @json_view's body (DEBUG off)
INDEX = {
    "categories": "/api/v3/categories/",
    "grids": "/api/v3/grids/",
    "packages": "/api/v3/packages/",
    "users": "/api/v3/users/",
}
MODEL_NAMES = {"packages": "Package", "grids": "Grid", "categories": "Category"}


def django_datetime(value: datetime | None) -> str | None:
    """DjangoJSONEncoder: `isoformat()` cut to milliseconds, `+00:00` written `Z`; in UTC."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text.removesuffix("+00:00") + "Z"
    return text


def not_found(kind: str) -> dict:
    """Django's get_object_or_404 message, as @json_view answers an Http404."""
    return {"error": 404, "message": f"No {MODEL_NAMES[kind]} matches the given query."}


def _by_title(rows: list[dict]) -> list[dict]:
    """`ORDER BY title` (case-insensitive first, like PostgreSQL's en_US collation), then id for ties."""
    return sorted(rows, key=lambda row: (row["title"].casefold(), row["title"], row["id"]))


def category_resource(row: dict) -> dict:
    slug = row["slug"]
    return {
        "absolute_url": f"/categories/{slug}/",
        "created": django_datetime(row["created"]),
        "modified": django_datetime(row["modified"]),
        "slug": slug,
        "title": row["title"],
        "description": row["description"] or "",
        "resource_uri": f"/api/v3/categories/{slug}/",
        "show_pypi": bool(row["show_pypi"]),
        "title_plural": row["title_plural"] or "",
    }


def grid_resource(row: dict, package_slugs: Mapping[int, str]) -> dict:
    """`packages`: the grid's packages by title (`grid.packages.all()`), as v3 links."""
    slug = row["slug"]
    return {
        "absolute_url": f"/grids/g/{slug}/",
        "created": django_datetime(row["created"]),
        "modified": django_datetime(row["modified"]),
        "slug": slug,
        "title": row["title"],
        "description": row["description"] or "",
        "is_locked": bool(row["is_locked"]),
        "resource_uri": f"/api/v3/grids/{slug}/",
        "header": bool(row["header"]),
        "packages": [f"/api/v3/packages/{package_slugs[p]}/" for p in row["package_ids"] if p in package_slugs],
    }


def package_resource(row: dict, category_slugs: Mapping[int, str], grid_slugs: Mapping[int, str],
                     usage: int) -> dict:
    """`grids` in membership order (`package.grids()` walks `gridpackage_set.all()`)."""
    slug = row["slug"]
    commits = ",".join(map(str, row["commits_over_52"]))
    category = category_slugs.get(row["category_id"]) if row["category_id"] is not None else None
    return {
        "absolute_url": f"/packages/p/{slug}/",
        "created": django_datetime(row["created"]),
        "modified": django_datetime(row["modified"]),
        "slug": slug,
        "title": row["title"],
        "category": f"/api/v3/categories/{category}/" if category is not None else None,
        "commit_list": commits,
        "commits_over_52": commits,
        "created_by": None,
        "documentation_url": row["documentation_url"],
        "grids": [f"/api/v3/grids/{grid_slugs[g]}/" for g in row["grid_ids"] if g in grid_slugs],
        "last_fetched": django_datetime(row["last_fetched"]),
        "last_modified_by": None,
        "participants": ",".join(row["participants"]),
        "pypi_url": row["pypi_url"] or "",
        "pypi_version": row["pypi_version"],
        "repo_description": row["repo_description"] or "",
        "repo_forks": int(row["repo_forks"] or 0),
        "repo_url": row["repo_url"] or "",
        "repo_watchers": int(row["repo_watchers"] or 0),
        "resource_uri": f"/api/v3/packages/{slug}/",
        "usage_count": int(usage),
    }


@dataclass(frozen=True)
class V3Documents:
    """Every v3 resource of one snapshot, lists by title, lookups by slug."""

    packages: list[dict]
    grids: list[dict]
    categories: list[dict]
    by_slug: dict[str, dict[str, dict]]
    packages_by_category: dict[str, list[dict]] = field(default_factory=dict)
    grid_packages: dict[str, list[dict]] = field(default_factory=dict)


def build_v3(packages: list[dict], grids: list[dict], categories: list[dict],
             usage: Mapping[int, int] | None) -> V3Documents:
    """The v3 resources from `api_v4.load_api_tables`'s rows (raw values, not v4 records)."""
    category_slugs = {int(c["id"]): c["slug"] for c in categories}
    grid_slugs = {int(g["id"]): g["slug"] for g in grids}
    package_slugs = {int(p["id"]): p["slug"] for p in packages}
    usage = usage or {}
    package_rows = _by_title(packages)
    by_id = {}
    package_docs = []
    for row in package_rows:
        doc = package_resource(row, category_slugs, grid_slugs, usage.get(int(row["id"]), 0))
        by_id[int(row["id"])] = doc
        package_docs.append(doc)
    grid_docs = [grid_resource(row, package_slugs) for row in _by_title(grids)]
    category_docs = [category_resource(row) for row in _by_title(categories)]
    by_category: dict[str, list[dict]] = {c["slug"]: [] for c in categories}
    for row in package_rows:
        slug = category_slugs.get(row["category_id"]) if row["category_id"] is not None else None
        if slug is not None:
            by_category[slug].append(by_id[int(row["id"])])
    members: dict[str, list[dict]] = {}
    for row in grids:  # package_ids are by title already; the list keeps the package order
        members[row["slug"]] = [by_id[p] for p in row["package_ids"] if p in by_id]
    by_slug = {
        "packages": {d["slug"]: d for d in package_docs},
        "grids": {d["slug"]: d for d in grid_docs},
        "categories": {d["slug"]: d for d in category_docs},
    }
    return V3Documents(package_docs, grid_docs, category_docs, by_slug, by_category, members)


def get_int(query: Mapping[str, str], name: str, default: int) -> int:
    """apiv3's GET_int: `int()` of the parameter, the default only when that raises ValueError."""
    try:
        return int(query.get(name, default))
    except ValueError:
        return default


def v3_list(objects: list[dict], path: str, query: Mapping[str, str],
            extra: Mapping[str, object] | None = None) -> tuple[int, dict]:
    """(status, document) of one v3 list page: `meta`, then `extra` (e.g. `"category": None`), then
    `objects`, with apiv3's calc_next/calc_previous and Django's slicing rules."""
    limit, offset, count = get_int(query, "limit", DEFAULT_LIMIT), get_int(query, "offset", 0), len(objects)
    start, stop = offset, offset + limit
    if start < 0 or stop < 0:
        return 500, dict(SERVER_ERROR)  # QuerySet slicing: "Negative indexing is not supported."
    if stop > start and (start > BIGINT_MAX or stop - start > BIGINT_MAX):
        return 500, dict(SERVER_ERROR)  # PostgreSQL: bigint out of range in LIMIT/OFFSET
    meta = {
        "limit": limit,
        "next": f"{path}?limit={limit}&offset={offset + limit}" if count > limit + offset else None,
        "offset": offset,
        "previous": f"{path}?limit={limit}&offset={max(offset - limit, 0)}" if offset > 0 else None,
        "total_count": count,
    }
    return 200, {"meta": meta, **(extra or {}), "objects": objects[start:stop]}


def respond_v3(documents: V3Documents, parts: list[str], path: str,
               query: Mapping[str, str]) -> tuple[int, object] | None:
    """(status, document) for `/api/v3/<parts...>/`, None when no v3 route matches (the caller's 404).
    `users` (login required on the site) are not served."""
    if not parts:
        return 200, dict(INDEX)
    kind, rest = parts[0], parts[1:]
    if kind not in MODEL_NAMES or any(not SLUG.match(part) for part in rest):
        return None
    if not rest:
        if kind == "packages":
            chosen = documents.packages_by_category.get(query.get("category"))  # type: ignore[arg-type]
            return v3_list(documents.packages if chosen is None else chosen, path, query, {"category": None})
        return v3_list(documents.grids if kind == "grids" else documents.categories, path, query)
    found = documents.by_slug[kind].get(rest[0])
    if len(rest) == 1:
        return (200, found) if found is not None else (404, not_found(kind))
    if kind == "grids" and rest[1:] == ["packages"]:
        if found is None:
            return 404, not_found("grids")
        return v3_list(documents.grid_packages.get(rest[0], []), path, query, {"grid": found})
    return None
