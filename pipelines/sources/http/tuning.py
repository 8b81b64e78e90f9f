"""The crawl's knobs in one frozen value, so a test or benchmark can change a wait without patching."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tuning:
    """Knobs of the crawl. Defaults suit the real upstreams; tests shrink the waits."""

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_attempts: int = 4  # transient failures (5xx, timeouts, resets, malformed JSON)
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    computing_attempts: int = 4  # 202 "stats being computed": polls in total
    computing_base_s: float = 2.0
    computing_max_s: float = 15.0
    secondary_base_s: float = 60.0  # secondary limit without retry-after: 60 s, 120 s, ...
    secondary_max_hits: int = 5
    concurrency_regrow_after: int = 50  # answers without a limit before a halved cap grows back by one
    quota_max_waits: int = 3  # primary quota exhausted: waits for reset per request
    max_redirects: int = 3
    max_pages: int = 50  # contributors / commits pages per request key
    # requests in flight per source name, overriding the source's own `Source.concurrency`
    concurrency: Mapping[str, int] = field(default_factory=dict, hash=False)
    # GitHub's secondary limits, points per pace window per account, shared by every crawl process
    # (`pipelines.sources.http.pace`; None: the pace off, for tests and benchmarks). The settings
    # PULSE_GITHUB_PACE_PER_MINUTE and PULSE_GITHUB_PACE_WINDOW_S override the REST figure and the window.
    github_rest_per_minute: int | None = 900
    github_graphql_per_minute: int | None = 2000
    github_pace_window_s: float = 60.0
    # repositories per GraphQL query. GitHub's cost: the connections a query asks for (here one per
    # repository: `repositoryTopics(first: 20)`; `totalCount`-only connections are not counted) / 100, rounded, at
    # least 1 point, and at most 500,000 nodes per query. 100 repositories = 100 connections, 2,000
    # topic nodes: 1 point, the same as 50, so twice the repositories per point, with answers of
    # ~90 KB (see `pipelines.sources.github`).
    graphql_batch: int = 100
    graphql_concurrency: int = 4
    jobs_in_flight: int = 512
    flush_interval_s: float = 2.0
    fetch_simple: bool = True  # PyPI Simple JSON (project-status)
    aiohttp_transport: bool = True  # httpx client API over aiohttp's faster pool (see AiohttpTransport)
    # skip stats/participation for repositories with no push in 52 weeks + margin: the answer is
    # known (all zeros) and archived as a derived row (`attempts` 0, header `x-pulse-derived`)
    derive_idle_participation: bool = True
    idle_margin_days: float = 56.0
