"""What to crawl, in which order: one job per repository and per PyPI project, due keys only.

Every catalogue package names a repository and a PyPI project, often shared with other packages, so
jobs are per unique subject. Keys fetched within `max_age_hours` are left out (unless forced), and
never-seen keys go first, then the oldest: a crawl stopped by its time budget has then spent it on
what mattered most, and the next run picks up the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from pipelines.crawler.state import KeyState

GITHUB_REST_ENDPOINTS = ("repo", "participation", "contributors", "commits")
GITHUB_TOKEN_ENDPOINTS = ("graphql_repo", "participation", "contributors")
GITLAB_ENDPOINTS = ("gitlab_project", "gitlab_commits", "gitlab_contributors")
BITBUCKET_ENDPOINTS = ("bitbucket_repo", "bitbucket_commits")
CODEBERG_ENDPOINTS = ("codeberg_repo", "codeberg_commits")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def request_key(source: str, endpoint: str, ident: str) -> str:
    """The archive's request key (ARCHITECTURE.md, "Raw archive")."""
    if source == "pypi":
        return f"pypi:{endpoint.removeprefix('pypi_')}:{ident}".lower()
    return f"{source}:{endpoint}:{ident}".lower()


@dataclass
class Job:
    source: str  # github | gitlab | bitbucket | codeberg | pypi
    subject: str
    ident: str  # owner/name, gitlab path, ws/slug, codeberg owner/name or pypi name (as the catalogue spells it)
    due: dict[str, KeyState | None]  # endpoint -> stored state (None = never seen)
    order: tuple[int, datetime] = (0, EPOCH)
    full_name: str | None = None  # canonical name from a stored body (renames)
    default_branch: str | None = None
    last_activity: str | None = None  # newest push / commit (ISO), from repository metadata
    nonempty: bool | None = None  # the repository is known to have commits
    project_id: int | None = None
    path: str | None = None  # PyPI: where the last answer's redirect led (/pypi/<display name>/json)

    def key(self, endpoint: str) -> str:
        return request_key(self.source, endpoint, self.ident)

    def etag(self, endpoint: str) -> str | None:
        state = self.due.get(endpoint)
        return state.etag if state else None


@dataclass
class Plan:
    jobs: dict[str, list[Job]]
    skipped_fresh: int
    skipped_unsupported: int
    skipped_problem: int

    @property
    def planned(self) -> int:
        return sum(len(j.due) for jobs in self.jobs.values() for j in jobs)


def plan_crawl(
    packages: pl.DataFrame,
    states: dict[str, KeyState],
    facts: dict[str, dict[str, Any]],
    *,
    with_token: bool,
    now: datetime,
    force: bool,
    max_age_hours: float,
    fetch_simple: bool = True,
) -> Plan:
    """Jobs per source, in crawl order (never-seen keys first, then the oldest good fetch)."""
    max_age = timedelta(hours=max_age_hours)
    skipped_fresh = skipped_unsupported = skipped_problem = 0
    jobs: dict[str, list[Job]] = {"github": [], "gitlab": [], "bitbucket": [], "codeberg": [], "pypi": []}
    seen_subjects: set[str] = set()

    def due_endpoints(source: str, ident: str, endpoints: Iterable[str]) -> dict[str, KeyState | None]:
        nonlocal skipped_fresh
        due: dict[str, KeyState | None] = {}
        for endpoint in endpoints:
            state = states.get(request_key(source, endpoint, ident))
            if state is not None and not force and state.last_ok is not None and now - state.last_ok < max_age:
                skipped_fresh += 1
                continue
            due[endpoint] = state
        return due

    def order(due: dict[str, KeyState | None]) -> tuple[int, datetime]:
        keys = [(0, EPOCH) if s is None else (1, s.last_ok or EPOCH) for s in due.values()]
        return min(keys)

    columns = set(packages.columns)
    rows = packages.select(
        [c for c in ("repo_host", "repo_owner", "repo_name", "repo_key", "pypi_name", "repo_url_problem")
         if c in columns]
    ).iter_rows(named=True)
    for row in rows:
        repo_key = row.get("repo_key")
        problem = row.get("repo_url_problem")
        host = row.get("repo_host")
        if problem:
            skipped_problem += 1
        elif repo_key and repo_key not in seen_subjects and row.get("repo_owner") and row.get("repo_name"):
            seen_subjects.add(repo_key)
            ident = f"{row['repo_owner']}/{row['repo_name']}"
            if host == "github":
                endpoints = GITHUB_TOKEN_ENDPOINTS if with_token else GITHUB_REST_ENDPOINTS
                due = due_endpoints("github", ident, endpoints)
                if due:
                    fact = facts.get(request_key("github", endpoints[0], ident)) or facts.get(
                        request_key("github", "repo" if with_token else "graphql_repo", ident)) or {}
                    jobs["github"].append(Job("github", repo_key, ident, due, order(due),
                                              full_name=fact.get("full_name"),
                                              default_branch=fact.get("default_branch"),
                                              last_activity=fact.get("last_activity"),
                                              nonempty=fact.get("nonempty")))
            elif host == "gitlab":
                due = due_endpoints("gitlab", ident, GITLAB_ENDPOINTS)
                if due:
                    fact = facts.get(request_key("gitlab", "gitlab_project", ident)) or {}
                    jobs["gitlab"].append(Job("gitlab", repo_key, ident, due, order(due),
                                              project_id=fact.get("project_id")))
            elif host == "bitbucket":
                due = due_endpoints("bitbucket", ident, BITBUCKET_ENDPOINTS)
                if due:
                    jobs["bitbucket"].append(Job("bitbucket", repo_key, ident, due, order(due)))
            elif host == "codeberg":
                due = due_endpoints("codeberg", ident, CODEBERG_ENDPOINTS)
                if due:
                    jobs["codeberg"].append(Job("codeberg", repo_key, ident, due, order(due)))
            else:
                skipped_unsupported += 1
        name = row.get("pypi_name")
        subject = f"pypi:{name}" if name else None
        if name and subject not in seen_subjects:
            seen_subjects.add(subject)
            endpoints = ("pypi_json", "pypi_simple") if fetch_simple else ("pypi_json",)
            due = due_endpoints("pypi", name, endpoints)
            if due:
                fact = facts.get(request_key("pypi", "pypi_json", name)) or {}
                jobs["pypi"].append(Job("pypi", subject, name, due, order(due), path=fact.get("path")))
    for source_jobs in jobs.values():
        source_jobs.sort(key=lambda j: j.order)
    return Plan(jobs, skipped_fresh, skipped_unsupported, skipped_problem)
