"""Reading the catalogue from wherever PULSE_CATALOGUE points, into v4-shaped records.

Sources (`read_catalogue(source)`):

- a base URL (`http(s)://...`): the djangopackages API v4 under it (pipelines.sources.djangopackages);
- a JSON file: `{"categories": [...], "grids": [...], "packages": [...]}` of v4 records (any key may
  be missing), or a bare list of v4 package records, or a Django `dumpdata` list (`{"model": ...,
  "pk": ..., "fields": {...}}`, as in the 2011 djangopackages dump: models package.category,
  grid.grid, package.package, grid.gridpackage);
- a CSV catalogue such as `djangopackages_catalogue_2022-05.csv` (`;` or `,` separated, detected
  from the header).

Any of these may be compressed (`.gz`, `.bz2`, `.xz`). The format of an uncompressed file is told by
its first non-blank character (`{` / `[` means JSON), so the extension does not matter.

CSV columns (first match wins): slug `dp_slug`|`slug`; category `dp_category`|`category` (a slug or
an id); grids `dp_grids`|`grids` (comma-separated grid slugs); repo URL `dp_repo_url`|`repo_url`;
optional `id`, `title`, `pypi_url`, `documentation_url`, `created`, `modified`, the "I use this"
count `dp_usage_count`|`usage_count`|`usage` (kept as text: the transform validates it) and
`deprecated`, `date_deprecated` (the catalogue's own deprecation; the 2022 CSV's
`repo_maybe_deprecated` is a guess from the repository, not the catalogue's word, and is not read).

The health inputs the catalogue may carry: a JSON record's `usage_count` (djangopackages' API v3)
or `usage` (a number, or in a `dumpdata` the many-to-many list of users, counted), and its
`deprecated`, `date_deprecated`, `deprecated_by` (djangopackages' `package.Package` fields) are
passed on as given; the v4 API has none of them.
Synthesised values, deterministic for a given file:

- package `id`: the `id` column when present, else the 1-based data row number;
- `title`: the `title` column, else the slug;
- `pypi_url`: the column when present, else None ("unknown": the transform then falls back to the
  slug as the PyPI name, see `urls.parse_pypi`);
- categories: djangopackages' four (apps=1, frameworks=2, projects=3, other=4, the real site's ids
  and titles); any other category slug gets the next ids in order of first appearance;
- grids: ids 1..n in sorted slug order (stable when rows are reordered), title = slug;
- created/modified: the columns when present, else null.

Datetimes are kept as the source's strings; naive ones (the 2011 dump) are read as UTC by the
transform.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from pipelines.sources.djangopackages import CatalogueInvalid, CatalogueUnreachable, read_api_counted

Record = dict[str, Any]

KNOWN_CATEGORIES: tuple[Record, ...] = (
    {"id": 1, "slug": "apps", "title": "App", "title_plural": "Apps",
     "description": "Small components used to build projects."},
    {"id": 2, "slug": "frameworks", "title": "Framework", "title_plural": "Frameworks",
     "description": "Large efforts that combine many python modules or apps."},
    {"id": 3, "slug": "projects", "title": "Project", "title_plural": "Projects",
     "description": "Individual projects such as Django Packages, DjangoProject.com, and others."},
    {"id": 4, "slug": "other", "title": "Other", "title_plural": "Other",
     "description": "Not installed by INSTALLED_APPS, not frameworks or sites, but still help Django."},
)


@dataclass
class CatalogueRecords:
    """v4-shaped records: a package's `category` and `grids` are related URLs or integer ids."""

    categories: list[Record] = field(default_factory=list)
    grids: list[Record] = field(default_factory=list)
    packages: list[Record] = field(default_factory=list)
    source: str = ""
    source_kind: str = ""  # api | json | dumpdata | csv
    counts: dict[str, int] = field(default_factory=dict)  # list -> the `count` the API announced


def read_catalogue(source: str, *, http_client_factory: Callable[[], httpx.Client] | None = None,
                   **client_options: Any) -> CatalogueRecords:
    """Read the catalogue at `source` (base URL or file path). Raises `CatalogueError` subclasses:
    `CatalogueUnreachable` (network, missing file), `CatalogueInvalid` (unusable content),
    `CatalogueIncomplete` (an API list read in part). From the API, `counts` holds what each list
    announced, for the guard to compare with the records read."""
    source = str(source).strip()
    if source.startswith(("http://", "https://")):
        lists, counts = read_api_counted(source, http_client_factory=http_client_factory, **client_options)
        return CatalogueRecords(lists["categories"], lists["grids"], lists["packages"], source, "api", counts)
    return read_file(Path(source).expanduser())


def _open_text(path: Path) -> str:
    if not path.exists():
        raise CatalogueUnreachable(f"catalogue file not found: {path}")
    if not path.is_file():
        raise CatalogueUnreachable(f"catalogue path is not a file: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogueUnreachable(f"catalogue file unreadable: {path}: {exc.strerror or exc}") from exc
    try:
        if data[:3] == b"BZh":
            data = bz2.decompress(data)
        elif data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        elif data[:6] == b"\xfd7zXZ\x00":
            data = lzma.decompress(data)
    except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise CatalogueInvalid(f"catalogue file {path}: cannot decompress ({exc})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueInvalid(f"catalogue file {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc


def read_file(path: Path) -> CatalogueRecords:
    text = _open_text(path)
    if text.lstrip()[:1] in ("{", "["):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise CatalogueInvalid(f"catalogue file {path}: invalid JSON ({exc})") from exc
        return records_from_json(data, source=str(path))
    return records_from_csv(text, source=str(path))


def _records(value: Any, what: str, source: str) -> list[Record]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogueInvalid(f"catalogue file {source}: {what!r} is not a list")
    # non-objects are kept: the transform rejects them with a reason
    return list(value)


def records_from_json(data: Any, *, source: str = "") -> CatalogueRecords:
    if isinstance(data, dict):
        if "results" in data and "packages" not in data:  # one saved v4 list page of packages
            return CatalogueRecords([], [], _records(data["results"], "results", source), source, "json")
        return CatalogueRecords(
            _records(data.get("categories"), "categories", source),
            _records(data.get("grids"), "grids", source),
            _records(data.get("packages"), "packages", source),
            source, "json",
        )
    if isinstance(data, list):
        if data and all(isinstance(r, dict) and "model" in r and "fields" in r for r in data[:50]):
            return records_from_dumpdata(data, source=source)
        return CatalogueRecords([], [], list(data), source, "json")
    raise CatalogueInvalid(f"catalogue file {source}: JSON is neither an object nor a list")


def _pk_order(pk: Any) -> tuple[int, int, str]:
    """Sort key for a dump's primary keys: integers numerically, anything else after them as text."""
    if isinstance(pk, int) and not isinstance(pk, bool):
        return (0, pk, "")
    return (1, 0, str(pk))


def records_from_dumpdata(data: list[Record], *, source: str = "") -> CatalogueRecords:
    """Django `dumpdata` of djangopackages (package.category, grid.grid, package.package,
    grid.gridpackage); other models are ignored."""
    categories: list[Record] = []
    grids: list[Record] = []
    packages: list[Record] = []
    memberships: dict[Any, list[Any]] = {}
    for row in data:
        if not isinstance(row, dict):
            continue
        model, pk, fields = row.get("model"), row.get("pk"), row.get("fields") or {}
        if model == "package.category":
            categories.append({"id": pk, **{k: fields.get(k) for k in (
                "title", "slug", "description", "title_plural", "show_pypi", "created", "modified")}})
        elif model == "grid.grid":
            grids.append({"id": pk, **{k: fields.get(k) for k in (
                "title", "slug", "description", "is_locked", "created", "modified")},
                "header": bool(fields.get("header", False))})
        elif model == "package.package":
            packages.append({
                "id": pk, "category": fields.get("category"), "grids": [],
                **{k: fields.get(k) for k in ("title", "slug", "repo_url", "pypi_url", "created", "modified")},
                "documentation_url": fields.get("documentation_url"),
                # `usage` is the many-to-many list of users who use it (the transform counts it)
                **{k: fields[k] for k in ("usage", "date_deprecated", "deprecated_by") if k in fields},
            })
        elif model == "grid.gridpackage":
            memberships.setdefault(fields.get("package"), []).append((pk, fields.get("grid")))
    for package in packages:
        # the site lists a package's grids in the database order of its GridPackage rows (pk order)
        rows = sorted(memberships.get(package["id"], []), key=lambda row: _pk_order(row[0]))
        package["grids"] = [grid for _pk, grid in rows]
    return CatalogueRecords(categories, grids, packages, source, "dumpdata")


def _column(header: list[str], *names: str) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def records_from_csv(text: str, *, source: str = "") -> CatalogueRecords:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = reader.fieldnames or []
    col_slug = _column(header, "dp_slug", "slug")
    if col_slug is None:
        raise CatalogueInvalid(f"catalogue CSV {source}: no slug column (dp_slug or slug) in {header[:8]}")
    col_category = _column(header, "dp_category", "category")
    col_grids = _column(header, "dp_grids", "grids")
    col_repo = _column(header, "dp_repo_url", "repo_url")
    col_id, col_title = _column(header, "id"), _column(header, "title")
    col_pypi, col_docs = _column(header, "pypi_url"), _column(header, "documentation_url")
    col_created, col_modified = _column(header, "created"), _column(header, "modified")
    col_usage = _column(header, "dp_usage_count", "usage_count", "usage")
    col_deprecated, col_date_deprecated = _column(header, "deprecated"), _column(header, "date_deprecated")

    rows = list(reader)
    category_ids = {c["slug"]: c["id"] for c in KNOWN_CATEGORIES}
    categories = [dict(c, show_pypi=True, created=None, modified=None) for c in KNOWN_CATEGORIES]
    grid_slugs: set[str] = set()
    for row in rows:
        value = (row.get(col_category) or "").strip() if col_category else ""
        if value and not value.isdigit() and value not in category_ids:
            category_ids[value] = max(category_ids.values()) + 1
            categories.append({"id": category_ids[value], "slug": value, "title": value.title(),
                               "title_plural": value.title(), "description": "", "show_pypi": True,
                               "created": None, "modified": None})
        if col_grids:
            grid_slugs.update(s.strip() for s in (row.get(col_grids) or "").split(",") if s.strip())
    grid_ids = {slug: i for i, slug in enumerate(sorted(grid_slugs), start=1)}
    grids = [{"id": i, "slug": slug, "title": slug, "description": "", "is_locked": False,
              "header": False, "created": None, "modified": None} for slug, i in grid_ids.items()]

    packages: list[Record] = []
    for number, row in enumerate(rows, start=1):
        slug = (row.get(col_slug) or "").strip()
        category = (row.get(col_category) or "").strip() if col_category else ""
        grid_list = (row.get(col_grids) or "").split(",") if col_grids else []
        raw_id = (row.get(col_id) or "").strip() if col_id else ""
        package: Record = {
            "id": (int(raw_id) if raw_id.isdigit() else raw_id or None) if col_id else number,
            "title": ((row.get(col_title) or "").strip() if col_title else "") or slug,
            "slug": slug,
            "category": int(category) if category.isdigit() else category_ids.get(category),
            "grids": [grid_ids[s.strip()] for s in grid_list if s.strip()],
            "repo_url": (row.get(col_repo) or "").strip() if col_repo else "",
            "pypi_url": row.get(col_pypi) if col_pypi else None,
            "documentation_url": (row.get(col_docs) or None) if col_docs else None,
            "created": (row.get(col_created) or None) if col_created else None,
            "modified": (row.get(col_modified) or None) if col_modified else None,
        }
        for key, column in (("usage_count", col_usage), ("deprecated", col_deprecated),
                            ("date_deprecated", col_date_deprecated)):
            if column is not None:
                package[key] = (row.get(column) or "").strip() or None
        packages.append(package)
    return CatalogueRecords(categories, grids, packages, source, "csv")
