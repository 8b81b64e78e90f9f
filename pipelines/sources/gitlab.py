"""GitLab v4: project, commits of the last 52 weeks, contributors (pages merged)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pipelines.sources.http.fetched import Fetched, require_body
from pipelines.sources.http.pages import merge_pages, utc_stamp
from pipelines.sources.http.upstream import Upstream

PATH_RE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")


def valid_path(path: str) -> bool:
    return bool(PATH_RE.match(path)) and not any(seg in (".", "..") for seg in path.split("/"))


class GitLab:
    def __init__(self, upstream: Upstream, max_pages: int = 50) -> None:
        self.upstream = upstream
        self.max_pages = max_pages

    async def project(self, path: str, etag: str | None = None) -> Fetched:
        fetched = await self.upstream.get(f"/projects/{quote(path, safe='')}", etag=etag)
        return require_body(fetched, lambda data: isinstance(data, dict), "project body is not an object")

    async def commits(self, project: int | str, since: datetime, etag: str | None = None) -> Fetched:
        """Default-branch commits, newest first: pages until one reaches back past `since`.

        So the body always holds the newest commit (last activity, even for an idle project) and
        every commit of the window; older ones on the last page are kept as GitLab sent them. No
        `since` parameter: the URL stays the same from run to run, so the ETag can answer 304.
        """
        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")

        def more(page: list[Any]) -> bool:
            oldest = page[-1].get("committed_date") if page and isinstance(page[-1], dict) else None
            return isinstance(oldest, str) and utc_stamp(oldest) >= stamp

        return await self._pages(f"/projects/{quote(str(project), safe='')}/repository/commits?per_page=100",
                                 etag, more=more)

    async def contributors(self, project: int | str, etag: str | None = None) -> Fetched:
        return await self._pages(f"/projects/{quote(str(project), safe='')}/repository/contributors"
                                 "?per_page=100", etag)

    async def _pages(self, path: str, etag: str | None,
                     more: Callable[[list[Any]], bool] | None = None) -> Fetched:
        def x_next_page(page: Fetched, _pages: int) -> str | None:
            if not page.headers.get("x-next-page"):
                return None
            sep = "&" if "?" in path else "?"
            return f"{path}{sep}page={page.headers['x-next-page']}"

        first = await self.upstream.get(path, etag=etag)
        return await merge_pages(self.upstream, first, what="page", max_pages=self.max_pages, more=more,
                                 fallback=x_next_page)


# --- reading: stored bodies -> facts (core) ------------------------------------------------------
