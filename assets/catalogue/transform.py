"""Catalogue records (v4-shaped dicts, whatever the source) -> the catalogue frames.

`build_catalogue(records)` is a pure function (no Dagster, no I/O). The frames and their columns are
fixed by docs/ARCHITECTURE.md, "Catalogue frames"; the polars schemas below are the contract.

Row rules:

- A category, grid or package without a usable `id` (a positive integer), `slug` or `title`, or
  with a `created`/`modified` that is not an ISO 8601 datetime, or with a malformed boolean, is
  rejected: it goes to `rejects` with a reason and the other rows go on.
- The same `id` twice in one list: an identical copy (as offset pagination produces when the list
  changes while it is read) is dropped silently (counted in `CatalogueFrames.notes`); a different
  record is rejected (`duplicate_id`), the first one read is kept.
- The same `slug` twice: the row with the lowest id is kept, the others are rejected
  (`duplicate_slug`).
- A package whose repo URL is unusable is *kept*, with `repo_url_problem` set and no repo_key (it is
  simply not crawled). Its `pypi_name` comes from `urls.parse_pypi(pypi_url, fallback_slug=slug)`; a
  `pypi_url` that names no usable project leaves `pypi_name` null and says why in `pypi_url_problem`
  (the package goes on, its repository is still crawled).
- Grid memberships come from both sides (package `grids` and grid `packages`, URLs or ids) and are
  deduplicated. `position` is the membership's rank among the package's grids (0 = first): the order
  of the package's `grids` list, which is the order the site gives (the database order of its grid
  memberships, e.g. GridPackage pk order in a dump), then memberships known only from a grid's
  `packages` list, by grid id. The API renders a package's `grids` in that order. One that points
  at a package or grid not in the catalogue is rejected (kind `grid_package`). Memberships of
  rejected packages/grids are dropped with them (no second reject).
- A package's `category_id` is kept as given, even when the category is unknown (counted in notes).
- `usage` (djangopackages' "I use this" count) is the record's `usage_count`, else its `usage` (a
  count, or a list of users as in a `dumpdata`, counted), else 0 (the v4 API has none). A value
  that is not a non-negative integer (`-3`, `"many"`, `2.5`, `true`) rejects the package
  (`invalid_usage`), like any other malformed field.
- `deprecated` is true when the record says `deprecated: true` or has a non-null `date_deprecated`
  or `deprecated_by` (djangopackages' `Package.date_deprecated` / `deprecated_by`), else false; a
  `deprecated` that is not a boolean rejects the package (`invalid_boolean`).

`reason` in rejects is `"<code>: <detail>"`; the codes are stable for counting.
Datetimes: ISO 8601 strings with an offset (or `Z`) are converted to UTC; naive ones are read as UTC.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import polars as pl

from assets.catalogue.readers import CatalogueRecords
from assets.catalogue.urls import parse_pypi, parse_repo_url
from pipelines.sources.djangopackages import id_from_url
from pipelines.sources.times import parse_iso
from pipelines.sources.webpaths import RepoProblem

UTC_DATETIME = pl.Datetime("us", "UTC")

CATEGORY_SCHEMA = pl.Schema({
    "id": pl.Int64, "title": pl.String, "slug": pl.String, "description": pl.String,
    "title_plural": pl.String, "show_pypi": pl.Boolean, "created": UTC_DATETIME, "modified": UTC_DATETIME,
})
GRID_SCHEMA = pl.Schema({
    "id": pl.Int64, "title": pl.String, "slug": pl.String, "description": pl.String,
    "is_locked": pl.Boolean, "header": pl.Boolean, "created": UTC_DATETIME, "modified": UTC_DATETIME,
})
GRID_PACKAGE_SCHEMA = pl.Schema({"grid_id": pl.Int64, "package_id": pl.Int64, "position": pl.Int32})
PACKAGE_SCHEMA = pl.Schema({
    "id": pl.Int64, "title": pl.String, "slug": pl.String, "category_id": pl.Int64,
    "repo_url": pl.String, "pypi_url": pl.String, "documentation_url": pl.String,
    "created": UTC_DATETIME, "modified": UTC_DATETIME,
    "repo_host": pl.String, "repo_owner": pl.String, "repo_name": pl.String, "repo_key": pl.String,
    "pypi_name": pl.String, "repo_url_problem": pl.String, "pypi_url_problem": pl.String,
    "usage": pl.Int64, "deprecated": pl.Boolean,
})
REJECT_SCHEMA = pl.Schema({
    "kind": pl.String, "source_id": pl.Int64, "slug": pl.String, "reason": pl.String, "record": pl.String,
})

TABLES = ("categories", "grids", "grid_packages", "packages", "rejects")


@dataclass
class CatalogueFrames:
    categories: pl.DataFrame
    grids: pl.DataFrame
    grid_packages: pl.DataFrame
    packages: pl.DataFrame
    rejects: pl.DataFrame
    notes: dict[str, int] = field(default_factory=dict)

    def tables(self) -> dict[str, pl.DataFrame]:
        """{"catalogue.<name>": frame} for warehouse.load.replace_tables."""
        return {f"catalogue.{name}": getattr(self, name) for name in TABLES}


@lru_cache(maxsize=1 << 16)
def _str_ref_id(value: str) -> int | None:
    return id_from_url(value)


def _ref_id(value: Any) -> int | None:
    """id_from_url, cached for the strings (related URLs repeat: a few categories, ~400 grids)."""
    if type(value) is int:
        return value if value > 0 else None
    if isinstance(value, str):
        return _str_ref_id(value)
    return id_from_url(value)


class _Reject(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.reason = f"{code}: {detail}"


_MISSING = object()


def _record_json(record: Any) -> str:
    try:
        return orjson.dumps(record, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(repr(record)).decode()


def _id_of(record: dict[str, Any]) -> int:
    value = record.get("id", _MISSING)
    if value is _MISSING or value is None or value == "":
        raise _Reject("missing_id", "no id")
    if isinstance(value, bool):
        raise _Reject("invalid_id", f"id {value!r} is not a positive integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise _Reject("invalid_id", f"id {value!r} is not a positive integer")
    if number <= 0 or number >= 2**63:
        raise _Reject("invalid_id", f"id {value!r} is not a positive integer")
    return number


def _text(record: dict[str, Any], key: str, *, required: bool, default: str | None = "") -> str | None:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _Reject(f"missing_{key}", f"no {key}")
        return default if value is None else value
    if not isinstance(value, str):
        if required or not isinstance(value, int | float):
            raise _Reject(f"invalid_{key}", f"{key} {value!r} is not a string")
        return str(value)
    return value


def _bool(record: dict[str, Any], key: str, default: bool) -> bool:
    value = record.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Reject("invalid_boolean", f"{key} {value!r} is not a boolean")


def _usage(record: dict[str, Any]) -> int:
    """The "I use this" count: `usage_count` (API v3, the CSV), else `usage` (a count, or the
    `dumpdata` list of users), else 0."""
    key = "usage_count" if record.get("usage_count") is not None else "usage"
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, list):
        return len(value)
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None or number < 0 or number >= 2**63:
        raise _Reject("invalid_usage", f"{key} {value!r} is not a non-negative integer")
    return number


def _deprecated(record: dict[str, Any]) -> bool:
    """The catalogue says so: `deprecated` true, or a non-null `date_deprecated` / `deprecated_by`."""
    marked = _bool(record, "deprecated", False)
    return marked or any(record.get(key) not in (None, "") for key in ("date_deprecated", "deprecated_by"))


def _dates(record: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    out = []
    for key in ("created", "modified"):
        try:
            out.append(parse_iso(record.get(key), strict=True))
        except (ValueError, TypeError, OverflowError):
            raise _Reject("invalid_datetime", f"{key} {record.get(key)!r} is not an ISO 8601 datetime") from None
    return out[0], out[1]


class _Rejects:
    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {name: [] for name in REJECT_SCHEMA}

    def add(self, kind: str, record: Any, reason: str, source_id: int | None = None,
            slug: str | None = None) -> None:
        if isinstance(record, dict):
            if source_id is None:
                try:
                    source_id = _id_of(record)
                except _Reject:
                    source_id = None
            if slug is None and isinstance(record.get("slug"), str):
                slug = record["slug"]
        self.rows["kind"].append(kind)
        self.rows["source_id"].append(source_id)
        self.rows["slug"].append(slug)
        self.rows["reason"].append(reason)
        self.rows["record"].append(_record_json(record))

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=REJECT_SCHEMA)


def _validated(kind: str, records: Iterable[Any], rejects: _Rejects, notes: Counter,
               extract) -> list[dict[str, Any]]:
    """Rows extracted from valid records, without duplicate ids or slugs (see module docstring)."""
    by_id: dict[int, tuple[Any, dict[str, Any]]] = {}
    for record in records:
        if not isinstance(record, dict):
            rejects.add(kind, record, f"not_an_object: {type(record).__name__}")
            continue
        try:
            row = extract(record)
        except _Reject as exc:
            rejects.add(kind, record, exc.reason)
            continue
        first = by_id.get(row["id"])
        if first is not None:
            if first[0] == record:
                notes[f"{kind}_identical_duplicates_dropped"] += 1
            else:
                rejects.add(kind, record, f"duplicate_id: id {row['id']} already read (slug {first[1]['slug']!r})")
            continue
        by_id[row["id"]] = (record, row)
    by_slug: dict[str, tuple[Any, dict[str, Any]]] = {}
    for record, row in sorted(by_id.values(), key=lambda pair: pair[1]["id"]):
        kept = by_slug.get(row["slug"])
        if kept is not None:
            rejects.add(kind, record, f"duplicate_slug: slug {row['slug']!r} already used by id {kept[1]['id']}")
            continue
        by_slug[row["slug"]] = (record, row)
    return [row for _record, row in by_slug.values()]


def _category_row(record: dict[str, Any]) -> dict[str, Any]:
    created, modified = _dates(record)
    return {
        "id": _id_of(record), "title": _text(record, "title", required=True),
        "slug": _text(record, "slug", required=True).strip(),
        "description": _text(record, "description", required=False),
        "title_plural": _text(record, "title_plural", required=False),
        "show_pypi": _bool(record, "show_pypi", True), "created": created, "modified": modified,
    }


def _grid_row(record: dict[str, Any]) -> dict[str, Any]:
    created, modified = _dates(record)
    return {
        "id": _id_of(record), "title": _text(record, "title", required=True),
        "slug": _text(record, "slug", required=True).strip(),
        "description": _text(record, "description", required=False),
        "is_locked": _bool(record, "is_locked", False), "header": _bool(record, "header", False),
        "created": created, "modified": modified,
    }


def _package_row(record: dict[str, Any]) -> dict[str, Any]:
    created, modified = _dates(record)
    slug = _text(record, "slug", required=True).strip()
    repo_url = _text(record, "repo_url", required=False) or ""
    pypi_url = _text(record, "pypi_url", required=False, default=None)
    repo = parse_repo_url(repo_url)
    pypi_name, pypi_problem = parse_pypi(pypi_url, fallback_slug=slug)
    row = {
        "id": _id_of(record), "title": _text(record, "title", required=True), "slug": slug,
        "category_id": _ref_id(record.get("category")),
        "repo_url": repo_url, "pypi_url": pypi_url,
        "documentation_url": _text(record, "documentation_url", required=False, default=None),
        "created": created, "modified": modified,
        "repo_host": None, "repo_owner": None, "repo_name": None, "repo_key": None,
        "pypi_name": pypi_name,
        "repo_url_problem": None,
        "pypi_url_problem": None if pypi_problem is None else str(pypi_problem),
        "usage": _usage(record), "deprecated": _deprecated(record),
    }
    if isinstance(repo, RepoProblem):
        row["repo_url_problem"] = str(repo)
    else:
        row["repo_host"], row["repo_owner"], row["repo_name"] = repo.host, repo.owner, repo.name
        row["repo_key"] = repo.key
    return row


def _frame(rows: list[dict[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    columns = {name: [row[name] for row in rows] for name in schema}
    return pl.DataFrame(columns, schema=schema).sort("id")


def _refs(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _memberships(pairs: dict[tuple[int, int], int | None]) -> pl.DataFrame:
    """Membership rows with `position`: per package, its own list's order first (the insertion rank
    kept in `pairs`), then grid-side-only memberships by grid id."""
    ordered = sorted(pairs.items(), key=lambda item: (item[0][1], item[1] is None, item[1] or 0, item[0][0]))
    rows: dict[str, list[int]] = {"grid_id": [], "package_id": [], "position": []}
    package_id, position = None, 0
    for (grid, package), _rank in ordered:
        position = position + 1 if package == package_id else 0
        package_id = package
        rows["grid_id"].append(grid)
        rows["package_id"].append(package)
        rows["position"].append(position)
    return pl.DataFrame(rows, schema=GRID_PACKAGE_SCHEMA).sort("grid_id", "package_id")


def build_catalogue(records: CatalogueRecords) -> CatalogueFrames:
    """The catalogue frames (ARCHITECTURE.md, "Catalogue frames") from v4-shaped records."""
    rejects = _Rejects()
    notes: Counter = Counter()
    categories = _validated("category", records.categories, rejects, notes, _category_row)
    grids = _validated("grid", records.grids, rejects, notes, _grid_row)

    # keep the membership references of the packages / grids that survive validation
    package_refs: dict[int, Any] = {}
    grid_refs: dict[int, Any] = {}

    def package_row(record: dict[str, Any]) -> dict[str, Any]:
        row = _package_row(record)
        package_refs.setdefault(row["id"], record.get("grids"))
        return row

    packages = _validated("package", records.packages, rejects, notes, package_row)
    for record in records.grids:
        if isinstance(record, dict) and record.get("packages") is not None:
            with contextlib.suppress(_Reject):
                grid_refs.setdefault(_id_of(record), record.get("packages"))

    package_by_id = {row["id"]: row for row in packages}
    grid_by_id = {row["id"]: row for row in grids}
    all_package_ids = {_ref_id(r.get("id")) for r in records.packages if isinstance(r, dict)}
    all_grid_ids = {_ref_id(r.get("id")) for r in records.grids if isinstance(r, dict)}
    # (grid_id, package_id) -> rank in the package's own list; grid-side-only ones get None (ranked after)
    pairs: dict[tuple[int, int], int | None] = {}
    for package_id, refs in package_refs.items():
        if package_id not in package_by_id:
            continue
        for ref in _refs(refs):
            grid_id = _ref_id(ref)
            record = {"package_id": package_id, "grid": ref}
            slug = package_by_id[package_id]["slug"]
            if grid_id is None:
                rejects.add("grid_package", record, f"invalid_grid_ref: {ref!r} names no grid id",
                            source_id=package_id, slug=slug)
            elif grid_id in grid_by_id:
                pairs.setdefault((grid_id, package_id), len(pairs))
            elif grid_id not in all_grid_ids:
                rejects.add("grid_package", record,
                            f"unknown_grid: package {package_id} lists grid {grid_id}, not in the catalogue",
                            source_id=package_id, slug=slug)
    for grid_id, refs in grid_refs.items():
        if grid_id not in grid_by_id:
            continue
        for ref in _refs(refs):
            package_id = _ref_id(ref)
            record = {"grid_id": grid_id, "package": ref}
            slug = grid_by_id[grid_id]["slug"]
            if package_id is None:
                rejects.add("grid_package", record, f"invalid_package_ref: {ref!r} names no package id",
                            source_id=grid_id, slug=slug)
            elif package_id in package_by_id:
                pairs.setdefault((grid_id, package_id), None)
            elif package_id not in all_package_ids:
                rejects.add("grid_package", record,
                            f"unknown_package: grid {grid_id} lists package {package_id}, not in the catalogue",
                            source_id=grid_id, slug=slug)

    category_ids = {row["id"] for row in categories}
    notes["packages_with_unknown_category"] = sum(
        1 for row in packages if row["category_id"] is not None and row["category_id"] not in category_ids)
    notes["packages_without_category"] = sum(1 for row in packages if row["category_id"] is None)
    grid_packages = _memberships(pairs)
    return CatalogueFrames(
        categories=_frame(categories, CATEGORY_SCHEMA),
        grids=_frame(grids, GRID_SCHEMA),
        grid_packages=grid_packages,
        packages=_frame(packages, PACKAGE_SCHEMA),
        rejects=rejects.frame(),
        notes=dict(notes),
    )


def reject_codes(rejects: pl.DataFrame) -> dict[str, int]:
    """Rejects counted by `<kind>/<code>`."""
    if rejects.is_empty():
        return {}
    counted = (
        rejects.select(pl.col("kind") + "/" + pl.col("reason").str.split(":").list.first())
        .to_series().value_counts(sort=True)
    )
    return {row[0]: int(row[1]) for row in counted.iter_rows()}


def repo_problem_codes(packages: pl.DataFrame, column: str = "repo_url_problem") -> dict[str, int]:
    """Packages whose repo (or, with `column="pypi_url_problem"`, PyPI project) is not crawled, by problem code."""
    problems = packages.get_column(column).drop_nulls()
    if problems.is_empty():
        return {}
    counted = problems.str.split(":").list.first().value_counts(sort=True)
    return {row[0]: int(row[1]) for row in counted.iter_rows()}
