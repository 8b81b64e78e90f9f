"""Facts: what the parse stage hands to the assemble stage, one typed frame per kind of fact.

Parsing knows about upstream bodies and nothing about packages; assembling knows about packages and
nothing about bodies. These schemas are the whole contract between them, keyed by `subject` (a repo
key, or "<source>:<name>" for a package source: "pypi:<name>", "pypistats:<name>"), so a new host
only has to produce these frames (`SourceFacts`, what its `Source.read` returns); a new *kind* of
fact is a new schema here, a field of `Facts` and `SourceFacts`, merged in `assets.core.parse` and
placed by `assets.core.assemble`. Timestamps stay ISO text here: hosts write them differently, and one parser
(`pipelines.sources.times.iso_column`) normalises them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import polars as pl

# timestamps are stored in microseconds, always UTC: the archive and the warehouse agree on one type
UTC_US = pl.Datetime("us", "UTC")


def cast_columns(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Exactly `schema`'s columns, in its order and types: stage boundaries are typed, so a surprise
    dtype from an upstream body fails here rather than deep in a join."""
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


REPO_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "stars": pl.Int64(),
    "forks": pl.Int64(),
    "watchers": pl.Int64(),
    "open_issues": pl.Int64(),
    "description": pl.String(),
    "homepage": pl.String(),
    "archived": pl.Boolean(),
    "is_fork": pl.Boolean(),
    "default_branch": pl.String(),
    "pushed_at": pl.String(),
    "graph_commit_at": pl.String(),
    "latest_release": pl.String(),
    "license": pl.String(),
    "topics": pl.List(pl.String()),
    "full_name": pl.String(),
    "created_at": pl.String(),
    "good_fetched_at": UTC_US,
}
COMMIT_FACTS: dict[str, pl.DataType] = {"subject": pl.String(), "last_commit_at": pl.String()}
WEEK_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "week_index": pl.Int16(),
    "week_start": pl.Date(),
    "commits": pl.Int32(),
}
PARTICIPANT_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "position": pl.Int32(),
    "login": pl.String(),
    "contributions": pl.Int64(),
    "is_bot": pl.Boolean(),
}
PYPI_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "pypi_version": pl.String(),
    "docs_project_url": pl.String(),
    "docs_url": pl.String(),
    "requires_python": pl.String(),
    "classifiers": pl.List(pl.String()),
    # entries of the JSON's top-level `vulnerabilities` (the latest version's) not withdrawn; null
    # when the body has no such list
    "vulnerabilities": pl.Int32(),
}
# PEP 792 project status from the Simple API (PEP 691 JSON `project-status`)
SIMPLE_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "pypi_status": pl.String(),
    "pypi_status_reason": pl.String(),
}
RELEASE_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "version": pl.String(),
    "upload_time": pl.String(),
    "yanked": pl.Boolean(),
    "requires_python": pl.String(),
}
# downloads from pypistats: `last_month` of `/recent` (mirrors excluded), and the daily series
DOWNLOAD_FACTS: dict[str, pl.DataType] = {"subject": pl.String(), "last_month": pl.Int64()}
DAILY_DOWNLOAD_FACTS: dict[str, pl.DataType] = {"subject": pl.String(), "day": pl.Date(), "downloads": pl.Int64()}
MALFORMED_FACTS: dict[str, pl.DataType] = {"request_key": pl.String(), "reason": pl.String()}


@dataclass
class Facts:
    """Per-subject facts parsed from the newest good bodies (the parse stage's output)."""

    repos: pl.DataFrame
    commits: pl.DataFrame
    weeks: pl.DataFrame
    participants: pl.DataFrame
    pypi: pl.DataFrame
    releases: pl.DataFrame
    malformed: pl.DataFrame  # request_key, reason
    requests: pl.DataFrame = field(default_factory=pl.DataFrame)  # responses without bodies
    simple: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SIMPLE_FACTS))
    downloads: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DOWNLOAD_FACTS))
    daily_downloads: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DAILY_DOWNLOAD_FACTS))

    TABLES = ("repos", "commits", "weeks", "participants", "pypi", "releases", "malformed", "requests", "simple",
              "downloads", "daily_downloads")


@dataclass
class SourceFacts:
    """What one source's `read` returns: the facts its bodies hold, in the schemas above (a source
    leaves empty the kinds it has none of). The parse stage merges every source's into one `Facts`;
    when several repository rows describe one subject, the newest good fetch wins and, on a tie, the
    later row (so a source lists its richer description last)."""

    repos: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=REPO_FACTS))
    commits: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=COMMIT_FACTS))
    weeks: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=WEEK_FACTS))
    participants: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=PARTICIPANT_FACTS))
    pypi: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=PYPI_FACTS))
    releases: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=RELEASE_FACTS))
    simple: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=SIMPLE_FACTS))
    downloads: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=DOWNLOAD_FACTS))
    daily_downloads: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=DAILY_DOWNLOAD_FACTS))
    malformed: pl.DataFrame = field(default_factory=partial(pl.DataFrame, schema=MALFORMED_FACTS))
