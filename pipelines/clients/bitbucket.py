"""Bitbucket Cloud 2.0: repository and the newest commits."""

from __future__ import annotations

import re
from urllib.parse import quote

from pipelines.clients.fetched import Fetched, require_body
from pipelines.clients.http import Upstream

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def valid_name(workspace: str, slug: str) -> bool:
    return all(NAME_RE.match(p) and p not in (".", "..") for p in (workspace, slug))


class Bitbucket:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def _base(self, workspace: str, slug: str) -> str:
        return f"/repositories/{quote(workspace, safe='')}/{quote(slug, safe='')}"

    async def repository(self, workspace: str, slug: str, etag: str | None = None) -> Fetched:
        fetched = await self.upstream.get(self._base(workspace, slug), etag=etag)
        return require_body(fetched, lambda data: isinstance(data, dict), "repository body is not an object")

    async def commits(self, workspace: str, slug: str, etag: str | None = None) -> Fetched:
        """The first page of commits (newest first)."""
        fetched = await self.upstream.get(self._base(workspace, slug) + "/commits?pagelen=30", etag=etag)
        return require_body(fetched, lambda data: isinstance(data, dict) and isinstance(data.get("values"), list),
                            "commits body has no 'values' list")
