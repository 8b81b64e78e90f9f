"""The one list of upstream sources. Adding a host is one module under `pipelines/sources/`, one
simulator module, and one line here (docs/ADDING_A_SOURCE.md).

The order is the order of the raw assets, of the crawl's per-source figures and of the catalogue's
host table; archive folders are named by `Source.name`, so a name never changes once data exists.
"""

from __future__ import annotations

from pipelines.sources import bitbucket, codeberg, github, gitlab, pypi, pypistats
from pipelines.sources.base import Source

SOURCES: tuple[Source, ...] = (
    github.SOURCE,
    pypi.SOURCE,
    gitlab.SOURCE,
    bitbucket.SOURCE,
    codeberg.SOURCE,
    pypistats.SOURCE,
)

BY_NAME: dict[str, Source] = {source.name: source for source in SOURCES}


def request_key(source: str, endpoint: str, ident: str) -> str:
    """The archive's request key of one source's endpoint for one subject (ARCHITECTURE.md, "Raw archive")."""
    return BY_NAME[source].request_key(endpoint, ident)
