"""What the crawl engine (`pipelines.crawler`) and a source's crawl half say to each other.

The engine plans one `Job` per subject (a repository or a PyPI project) with the endpoints that are
due, wires each source's HTTP clients (`Wiring`), hands it its jobs, and gives it a `Run` to archive
every answer in. These types live with the sources because a source uses them and must not import
the engine above it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.quota import TokenPool
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class KeyState:
    """What the archive holds for one request key."""

    etag: str | None
    last_ok: datetime | None  # newest good fetch, 304, or 409 (empty repository: commits = [])
    # newest definite answer, good or not (a 404/410 too; not a 5xx, a 429 or a timeout): what a
    # source's `min_age_hours` counts from, so a project without statistics is not re-asked each run
    last_answer: datetime | None = None
    failing: bool = False  # the newest attempt failed


@dataclass
class Job:
    """One subject's due requests: `due` maps each due endpoint to its stored state (None = never seen)."""

    source: str
    subject: str  # the package-side key: the catalogue repo_key, or `<source>:<name>` for packages
    ident: str  # what the source asks by: owner/name, a nested path, a package name (as the catalogue spells it)
    due: dict[str, KeyState | None]
    keys: dict[str, str]  # endpoint -> request key (every due endpoint)
    order: tuple[int, datetime] = (0, EPOCH)
    # what stored answers told about the subject (`Source.remember`): a canonical name after a
    # rename, the default branch, the last push, a project id, where a redirect led ...
    facts: dict[str, Any] = field(default_factory=dict)

    def key(self, endpoint: str) -> str:
        return self.keys[endpoint]

    def etag(self, endpoint: str) -> str | None:
        state = self.due.get(endpoint)
        return state.etag if state else None


class Run(Protocol):
    """The crawl a source's `crawl(unit, client, run)` reports to."""

    tuning: Tuning
    window_since: datetime  # start of the 52-week window (commit pages reach back to it)

    def archive(self, job: Job, endpoint: str, fetched: Fetched) -> None:
        """Append one answer (good or failed) to the raw archive and the report."""

    def bad_entry(self, job: Job, why: str) -> None:
        """Archive every due key of a job that cannot be asked for, with the reason."""

    def stopped(self, source: str) -> bool:
        """The source (or the whole crawl) stopped at the time budget: take no new work."""

    def endpoint_open(self, source: str, endpoint: str) -> bool:
        """The endpoint's circuit is open (`pipelines.sources.http.health`): do not call it."""


async def fetch_into(run: Run, job: Job, endpoint: str, call: Awaitable[Fetched]) -> None:
    """Await one request and archive its answer."""
    run.archive(job, endpoint, await call)


@dataclass
class Wiring:
    """Builds a source's `Upstream`s; the connection pools are sized once every source has asked.

    Concurrency caps are per upstream, but connection pools are per host (several upstreams may
    share one), so each pool is the sum of the caps of the upstreams on its host.
    """

    allowed: frozenset[str]
    tuning: Tuning
    deadline: float | None
    log: logging.Logger
    upstreams: list[Upstream] = field(default_factory=list)

    def upstream(self, name: str, url: str, concurrency: int, **kw: Any) -> Upstream:
        up = Upstream(name, url, None, allowed=self.allowed, tuning=self.tuning, concurrency=concurrency,
                      log=self.log, deadline=self.deadline, **kw)  # the client comes with the pools
        self.upstreams.append(up)
        return up

    def token_pool(self, tokens: Any) -> TokenPool:
        return TokenPool(tokens, deadline=self.deadline, log=self.log)


@dataclass
class SourceStats:
    """What one source's crawl cost: requests, answers by status, quota, waits."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    quota_spent: float = 0.0  # requests that cost quota plus query points, as the upstream counts them
    quota_wait_s: float = 0.0  # seconds spent waiting for quota resets
    pace_wait_s: float = 0.0  # seconds requests waited for the secondary-limit pace (summed over requests)
    slot_wait_s: float = 0.0  # seconds requests waited for a machine-wide slot in flight (summed over requests)
    backoffs: list[float] = field(default_factory=list)  # secondary-limit back-offs (s), in order

    @classmethod
    def of(cls, *upstreams: Upstream | None) -> SourceStats:
        stats = cls()
        for up in upstreams:
            if up is not None:
                stats.requests += up.stats.requests
                stats.statuses.update(up.stats.statuses)
                stats.quota_spent += up.stats.quota_spent
                stats.backoffs.extend(up.backoffs)
        return stats
