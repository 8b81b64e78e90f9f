"""Bitbucket Cloud 2.0: repository and the default branch's commits of the last 52 weeks.

Bitbucket pages its lists inside the body (`{"values": [...], "pagelen": n, "next": <absolute URL>}`)
rather than in a Link header, so commits are paged here: newest first, following `next` until a page
reaches back past the window start (as for the other forges), at most `max_pages` pages. The
archived body keeps Bitbucket's shape: one page object whose `values` are all the pages' commits
(`next` dropped, `x-pulse-pages` header says how many were merged).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from pipelines.sources.facts import SourceFacts
from pipelines.sources.forge import ForgeCrawling
from pipelines.sources.http.fetched import Fetched, require_body
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.reading import Bodies, JsonShape, first_item, read_rows, text
from pipelines.sources.times import utc_stamp

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
WEB_OWNER = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # catalogue URLs: workspaces
WEB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # and repository slugs
PAGE_LEN = 100  # Bitbucket's largest `pagelen` for commits (default 30)


def valid_name(workspace: str, slug: str) -> bool:
    return all(NAME_RE.match(p) and p not in (".", "..") for p in (workspace, slug))


def _is_page(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("values"), list)


class Bitbucket:
    def __init__(self, upstream: Upstream, max_pages: int = 50, page_len: int = PAGE_LEN) -> None:
        self.upstream = upstream
        self.max_pages = max_pages
        self.page_len = page_len

    def _base(self, workspace: str, slug: str) -> str:
        return f"/repositories/{quote(workspace, safe='')}/{quote(slug, safe='')}"

    async def repository(self, workspace: str, slug: str, etag: str | None = None) -> Fetched:
        fetched = await self.upstream.get(self._base(workspace, slug), etag=etag)
        return require_body(fetched, lambda data: isinstance(data, dict), "repository body is not an object")

    async def commits(self, workspace: str, slug: str, since: datetime | None = None,
                      etag: str | None = None) -> Fetched:
        """Commits newest first, pages merged until one reaches back past `since` (None: page 1 only).

        The body always holds the newest commit (last activity, even for an idle repository) and
        every commit of the window; the URL has no date in it, so the ETag of page 1 can answer 304
        from run to run. A failed later page fails the key (the previous good body stays).
        """
        path = f"{self._base(workspace, slug)}/commits?pagelen={self.page_len}"
        first = await self.upstream.get(path, etag=etag)
        first = require_body(first, _is_page, "commits body has no 'values' list")
        if not first.ok:
            return first
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since is not None else None
        merged: list[Any] = list(first.data["values"])
        page, pages = first.data, 1
        while stamp is not None and page.get("next") and page["values"]:
            oldest = page["values"][-1].get("date") if isinstance(page["values"][-1], dict) else None
            if not (isinstance(oldest, str) and utc_stamp(oldest) >= stamp):
                break  # this page already reaches back past the window
            if pages >= self.max_pages:
                break  # enough for 52 weeks of any real project; keep what we have
            current = await self.upstream.get(str(page["next"]))
            first.attempts += current.attempts
            pages += 1
            if not current.ok or not _is_page(current.data):
                first.status = current.status
                first.error_kind = current.error_kind or "malformed"
                first.error = f"page {pages}: {current.error or 'no values list'}"
                return first
            page = current.data
            merged.extend(page["values"])
        if pages > 1:
            body = {k: v for k, v in first.data.items() if k not in ("next", "values")}
            body["values"] = merged
            first.data = body
            first.text = orjson.dumps(body).decode()
        first.headers["x-pulse-pages"] = str(pages)
        return first


class BitbucketCrawling(ForgeCrawling):
    name = "bitbucket"
    env_url = "BITBUCKET_API_URL"
    default_url = "https://api.bitbucket.org/2.0"
    web_hosts = ("bitbucket.org",)
    platform_domains = ("bitbucket.org", "bitbucket.io")
    retired_domains = ("bitbucket.io",)  # Bitbucket's static websites: gone
    concurrency = 16

    client_class = Bitbucket
    web_owner, web_name = WEB_OWNER, WEB_NAME
    bad_ident = "not a usable Bitbucket workspace/slug"

    def valid(self, owner: str, name: str) -> bool:
        return valid_name(owner, name)


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

def read_repository(doc: dict) -> dict:
    """A 2.0 repository -> repository facts (Bitbucket reports no stars, forks, issues or archiving)."""
    branch = doc.get("mainbranch") if isinstance(doc.get("mainbranch"), dict) else {}
    return {
        "stars": 0,
        "forks": None,
        "watchers": None,
        "open_issues": None,
        "description": doc.get("description"),
        "homepage": doc.get("website") or None,
        "archived": False,
        "is_fork": doc.get("parent") is not None,
        "default_branch": branch.get("name"),
        "pushed_at": text(doc.get("updated_on")),
        "license": None,
        "topics": [],
        "full_name": doc.get("full_name"),
        "created_at": text(doc.get("created_on")),
    }


def last_commit_date(doc: list | dict) -> str | None:
    first = first_item(doc)
    return text(first.get("committed_date") or first.get("date"))


class BitbucketReading:
    """Bitbucket's reading half of its `Source` (row by row; the commits body is a page object)."""

    shapes: ClassVar[dict[str, JsonShape]] = {"bitbucket_repo": "object"}
    row_endpoints: ClassVar[tuple[str, ...]] = ("bitbucket_repo", "bitbucket_commits")

    def read(self, bodies: Bodies) -> SourceFacts:
        return read_rows(bodies.rows, repos={"bitbucket_repo": read_repository},
                         last_commits={"bitbucket_commits": ((list, dict), last_commit_date)})


class BitbucketSource(BitbucketReading, BitbucketCrawling):
    """Both halves of the source: crawled by `BitbucketCrawling`, read by `BitbucketReading`."""


SOURCE = BitbucketSource()
