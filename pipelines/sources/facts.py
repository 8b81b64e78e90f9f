"""Facts: what the parse stage hands to the assemble stage, one typed frame per kind of fact.

Parsing knows about upstream bodies and nothing about packages; assembling knows about packages and
nothing about bodies. These schemas are the whole contract between them, keyed by `subject` (a repo
key or "pypi:<name>"), so a new host only has to produce these frames. Timestamps stay ISO text
here: hosts write them differently, and one parser (`assemble.parse_timestamp`) normalises them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from assets.core.columns import UTC_US

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

    TABLES = ("repos", "commits", "weeks", "participants", "pypi", "releases", "malformed", "requests", "simple")
