"""GitLab v4: project, commits of the last 52 weeks, contributors (pages merged)."""

from __future__ import annotations

import re
from datetime import datetime
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
        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        return await self._pages(f"/projects/{quote(str(project), safe='')}/repository/commits"
                                 f"?since={stamp}&per_page=100", etag)

    async def contributors(self, project: int | str, etag: str | None = None) -> Fetched:
        return await self._pages(f"/projects/{quote(str(project), safe='')}/repository/contributors"
                                 "?per_page=100", etag)

    async def _pages(self, path: str, etag: str | None) -> Fetched:
        first = await self.upstream.get(path, etag=etag)
        if not first.ok:
            return first
        if not isinstance(first.data, list):
            first.error_kind, first.error = "malformed", "page is not a list"
            return first
        merged: list[Any] = list(first.data)
        pages = 1
        current = first
        while True:
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
