"""Helpers for crawling the simulator: a catalogue.packages-like frame built from its world."""

from __future__ import annotations

import polars as pl
from packaging.utils import canonicalize_name
from pydantic import SecretStr

from pipelines.settings import Settings
from pipelines.sources.registry import SOURCES

PACKAGE_SCHEMA = {"id": pl.Int64, "slug": pl.String, "repo_host": pl.String, "repo_owner": pl.String,
                  "repo_name": pl.String, "repo_key": pl.String, "pypi_name": pl.String,
                  "repo_url_problem": pl.String}


def world_packages(world, ids=None) -> pl.DataFrame:
    """What the catalogue would produce for the world's packages (repo URL noise already parsed)."""
    rows = []
    for pid in ids or world.ids():
        p = world.package(pid)
        host = p.host if p.host in ("github", "gitlab", "bitbucket", "codeberg") else None
        problem = None
        if host is None and p.host != "none":
            problem = "not a supported repository host"
        owner, name = (p.url_owner, p.url_name) if host else (None, None)
        rows.append({
            "id": p.id, "slug": p.slug, "repo_host": host, "repo_owner": owner, "repo_name": name,
            "repo_key": f"{host}:{owner}/{name}".lower() if host else None,
            "pypi_name": canonicalize_name(p.pypi_name) if p.pypi_name else None,
            "repo_url_problem": problem,
        })
    return pl.DataFrame(rows, schema=PACKAGE_SCHEMA)


def sim_settings(server, home, tokens: tuple[str, ...] = ()) -> Settings:
    env = server.env()
    return Settings(
        home=home,
        catalogue=env["PULSE_CATALOGUE"],
        public_url="http://localhost:8000",
        timezone="UTC",
        source_urls={source.name: env[source.env_url] for source in SOURCES},
        github_graphql_url=env["GITHUB_GRAPHQL_URL"],
        github_tokens=tuple(SecretStr(t) for t in tokens),
    )


def short_quota_windows(monkeypatch, seconds: int) -> None:
    """Make the simulator's GitHub quota windows reset `seconds` after they start (instead of an hour).

    Patches the simulator's window class in this process (simulators started with `start_in_thread`
    or `make_simulator` here, including one a `pulse` subprocess talks to), so a test can watch
    the crawler wait for a reset and carry on without waiting an hour.
    """
    import simulator.core as core

    class ShortWindow(core.RateWindow):
        __slots__ = ()

        def __init__(self, limit: int, now: float) -> None:
            super().__init__(limit, now)
            self.reset = int(now) + seconds

    monkeypatch.setattr(core, "RateWindow", ShortWindow)


class InFlight:
    """Counts the simulator's GitHub requests being answered at once (REST and GraphQL), and the peak."""

    def __init__(self, server) -> None:
        self.now = self.peak = 0
        self.peak_by_route: dict[str, int] = {}
        self._by_route: dict[str, int] = {}
        sim = server.sim
        answer = sim._github

        async def counted(request, route, *args, **kwargs):
            kind = "graphql" if route == "github.graphql" else "rest"
            self.now += 1
            self._by_route[kind] = self._by_route.get(kind, 0) + 1
            self.peak = max(self.peak, self.now)
            self.peak_by_route[kind] = max(self.peak_by_route.get(kind, 0), self._by_route[kind])
            try:
                return await answer(request, route, *args, **kwargs)
            finally:
                self.now -= 1
                self._by_route[kind] -= 1

        sim._github = counted  # the simulator's own loop runs it: no lock needed
