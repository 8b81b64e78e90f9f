"""GitLab v4: project, commits of the last 52 weeks, contributors (pages merged)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from pipelines.clients.http import Fetched, Upstream, next_link

PATH_RE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")


def valid_path(path: str) -> bool:
    return bool(PATH_RE.match(path)) and not any(seg in (".", "..") for seg in path.split("/"))


class GitLab:
    def __init__(self, upstream: Upstream, max_pages: int = 50) -> None:
        self.upstream = upstream
        self.max_pages = max_pages

    async def project(self, path: str, etag: str | None = None) -> Fetched:
        fetched = await self.upstream.get(f"/projects/{quote(path, safe='')}", etag=etag)
        if fetched.ok and not isinstance(fetched.data, dict):
            fetched.error_kind, fetched.error = "malformed", "project body is not an object"
        return fetched

    async def commits(self, project: int | str, since: datetime, etag: str | None = None) -> Fetched:
        """Default-branch commits, newest first: pages until one reaches back past `since`.

        So the body always holds the newest commit (last activity, even for an idle project) and
        every commit of the window; older ones on the last page are kept as GitLab sent them. No
        `since` parameter: the URL stays the same from run to run, so the ETag can answer 304.
        """
        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")

        def more(page: list[Any]) -> bool:
            oldest = page[-1].get("committed_date") if page and isinstance(page[-1], dict) else None
            return isinstance(oldest, str) and _utc(oldest) >= stamp

        return await self._pages(f"/projects/{quote(str(project), safe='')}/repository/commits?per_page=100",
                                 etag, more=more)

    async def contributors(self, project: int | str, etag: str | None = None) -> Fetched:
        return await self._pages(f"/projects/{quote(str(project), safe='')}/repository/contributors"
                                 "?per_page=100", etag)

    async def _pages(self, path: str, etag: str | None,
                     more: Callable[[list[Any]], bool] | None = None) -> Fetched:
        first = await self.upstream.get(path, etag=etag)
        if not first.ok:
            return first
        if not isinstance(first.data, list):
            first.error_kind, first.error = "malformed", "page is not a list"
            return first
        merged: list[Any] = list(first.data)
        pages = 1
        current = first
        while more is None or more(current.data):
            link = next_link(current.headers.get("link"))
            if link is None and current.headers.get("x-next-page"):
                sep = "&" if "?" in path else "?"
                link = f"{path}{sep}page={current.headers['x-next-page']}"
            if link is None:
                break
            pages += 1
            if pages > self.max_pages:
                break  # enough for 52 weeks of activity; keep what we have
            current = await self.upstream.get(link)
            first.attempts += current.attempts
            if not current.ok or not isinstance(current.data, list):
                first.status = current.status
                first.error_kind = current.error_kind or "malformed"
                first.error = f"page {pages}: {current.error or 'not a list'}"
                return first
            merged.extend(current.data)
        if pages > 1:
            first.data = merged
            first.text = orjson.dumps(merged).decode()
        first.headers.pop("link", None)
        first.headers["x-pulse-pages"] = str(pages)
        return first


def _utc(stamp: str) -> str:
    """An ISO timestamp as UTC 'YYYY-MM-DDTHH:MM:SSZ' (comparable as text); unparsable -> ''."""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
