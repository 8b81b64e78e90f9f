"""The clients one crawl talks to: every registered source's, over shared connection pools.

Each source builds its own client (`Source.connect`) from `Upstream`s that `Wiring` hands out; once
all have asked, the pools are made, one `httpx.AsyncClient` per network location, sized to the sum
of the concurrency caps of the upstreams on it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from pipelines.settings import Settings
from pipelines.sources.crawling import SourceStats, Wiring
from pipelines.sources.http.hosts import netloc
from pipelines.sources.http.transport import make_clients
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import SOURCES


@dataclass
class Upstreams:
    by_source: dict[str, Any]  # source name -> the client its `connect` built
    clients: dict[str, httpx.AsyncClient]  # by network location; closed by `aclose`

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
        wiring = Wiring(settings.allowed_hosts(), tuning, deadline, log)
        by_source = {source.name: source.connect(settings.url(source.name), settings, wiring) for source in SOURCES}
        concurrency: Counter[str] = Counter()
        for up in wiring.upstreams:
            concurrency[netloc(up.base_url)] += up.semaphore.max_limit
        paced = [up.paced for up in wiring.upstreams if up.paced is not None]
        clients = make_clients([up.base_url for up in wiring.upstreams], concurrency, tuning, transport=transport,
                               paced=paced)
        for up in wiring.upstreams:
            up.client = clients[netloc(up.base_url)]
        return cls(by_source, clients)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    def stats(self) -> dict[str, SourceStats]:
        return {source.name: source.stats(self.by_source[source.name]) for source in SOURCES}
