"""The upstream clients one crawl talks to, each capped at what its service tolerates.

Concurrency caps are per upstream, but connection pools are per host (GitHub REST and GraphQL may
share one), so the pools are sized to the sum of the caps on each host. GitHub counts REST and
GraphQL requests in flight together, so REST gets what GraphQL leaves of GitHub's limit.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from pipelines.settings import Settings, netloc
from pipelines.sources.bitbucket import Bitbucket
from pipelines.sources.codeberg import Codeberg
from pipelines.sources.github import GitHub
from pipelines.sources.gitlab import GitLab
from pipelines.sources.http.upstream import TokenPool, Tuning, Upstream, make_clients
from pipelines.sources.pypi import PyPI

GITHUB_MAX_CONCURRENCY = 100  # requests in flight GitHub tolerates before a secondary limit


@dataclass
class Upstreams:
    github: GitHub
    pypi: PyPI
    gitlab: GitLab
    bitbucket: Bitbucket
    codeberg: Codeberg
    clients: dict[str, httpx.AsyncClient]  # by network location; closed by `aclose`
    pool: TokenPool  # GitHub's tokens (or anonymous access) and their quota

    @classmethod
    def connect(
        cls,
        settings: Settings,
        tuning: Tuning,
        *,
        deadline: float | None,
        log: logging.Logger,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Upstreams:
        """Clients for every configured API; GraphQL only with a token (GitHub requires one)."""
        allowed = settings.allowed_hosts()
        tokens = settings.github_tokens
        concurrency: Counter[str] = Counter()
        for url, size in ((settings.github_api_url, min(tuning.github_concurrency, GITHUB_MAX_CONCURRENCY)),
                          (settings.github_graphql_url, tuning.graphql_concurrency if tokens else 0),
                          (settings.pypi_url, tuning.pypi_concurrency),
                          (settings.gitlab_api_url, tuning.gitlab_concurrency),
                          (settings.bitbucket_api_url, tuning.bitbucket_concurrency),
                          (settings.codeberg_api_url, tuning.codeberg_concurrency)):
            concurrency[netloc(url)] += size
        urls = [settings.github_api_url, settings.github_graphql_url, settings.pypi_url,
                settings.gitlab_api_url, settings.bitbucket_api_url, settings.codeberg_api_url]
        clients = make_clients(urls, concurrency, tuning, transport=transport)
        pool = TokenPool(tokens, deadline=deadline, log=log, per_minute=tuning.github_rest_per_minute)

        def upstream(name: str, url: str, size: int, **kw: Any) -> Upstream:
            return Upstream(name, url, clients[netloc(url)], allowed=allowed, tuning=tuning,
                            concurrency=size, log=log, deadline=deadline, **kw)

        # REST + GraphQL in flight together never exceed GitHub's 100, whatever the tuning says
        graphql_size = max(1, min(tuning.graphql_concurrency, GITHUB_MAX_CONCURRENCY // 2)) if tokens else 0
        gh_rest = upstream("github", settings.github_api_url,
                           max(1, min(tuning.github_concurrency, GITHUB_MAX_CONCURRENCY - graphql_size)),
                           pool=pool, resource="core")
        gh_graphql = (upstream("github-graphql", settings.github_graphql_url, graphql_size,
                               pool=pool, resource="graphql") if tokens else None)
        return cls(
            github=GitHub(gh_rest, gh_graphql, computing_attempts=tuning.computing_attempts,
                          computing_base_s=tuning.computing_base_s, computing_max_s=tuning.computing_max_s,
                          max_pages=tuning.max_pages),
            pypi=PyPI(upstream("pypi", settings.pypi_url, tuning.pypi_concurrency)),
            gitlab=GitLab(upstream("gitlab", settings.gitlab_api_url, tuning.gitlab_concurrency),
                          max_pages=tuning.max_pages),
            bitbucket=Bitbucket(upstream("bitbucket", settings.bitbucket_api_url, tuning.bitbucket_concurrency),
                                max_pages=tuning.max_pages),
            codeberg=Codeberg(upstream("codeberg", settings.codeberg_api_url, tuning.codeberg_concurrency),
                              max_pages=tuning.max_pages),
            clients=clients,
            pool=pool,
        )

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    def requests_by_source(self) -> dict[str, int]:
        graphql = self.github.graphql
        return {
            "github": self.github.rest.stats.requests + (graphql.stats.requests if graphql else 0),
            "pypi": self.pypi.upstream.stats.requests,
            "gitlab": self.gitlab.upstream.stats.requests,
            "bitbucket": self.bitbucket.upstream.stats.requests,
            "codeberg": self.codeberg.upstream.stats.requests,
        }

    def responses_by_status(self) -> dict[int, int]:
        statuses: Counter[int] = Counter()
        for up in (self.github.rest, self.github.graphql, self.pypi.upstream, self.gitlab.upstream,
                   self.bitbucket.upstream, self.codeberg.upstream):
            if up is not None:
                statuses.update(up.stats.statuses)
        return dict(sorted(statuses.items()))

    def github_backoffs(self) -> list[float]:
        """Seconds of every secondary-limit back-off of GitHub REST and GraphQL, in order."""
        graphql = self.github.graphql
        return list(self.github.rest.backoffs) + (list(graphql.backoffs) if graphql else [])

    def github_quota_spent(self) -> float:
        """REST requests that cost quota plus GraphQL points, as GitHub would count them."""
        return self.github.rest.stats.quota_spent + self.github.graphql_cost
