"""How one crawl run is split into slices (one step each) and how their reports add up.

A run materializes some crawl partitions (`pipelines.crawler.plan.partition_keys`: `github-0`,
`gitlab`, ...). With `CrawlConfig.processes` = 1 one step crawls them all in one event loop, as fast as
the unpartitioned crawl was; with n > 1 the keys are dealt round-robin to n steps, which Dagster's
multiprocess executor runs in parallel processes. Pure functions: the asset wires them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines.crawler.crawl import CrawlReport
from pipelines.sources.crawling import SourceStats


@dataclass(frozen=True)
class CrawlSlice:
    """What one slice step crawls: its partition keys, the catalogue rows, the run's crawl options."""

    index: int
    count: int
    partitions: list[str]
    packages: pl.DataFrame
    options: dict[str, Any]  # CrawlConfig fields


@dataclass(frozen=True)
class SliceOutcome:
    """A slice's report, or why it failed (its partitions are then the run's failed partitions)."""

    partitions: list[str]
    report: CrawlReport | None = None
    failure: str | None = None


def split_partitions(keys: Sequence[str], count: int) -> list[list[str]]:
    """`keys` dealt round-robin into at most `count` non-empty slices (each gets shards of every big
    source, so the slices take about the same time); order kept within a slice."""
    count = max(1, min(count, len(keys)))
    return [list(keys[i::count]) for i in range(count)]


def select_packages(packages: pl.DataFrame, package_ids: Iterable[int] | None) -> pl.DataFrame:
    """The catalogue rows the run crawls: all, or only the given ids (ids not in the catalogue are ignored)."""
    if package_ids is None:
        return packages
    return packages.filter(pl.col("id").is_in(list(package_ids)))


def _merge_stats(into: SourceStats, other: SourceStats) -> None:
    """Add `other` into `into`, field by field (counts and seconds add, counters merge, lists extend)."""
    for spec in dataclasses.fields(other):
        mine, theirs = getattr(into, spec.name), getattr(other, spec.name)
        if isinstance(mine, Counter):
            mine.update(theirs)
        elif isinstance(mine, list):
            mine.extend(theirs)
        elif isinstance(mine, int | float) and not isinstance(mine, bool):
            setattr(into, spec.name, mine + theirs)


def merge_reports(reports: Sequence[CrawlReport]) -> CrawlReport:
    """One report for the run out of its slices' (a single slice's is returned as it is).

    The slices ran at the same time, so `seconds` is the longest; the catalogue-wide counts of what
    could not be crawled at all (unsupported host, unusable URL) are the same in every slice.
    """
    if len(reports) == 1:
        return reports[0]
    merged = CrawlReport(partitions=[], archived_by_partition={})
    for report in reports:
        for name, stats in report.sources.items():
            _merge_stats(merged.sources.setdefault(name, SourceStats()), stats)
        merged.errors.extend(report.errors)
        merged.endpoint_errors.extend(report.endpoint_errors)
        merged.skipped_fresh += report.skipped_fresh
        merged.planned += report.planned
        merged.archived += report.archived
        merged.not_modified += report.not_modified
        for name, jobs in report.jobs_by_source.items():
            merged.jobs_by_source[name] = merged.jobs_by_source.get(name, 0) + jobs
        merged.skipped_unsupported = max(merged.skipped_unsupported, report.skipped_unsupported)
        merged.skipped_problem = max(merged.skipped_problem, report.skipped_problem)
        merged.stopped_by_budget |= report.stopped_by_budget
        merged.seconds = max(merged.seconds, report.seconds)
        merged.partitions += report.partitions or []
        merged.archived_by_partition.update(report.archived_by_partition)
        merged.interrupted_by = merged.interrupted_by or report.interrupted_by
    reasons = [report.stop_reason for report in reports if report.stop_reason]
    merged.stop_reason = "; ".join(dict.fromkeys(reasons)) or None
    return merged
