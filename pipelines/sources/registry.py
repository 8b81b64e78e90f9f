"""The one list of upstream sources. Adding a host is one module under `pipelines/sources/`, one
simulator module, and one line here (docs/ADDING_A_SOURCE.md)."""

from __future__ import annotations

from pipelines.sources import bitbucket, codeberg, github, gitlab, pypi
from pipelines.sources.base import Source


# TEMPORARY (branch core): the reading halves alone, until the crawl halves' `SOURCE`s replace these
class _GitHub(github.GitHubReading, Source):
    name = "github"


class _PyPI(pypi.PyPIReading, Source):
    name = "pypi"


class _GitLab(gitlab.GitLabReading, Source):
    name = "gitlab"


class _Bitbucket(bitbucket.BitbucketReading, Source):
    name = "bitbucket"


class _Codeberg(codeberg.CodebergReading, Source):
    name = "codeberg"


SOURCES: tuple[Source, ...] = (_GitHub(), _PyPI(), _GitLab(), _Bitbucket(), _Codeberg())
