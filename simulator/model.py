"""The world's records (package, commit, release), the time and id helpers they are rendered with, and
what a repository host's simulator module declares (:class:`RepoHost`), and what a package-named
upstream's declares (:class:`PackageHost`).

Pure data: this module imports nothing from the simulator, so every other module may import it (the
world generator, the server state in :mod:`simulator.core`, the host modules and their registry
:mod:`simulator.hosts`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def sha1(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def gh_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Commit:
    sha: str
    date: datetime  # committer date (what the default branch is ordered by, and `last_updated`)
    author: str | None  # GitHub login (None: no linked account)
    author_name: str
    message: str
    authored: datetime  # author date: earlier than ``date`` for rebased / cherry-picked / merged commits
    committer: str | None = None  # committer login when it differs from the author (None: GitHub web-flow)


@dataclass(slots=True)
class Release:
    version: str
    upload_time: datetime
    yanked: bool
    prerelease: bool
    requires_python: str | None
    files: int


@dataclass(slots=True)
class Package:
    id: int
    slug: str
    title: str
    category_id: int
    created: datetime
    modified: datetime
    last_fetched: datetime
    host: str  # github | a registry host (simulator.hosts) | dead | malformed | none
    repo_url: str  # catalogue value, as given (noise included)
    owner: str  # current owner/namespace/workspace on the host
    name: str  # current repo name / slug
    url_owner: str  # what the catalogue URL points at (differs when renamed)
    url_name: str
    repo_id: int
    status: str  # ok | renamed | deleted | blocked_dmca | blocked_tos | empty (github only)
    archived: bool
    fork: bool
    stars: int
    forks: int
    subscribers: int
    open_issues: int
    description: str | None
    homepage: str
    license: tuple[str, str, str] | None
    topics: tuple[str, ...]
    default_branch: str
    repo_created: datetime
    n_contributors: int
    bots: tuple[str, ...]
    n_anonymous: int
    contributors_too_large: bool
    stats_202: int
    pypi_name: str | None  # display name on PyPI (None: no pypi_url)
    pypi_url: str
    pypi_status: str  # ok | missing | none | quarantined
    simple_status: str  # active | archived | quarantined
    yanked_latest: bool
    prerelease_only: bool
    inactive_classifier: bool
    project_urls_null: bool
    docs_in_project_urls: bool
    docs_url: str | None
    catalogue_documentation_url: str | None
    vulnerable: bool
    activity: str  # active | inactive
    last_commit_days: float
    has_gh_release: bool
    traits: frozenset[str] = field(default_factory=frozenset)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def _as_listed(_rng: random.Random, owner: str, name: str) -> tuple[str, str]:
    return owner, name


@dataclass(frozen=True)
class RepoHost:
    """A repository host besides GitHub, as its simulator module declares it, for the world and the server.

    The world generator draws a package's host from the registry's hosts in their order, each taking
    ``share`` of the catalogue; its repository is at ``https://{domain}/{owner}/{name}`` with the owner
    and name ``place`` gives. The server sends paths under ``prefix`` to ``route``.
    """

    name: str  # Package.host, its trait, its fault host name and the first part of its route names
    share: float  # share of the catalogue's packages whose repository is there
    domain: str
    prefix: str  # API path prefix on the simulator's port
    env: tuple[tuple[str, str], ...]  # (variable, path after the simulator's URL) pointing a crawl at it
    # (state: simulator.core.SimState, method, path, query, base) -> (route name, producer of the answer);
    # the state is typed Any here, since SimState holds a World, which is generated from RepoHosts
    route: Callable[[Any, str, str, str, str], tuple[str, Callable[[], Any]]]
    v4_stars: bool  # the v4 record's repo_watchers are the repository's stars (else 0)
    v4_forks: bool  # the v4 record's repo_forks are the repository's forks (else 0)
    # the crawl benchmark's sequential baseline for one catalogue row of this host: (client, row), the
    # client a simulator.sequential.Sequential (its `client`, `url`, `pages`); typed Any, as the state above
    baseline: Callable[[Any, dict], None]
    # where the host's trait sits in the world's forced traits (the order picks which package gets it):
    # right after this trait of the generator's own list (never a host: hosts placed after the same
    # trait follow it in the registry's order); None: at the end, for a host added later, so existing
    # worlds do not change
    forced_after: str | None = None
    # owner and name as the host spells them, from the catalogue's (draws from the package's RNG)
    place: Callable[[random.Random, str, str], tuple[str, str]] = _as_listed


@dataclass(frozen=True)
class PackageHost:
    """An upstream named by a package's PyPI name rather than by a repository (pypistats), as its
    simulator module declares it. It answers from the world as it is (it adds nothing to it), so the
    registry's order is not part of any world. The server sends paths under ``prefix`` to ``route``."""

    name: str  # the crawler's source name, its fault host name and the first part of its route names
    prefix: str  # API path prefix on the simulator's port
    env: tuple[tuple[str, str], ...]  # (variable, path after the simulator's URL) pointing a crawl at it
    # (state, method, path, query, base) -> (route name, producer of the answer), as RepoHost.route
    route: Callable[[Any, str, str, str, str], tuple[str, Callable[[], Any]]]
    # the crawl benchmark's sequential baseline for one project name: (client, name), the client a
    # simulator.sequential.Sequential
    baseline: Callable[[Any, str], None]
