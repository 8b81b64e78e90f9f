"""What to crawl, in which order: one job per subject of every source, due keys only.

Every catalogue package names a repository and a PyPI project, often shared with other packages, so
jobs are per unique subject. Keys fetched within `max_age_hours` are left out (unless forced), and
never-seen keys go first, then the oldest (a source's `min_age_hours` is a floor on the age, even when
forced: a once-a-day upstream is asked at most once a day): a crawl stopped by its time budget has then spent it on
what mattered most, and the next run picks up the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from pipelines.sources.base import Source
from pipelines.sources.crawling import EPOCH, Job, KeyState
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import SOURCES


@dataclass
class Plan:
    jobs: dict[str, list[Job]]  # by source name, in registry order
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
    tuning: Tuning | None = None,
) -> Plan:
    """Jobs per source, in crawl order (never-seen keys first, then the oldest good fetch)."""
    tuning = tuning or Tuning()
    max_age = {source.name: timedelta(hours=max(max_age_hours, source.min_age_hours)) for source in SOURCES}
    min_age = {source.name: timedelta(hours=source.min_age_hours) for source in SOURCES}
    skipped_fresh = skipped_unsupported = skipped_problem = 0
    jobs: dict[str, list[Job]] = {source.name: [] for source in SOURCES}
    endpoints = {source.name: source.endpoints(with_token=with_token, tuning=tuning) for source in SOURCES}
    repositories = {source.name: source for source in SOURCES if source.kind == "repository"}
    packaged = [source for source in SOURCES if source.kind == "package"]
    seen_subjects: set[str] = set()

    def add(source: Source, subject: str, ident: str) -> None:
        nonlocal skipped_fresh
        due: dict[str, KeyState | None] = {}
        keys: dict[str, str] = {}
        for endpoint in endpoints[source.name]:
            key = source.request_key(endpoint, ident)
            state = states.get(key)
            age = None if state is None or state.last_ok is None else now - state.last_ok
            answered = state.last_answer or state.last_ok if state is not None else None
            if (answered is not None and now - answered < min_age[source.name]) or (
                    age is not None and not force and age < max_age[source.name]):
                skipped_fresh += 1
                continue
            due[endpoint], keys[endpoint] = state, key
        if due:
            order = min((0, EPOCH) if s is None else (1, s.last_ok or EPOCH) for s in due.values())
            jobs[source.name].append(Job(source.name, subject, ident, due, keys, order,
                                         facts=source.job_facts(ident, endpoints[source.name], facts)))

    columns = set(packages.columns)
    wanted = ["repo_host", "repo_owner", "repo_name", "repo_key", "repo_url_problem"]
    wanted += [c for c in dict.fromkeys(source.catalogue_column for source in packaged) if c not in wanted]
    rows = packages.select([c for c in wanted if c in columns]).iter_rows(named=True)
    for row in rows:
        repo_key = row.get("repo_key")
        if row.get("repo_url_problem"):
            skipped_problem += 1
        elif repo_key and repo_key not in seen_subjects and row.get("repo_owner") and row.get("repo_name"):
            seen_subjects.add(repo_key)
            source = repositories.get(row.get("repo_host"))
            if source is None:
                skipped_unsupported += 1
            else:
                add(source, repo_key, f"{row['repo_owner']}/{row['repo_name']}")
        for source in packaged:
            name = row.get(source.catalogue_column)
            subject = source.subject(name) if name else None
            if name and subject not in seen_subjects:
                seen_subjects.add(subject)
                add(source, subject, name)
    for source_jobs in jobs.values():
        source_jobs.sort(key=lambda j: j.order)
    return Plan(jobs, skipped_fresh, skipped_unsupported, skipped_problem)
