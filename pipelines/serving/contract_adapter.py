"""TEMPORARY ADAPTER, to delete when helper `docs` lands the contract in `assets.exports.published_api`.

The server is written against the documents <-> server contract (PLAN10-11.md): it only calls
`respond(path, query, snapshot)`, `snapshot()` and `reload_if_changed()` on an object built as
`PublishedApi(published, timezone)`, and reads `Snapshot.token` / `Snapshot.published_at`. Today's
`PublishedApi` has another shape (renders with a base URL, reloads inside every call), so this module
wraps its pure functions behind the contract, rendering links with `LINK_BASE`. When the real one lands,
`open_api` becomes `PublishedApi(published, timezone)` and this file goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from assets.exports import api_v4
from assets.exports.api_v4 import ApiContext, page, root
from assets.exports.published_api import DOCUMENTS, MODEL_NAMES, SEARCH_LIMIT
from assets.exports.published_api import PublishedApi as _TodaysApi
from assets.exports.published_api import Snapshot as _TodaysSnapshot

LINK_BASE: str = getattr(api_v4, "LINK_BASE", "http://pulse-link-base.invalid")
NOT_FOUND = {"detail": "Not found."}


@dataclass(frozen=True)
class ApiResponse:
    status: int
    document: object


@dataclass(frozen=True)
class Snapshot:
    token: str
    published_at: datetime
    data: _TodaysSnapshot
    by_key: dict[str, dict[str, dict]]  # kind -> id or slug -> record (a scan of 5,000 per detail is ~1 ms)


def _int(query: Mapping[str, str], name: str, default: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        return default
    return max(value, 0)


class ContractApi:
    """`respond` / `snapshot` / `reload_if_changed` over today's rendering functions."""

    def __init__(self, published: Path, timezone: str) -> None:
        self.published = Path(published)
        self.ctx = ApiContext.create(LINK_BASE, timezone)
        self._snapshot: Snapshot | None = None

    def _token(self) -> tuple[str, datetime]:
        stat = self.published.stat()
        return f"{stat.st_mtime_ns}-{stat.st_size}-{stat.st_ino}", datetime.fromtimestamp(stat.st_mtime, UTC)

    def load(self) -> Snapshot:
        token, published_at = self._token()  # before reading: a newer file only means one more reload
        data = _TodaysApi(self.published, self.ctx).snapshot()
        by_key = {kind: {**{r["slug"]: r for r in rows if kind != "categories"}, **{str(r["id"]): r for r in rows}}
                  for kind, rows in data.records.items()}
        return Snapshot(token, published_at, data, by_key)

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = self.load()
        return self._snapshot

    def reload_if_changed(self) -> bool:
        current = self.snapshot()
        if self._token()[0] == current.token:
            return False
        self._snapshot = self.load()  # one reference swapped: requests holding the old one finish on it
        return True

    def respond(self, path: str, query: Mapping[str, str], snapshot: Snapshot | None = None) -> ApiResponse:
        current = snapshot or self.snapshot()
        snap = current.data
        if query.get("format", "json") != "json":
            return ApiResponse(404, NOT_FOUND)
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v4"]:
            return ApiResponse(404, NOT_FOUND)
        parts = parts[2:]
        if not parts:
            return ApiResponse(200, root(self.ctx))
        if parts == ["search"]:
            return ApiResponse(200, _search(snap.search_rows, query.get("q", "")))
        kind = parts[0]
        if kind not in MODEL_NAMES or len(parts) > 3:
            return ApiResponse(404, NOT_FOUND)
        if len(parts) == 1:
            limit = _int(query, "limit", 20) or 20
            return ApiResponse(200, page(kind, snap.records[kind], self.ctx, limit=limit,
                                         offset=_int(query, "offset", 0)))
        missing = ApiResponse(404, {"detail": f"No {MODEL_NAMES[kind]} matches the given query."})
        if kind == "categories" and not parts[1].isdigit():
            return missing
        record = current.by_key[kind].get(parts[1])
        if len(parts) == 2:
            return missing if record is None else ApiResponse(200, record)
        if parts[2] not in DOCUMENTS[kind]:
            return ApiResponse(404, NOT_FOUND)
        found = None if record is None else snap.documents.get(kind, parts[2], int(record["id"]))
        return missing if found is None else ApiResponse(200, found)


def _search(rows: list[dict], query: str) -> list[dict]:
    query = query.strip().lower()
    if not query:
        return []
    hits = [row for row in rows if query in row["title"].lower() or query in row["slug"]
            or query in (row["description"] or "").lower()]
    hits.sort(key=lambda row: (-row["weight"], row["slug"]))
    return hits[:SEARCH_LIMIT]


def open_api(published: Path, timezone: str) -> ContractApi:
    """The contract's `PublishedApi(published, timezone)`; this adapter until `docs` lands."""
    return ContractApi(published, timezone)
