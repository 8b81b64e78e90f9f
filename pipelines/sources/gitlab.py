"""GitLab v4: project, commits of the last 52 weeks, contributors (pages merged)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, Run, SourceStats, Wiring, fetch_into
from pipelines.sources.facts import SourceFacts
from pipelines.sources.http.fetched import Fetched, require_body
from pipelines.sources.http.pages import merge_pages
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.reading import Bodies, JsonShape, first_item, read_rows, text
from pipelines.sources.times import utc_stamp
from pipelines.sources.webpaths import RepoProblem, strip_git

PATH_RE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
ENDPOINTS = ("gitlab_project", "gitlab_commits", "gitlab_contributors")

# catalogue URLs: each namespace / project path segment starts with a letter, digit or underscore
# (or a dot in old paths) and holds [A-Za-z0-9_.-]; at most 20 levels of groups.
WEB_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}")
# URL words that end the project path in old-style URLs without the "/-/" separator; GitLab
# reserves these names so no project or group can be called that.
WEB_ROUTE_WORDS = frozenset({
    "-", "tree", "blob", "raw", "issues", "merge_requests", "wikis", "commits", "commit", "pipelines",
    "tags", "branches", "activity", "network", "graphs", "compare", "releases", "archive",
})


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


class GitLabCrawling(Source):
    name = "gitlab"
    env_url = "GITLAB_API_URL"
    default_url = "https://gitlab.com/api/v4"
    web_hosts = ("gitlab.com",)
    platform_domains = ("gitlab.com", "gitlab.io")
    concurrency = 16
    remembered = ("gitlab_project",)

    def parse_repo_path(self, segments: list[str]) -> tuple[str, str] | RepoProblem:
        """Nested groups: the owner is "group/subgroup/..." up to the first route word."""
        project: list[str] = []
        for segment in segments:
            if segment in WEB_ROUTE_WORDS:
                break
            project.append(segment)
        if not project:
            return RepoProblem("missing_owner", "no group in the path")
        if len(project) < 2:
            return RepoProblem("missing_name", f"no project after group {project[0]!r}")
        if len(project) > 21:
            return RepoProblem("invalid_owner", "more than 20 nested groups")
        *groups, name = project
        name = strip_git(name)
        for group in groups:
            if not WEB_SEGMENT.fullmatch(group) or group.endswith((".git", ".atom")):
                return RepoProblem("invalid_owner", f"{group!r} is not a valid gitlab group")
        if not WEB_SEGMENT.fullmatch(name) or name.endswith(".atom"):
            return RepoProblem("invalid_name", f"{name!r} is not a valid gitlab project name")
        return "/".join(groups), name

    def endpoints(self, *, with_token: bool, tuning: Tuning) -> tuple[str, ...]:
        return ENDPOINTS

    def remember(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return {"project_id": body.get("id")}

    def connect(self, url: str, settings: Any, wiring: Wiring) -> GitLab:
        return GitLab(wiring.upstream(self.name, url, self.cap(wiring.tuning)), max_pages=wiring.tuning.max_pages)

    async def crawl(self, unit: Job, client: GitLab, run: Run) -> None:
        """The project first (its numeric id), then commits and contributors by id."""
        job = unit
        if not valid_path(job.ident):
            run.bad_entry(job, "not a usable GitLab project path")
            return
        project: int | str = job.facts.get("project_id") or job.ident
        if "gitlab_project" in job.due:
            fetched = await client.project(job.ident, job.etag("gitlab_project"))
            run.archive(job, "gitlab_project", fetched)
            if fetched.ok and isinstance(fetched.data.get("id"), int):
                project = fetched.data["id"]
            elif not fetched.not_modified:
                return
        tasks = []
        if "gitlab_commits" in job.due:
            tasks.append(fetch_into(run, job, "gitlab_commits",
                                    client.commits(project, run.window_since, job.etag("gitlab_commits"))))
        if "gitlab_contributors" in job.due:
            tasks.append(fetch_into(run, job, "gitlab_contributors",
                                    client.contributors(project, job.etag("gitlab_contributors"))))
        await asyncio.gather(*tasks)

    def stats(self, client: GitLab) -> SourceStats:
        return SourceStats.of(client.upstream)


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

def read_project(doc: dict) -> dict:
    """A v4 project -> repository facts (GitLab reports no watchers)."""
    license_ = doc.get("license") if isinstance(doc.get("license"), dict) else {}
    return {
        "stars": doc.get("star_count"),
        "forks": doc.get("forks_count"),
        "watchers": None,
        "open_issues": doc.get("open_issues_count"),
        "description": doc.get("description"),
        "homepage": doc.get("web_url"),
        "archived": doc.get("archived"),
        "is_fork": doc.get("forked_from_project") is not None,
        "default_branch": doc.get("default_branch"),
        "pushed_at": text(doc.get("last_activity_at")),
        "license": license_.get("key"),
        "topics": [str(t) for t in (doc.get("topics") or doc.get("tag_list") or [])],
        "full_name": doc.get("path_with_namespace"),
        "created_at": text(doc.get("created_at")),
    }


def last_commit_date(doc: list | dict) -> str | None:
    first = first_item(doc)
    return text(first.get("committed_date") or first.get("date"))


class GitLabReading:
    """GitLab's reading half of its `Source` (row by row). `gitlab_contributors` is archived but not
    read: it names authors, not accounts."""

    shapes: ClassVar[dict[str, JsonShape]] = {"gitlab_project": "object", "gitlab_commits": "list"}
    row_endpoints: ClassVar[tuple[str, ...]] = ("gitlab_project", "gitlab_commits")

    def read(self, bodies: Bodies) -> SourceFacts:
        return read_rows(bodies.rows, repos={"gitlab_project": read_project},
                         last_commits={"gitlab_commits": ((list, dict), last_commit_date)})


class GitLabSource(GitLabReading, GitLabCrawling):
    """Both halves of the source: crawled by `GitLabCrawling`, read by `GitLabReading`."""


SOURCE = GitLabSource()
