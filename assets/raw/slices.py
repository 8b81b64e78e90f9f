"""How one crawl run is split into slices (one step each) and how their reports add up.

A run materializes some crawl partitions (`pipelines.crawler.plan.partition_keys`: `github-0`,
`gitlab`, ...). With `CrawlConfig.processes` = 1 one step crawls them all in one event loop, as fast as
the unpartitioned crawl was; with n > 1 the keys are dealt round-robin to n steps, which Dagster's
multiprocess executor runs in parallel processes. Pure functions: the asset wires them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines.crawler.crawl import CrawlReport


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
    # PULSE_RAW_URL: what the step pulled from / pushed to object storage (warehouse.raw_store.SyncStats)
    raw_store: Any = None


def split_partitions(keys: Sequence[str], count: int) -> list[list[str]]:
    """`keys` dealt round-robin into at most `count` non-empty slices (each gets shards of every big
    source, so the slices take about the same time); order kept within a slice."""
    count = max(1, min(count, len(keys)))
    return [list(keys[i::count]) for i in range(count)]


# report fields that are not added up across slices
LONGEST = {"seconds"}  # the slices ran at the same time
SAME_IN_EVERY_SLICE = {"skipped_unsupported", "skipped_problem"}  # catalogue-wide, counted by every slice


def _add(mine: Any, theirs: Any, name: str) -> Any:
    """`theirs` added into `mine`: numbers add, counters and lists extend, dicts merge by key (numbers
    added, source stats merged), flags or, texts joined; None takes the other."""
    if mine is None or theirs is None:
        return theirs if mine is None else mine
    if isinstance(mine, bool):
        return mine or theirs
    if isinstance(mine, int | float):
        if name in LONGEST or name in SAME_IN_EVERY_SLICE:
            return max(mine, theirs)
        return mine + theirs
    if isinstance(mine, Counter):
        counts = Counter(mine)
        counts.update(theirs)
        return counts
    if isinstance(mine, list):
        return mine + list(theirs)
    if isinstance(mine, dict):
        merged = dict(mine)
        for key, value in theirs.items():
            merged[key] = _add(merged.get(key), value, name)
        return merged
    if isinstance(mine, str):
        return mine if theirs in mine.split("; ") else f"{mine}; {theirs}"
    if dataclasses.is_dataclass(mine):
        return type(mine)(**{f.name: _add(getattr(mine, f.name), getattr(theirs, f.name), f.name)
                             for f in dataclasses.fields(mine)})
    return mine


def merge_reports(reports: Sequence[CrawlReport]) -> CrawlReport:
    """One report for the run out of its slices' (a single slice's is returned as it is).

    Field by field, so a figure added to `CrawlReport` or `SourceStats` adds up too: counts add,
    `seconds` is the longest (the slices ran at the same time), the catalogue-wide counts of what could
    not be crawled at all (unsupported host, unusable URL) are the same in every slice.
    """
    if len(reports) == 1:
        return reports[0]
    merged = reports[0]
    for report in reports[1:]:
        merged = _add(merged, report, "")
    return merged
