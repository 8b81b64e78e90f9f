"""Codeberg (Forgejo, Gitea-compatible API v1): repository and the default branch's commits.

Forgejo answers `GET /repos/{owner}/{repo}` with the repository (`stars_count`, `forks_count`,
`watchers_count`, `description`, `archived`, `empty`, ...) and `GET /repos/{owner}/{repo}/commits`
with a page of commits, newest first (`commit.committer.date`, `created`), paginated by `page` and
`limit` (at most 50 per page on Codeberg) with an RFC 8288 `Link` header, `x-total-count` and the
older `X-HasMore`. An empty repository answers the commits request with 409 (like GitHub), archived
as `[]`. Renamed repositories redirect (followed by `Upstream`, same host only).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from pipelines.sources.facts import SourceFacts
from pipelines.sources.forge import ForgeCrawling
from pipelines.sources.http.fetched import Fetched, require_body
from pipelines.sources.http.pages import merge_pages
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.reading import Bodies, JsonShape, read_rows, text
from pipelines.sources.times import utc_stamp

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
WEB_OWNER = re.compile(r"[A-Za-z0-9_.-]{1,40}")  # catalogue URLs: Forgejo users and organisations
WEB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
PAGE_SIZE = 50  # Codeberg's MAX_RESPONSE_ITEMS
# no per-commit diff statistics, signature checks or file lists: cheaper for the server
COMMITS_QUERY = f"limit={PAGE_SIZE}&stat=false&verification=false&files=false"


def valid_name(owner: str, name: str) -> bool:
    return all(NAME_RE.match(p) and p not in (".", "..") for p in (owner, name))


def commit_date(commit: Any) -> str | None:
    """The committer date of a Gitea commit entry (`commit.committer.date`, else `created`)."""
    if not isinstance(commit, dict):
        return None
    inner = commit.get("commit")
    committer = inner.get("committer") if isinstance(inner, dict) else None
    date = committer.get("date") if isinstance(committer, dict) else None
    if not isinstance(date, str):
        date = commit.get("created")
    return date if isinstance(date, str) else None


class Codeberg:
    def __init__(self, upstream: Upstream, max_pages: int = 50) -> None:
        self.upstream = upstream
        self.max_pages = max_pages

    def _base(self, owner: str, name: str) -> str:
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    async def repository(self, owner: str, name: str, etag: str | None = None) -> Fetched:
        fetched = await self.upstream.get(self._base(owner, name), etag=etag)
        return require_body(fetched, lambda data: isinstance(data, dict), "repository body is not an object")

    async def commits(self, owner: str, name: str, since: datetime, etag: str | None = None) -> Fetched:
        """Default-branch commits, newest first: pages until one reaches back past `since`.

        The body always holds the newest commit (last activity, even for an idle
        repository) and every commit of the window; no `since` parameter, so the URL stays the same
        from run to run and the ETag can answer 304. 409 (empty repository) -> `[]`.
        """
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = f"{self._base(owner, name)}/commits?{COMMITS_QUERY}"
        first = await self.upstream.get(path, etag=etag)
        if first.status == 409:  # "Git Repository is empty." (classified as unexpected by default)
            first.text, first.data = "[]", []
            first.error_kind = first.error = None
            return first

        def reaches_into_window(page: list[Any]) -> bool:  # its oldest commit is still in the window
            return bool(page) and utc_stamp(commit_date(page[-1])) >= stamp

        def has_more(page: Fetched, pages: int) -> str | None:
            return f"{path}&page={pages + 1}" if page.headers.get("x-hasmore", "").lower() == "true" else None

        return await merge_pages(self.upstream, first, what="commits page", max_pages=self.max_pages,
                                 more=reaches_into_window, fallback=has_more)


class CodebergCrawling(ForgeCrawling):
    name = "codeberg"
    env_url = "CODEBERG_API_URL"
    default_url = "https://codeberg.org/api/v1"
    web_hosts = ("codeberg.org",)
    platform_domains = ("codeberg.org", "codeberg.page")
    concurrency = 8  # Codeberg is a non-profit's service: be gentle

    client_class = Codeberg
    web_owner, web_name = WEB_OWNER, WEB_NAME
    bad_ident = "not a usable Codeberg owner/name"

    def valid(self, owner: str, name: str) -> bool:
        return valid_name(owner, name)


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

def read_repository(doc: dict) -> dict:
    """A Forgejo repository -> repository facts."""
    licenses = doc.get("licenses") if isinstance(doc.get("licenses"), list) else []
    topics = doc.get("topics") if isinstance(doc.get("topics"), list) else []
    return {
        "stars": doc.get("stars_count"),
        "forks": doc.get("forks_count"),
        "watchers": doc.get("watchers_count"),
        "open_issues": doc.get("open_issues_count"),
        "description": doc.get("description"),
        "homepage": doc.get("website") or None,
        "archived": doc.get("archived"),
        "is_fork": doc.get("fork"),
        "default_branch": doc.get("default_branch"),
        "pushed_at": text(doc.get("updated_at")),
        "license": str(licenses[0]) if licenses else None,
        "topics": [str(t) for t in topics],
        "full_name": doc.get("full_name"),
        "created_at": text(doc.get("created_at")),
    }


def last_commit_date(doc: list) -> str | None:
    return commit_date(doc[0] if doc else None)


class CodebergReading:
    """Codeberg's reading half of its `Source` (row by row)."""

    shapes: ClassVar[dict[str, JsonShape]] = {"codeberg_repo": "object", "codeberg_commits": "list"}
    row_endpoints: ClassVar[tuple[str, ...]] = ("codeberg_repo", "codeberg_commits")

    def read(self, bodies: Bodies) -> SourceFacts:
        return read_rows(bodies.rows, repos={"codeberg_repo": read_repository},
                         last_commits={"codeberg_commits": (list, last_commit_date)})


class CodebergSource(CodebergReading, CodebergCrawling):
    """Both halves of the source: crawled by `CodebergCrawling`, read by `CodebergReading`."""


SOURCE = CodebergSource()
