"""What to crawl, in which order: one job per subject of every source, due keys only.

Every catalogue package names a repository and a PyPI project, often shared with other packages, so
jobs are per unique subject. Keys fetched within `max_age_hours` are left out (unless forced), and
never-seen keys go first, then the oldest (a source's `min_age_hours` is a floor on the age, even when
forced: a once-a-day upstream is asked at most once a day): a crawl stopped by its time budget has then spent it on
what mattered most, and the next run picks up the rest.

Partitions (docs/ARCHITECTURE.md, "Crawl partitions"): every job belongs to one partition key of the
crawl, `<source>-<shard>` for the big sources (the subject's stable hash modulo `SHARDS[source]`) and
`<source>` for the others. A plan can be restricted to some keys (`plan_crawl(partitions=...)`): the
plans of disjoint key sets are disjoint and together equal the plan of all keys, because a subject
(a repository or a project, shared by the packages naming it) lands in exactly one shard.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from pipelines.settings import crawl_shards
from pipelines.sources.base import Source
from pipelines.sources.crawling import EPOCH, Job, KeyState
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import SOURCES

# The big sources are sharded; every other source is one partition. How many shards each gets is
# PULSE_CRAWL_SHARDS (default 4), read once when this module loads, like the partitions definition
# built from it (`assets.raw.assets.CRAWL_PARTITIONS`): every process loading the code location must see
# the same value. Changing it renames partition keys (docs/SCALING.md, "Shards and concurrency").
SHARDED = ("github", "pypi", "pypistats")


def shards_by_source(count: int) -> dict[str, int]:
    """Shards per big source for a shard count (1: each big source is one partition, like the others)."""
    return {source: count for source in SHARDED}


SHARDS: dict[str, int] = shards_by_source(crawl_shards(os.environ))


def shard_of(subject: str, shards: int) -> int:
    """The subject's shard: a stable hash (the same in every process and Python version, unlike `hash`)."""
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(subject.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def partition_of(source: str, subject: str) -> str:
    """The crawl partition key of one subject of `source` (`github-2`, `gitlab`)."""
    shards = SHARDS.get(source, 1)
    return f"{source}-{shard_of(subject, shards)}" if shards > 1 else source


def partition_keys() -> list[str]:
    """Every crawl partition key, in registry order then shard order (the order of backfill ranges)."""
    keys: list[str] = []
    for source in SOURCES:
        shards = SHARDS.get(source.name, 1)
        keys += [f"{source.name}-{i}" for i in range(shards)] if shards > 1 else [source.name]
    return keys


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
    partitions: Collection[str] | None = None,
) -> Plan:
    """Jobs per source, in crawl order (never-seen keys first, then the oldest good fetch).

    `partitions`: only the subjects of these crawl partition keys (None: all of them).
    """
    tuning = tuning or Tuning()
    wanted_partitions = None if partitions is None else set(partitions)
    if wanted_partitions is not None and (unknown := wanted_partitions - set(partition_keys())):
        # a key of another shard count (a backfill launched before PULSE_CRAWL_SHARDS changed): its
        # subjects are not that shard's any more, so crawling it would crawl the wrong ones
        raise ValueError(f"unknown crawl partition(s) {', '.join(sorted(unknown))}: with PULSE_CRAWL_SHARDS="
                         f"{max(SHARDS.values(), default=1)} the partitions are {', '.join(partition_keys())}")
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
        if wanted_partitions is not None and partition_of(source.name, subject) not in wanted_partitions:
            return
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
