"""The crawler as a Dagster resource: typed configuration in, one crawl of the raw archive out.

Its fields are the crawl's whole configuration (`pipelines.definitions` fills them with `dg.EnvVar`s,
so secrets stay out of the UI and values are read when a run launches); `crawl()` builds the
`Settings` from them. Tests inject a fake with the same `crawl` signature (`tests/fakes.py`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import dagster as dg
import polars as pl
from pydantic import Field, SecretStr

from pipelines.crawler.crawl import CrawlReport, run_crawl
from pipelines.settings import Settings
from pipelines.sources.http.tuning import Tuning

Progress = Callable[[str, int, int], None]


class CrawlConfig(dg.Config):
    """Run configuration of the crawl step (`pulse refresh --force/--max-age-hours/--time-budget/--processes`)."""

    force: bool = Field(default=False, description="Crawl every package, fresh or not.")
    max_age_hours: float = Field(default=20.0, description="Re-crawl data older than this.")
    time_budget_s: float | None = Field(default=None, description="Checkpoint and stop after this many seconds.")
    package_ids: list[int] | None = Field(
        default=None, description="Crawl only these catalogue package ids (the catalogue sensor's new or changed "
                                  "packages); None: every package.")
    processes: int = Field(
        default=1, ge=1, le=64,
        description="Slices the run's partitions are split into, one step each: under the multiprocess "
        "executor they crawl in parallel processes (GitHub tokens split between them when there are enough).")

    def select(self, packages: pl.DataFrame) -> pl.DataFrame:
        """The catalogue rows this run crawls: those of `package_ids`, or all of them."""
        if self.package_ids is None:
            return packages
        return packages.filter(pl.col("id").is_in(self.package_ids))


def token_share(tokens: tuple[SecretStr, ...], index: int, count: int) -> tuple[SecretStr, ...]:
    """The tokens of slice `index` of `count`: token i goes to slice i mod count when every slice gets
    one; with fewer tokens than slices every slice keeps them all (their pace is then shared through
    the quota's cross-process accounting, not multiplied by the slices)."""
    if count <= 1 or len(tokens) < count:
        return tokens
    return tuple(token for i, token in enumerate(tokens) if i % count == index)


class CrawlerResource(dg.ConfigurableResource):
    """Fetches what is due for a set of catalogue packages into the raw archive under `home`.

    None: the default of the matching environment variable (DESIGN.md, Configuration).
    """

    home: str | None = None  # PULSE_HOME (the archive is PULSE_HOME/raw)
    catalogue: str | None = None  # PULSE_CATALOGUE (its host is allowed too)
    public_url: str | None = None  # PULSE_PUBLIC_URL
    timezone: str | None = None  # PULSE_TIMEZONE
    github_tokens: str | None = Field(default=None, description="GITHUB_TOKEN: comma-separated tokens (secret).")
    github_graphql_url: str | None = None  # GITHUB_GRAPHQL_URL; None: derived from GitHub's base URL
    api_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Base URL per source, keyed by the variable its module declares (Source.env_url, "
        "e.g. PYPI_URL); a source left out uses that variable's default.",
    )
    jobs_in_flight: int | None = Field(default=None, description="Crawl jobs running at once (None: the default).")
    github_pace_per_minute: str | None = None  # PULSE_GITHUB_PACE_PER_MINUTE (pipelines/sources/http/pace.py)
    github_pace_window_s: str | None = None  # PULSE_GITHUB_PACE_WINDOW_S
    raw_url: str | None = None  # PULSE_RAW_URL: the raw archive on object storage (warehouse/raw_store.py)

    def settings(self) -> Settings:
        return Settings.from_mapping({
            **self.api_urls,
            "PULSE_HOME": self.home,
            "PULSE_CATALOGUE": self.catalogue,
            "PULSE_PUBLIC_URL": self.public_url,
            "PULSE_TIMEZONE": self.timezone,
            "GITHUB_TOKEN": self.github_tokens,
            "GITHUB_GRAPHQL_URL": self.github_graphql_url,
            "PULSE_GITHUB_PACE_PER_MINUTE": self.github_pace_per_minute,
            "PULSE_GITHUB_PACE_WINDOW_S": self.github_pace_window_s,
            "PULSE_RAW_URL": self.raw_url,
        })

    def crawl(self, packages: pl.DataFrame, config: CrawlConfig, run_id: str, log: logging.Logger | None = None,
              progress: Progress | None = None, partitions: list[str] | None = None,
              slice_of: tuple[int, int] = (0, 1)) -> CrawlReport:
        """Crawl every due request of `packages` (catalogue.packages columns) into the raw archive.

        `partitions`: only these crawl partition keys (None: all); `slice_of` (index, count): which
        slice of a run split over processes this is, for its share of the GitHub tokens. Only the
        packages of `config.package_ids` when it is set.
        """
        packages = config.select(packages)
        tuning = Tuning()
        if self.jobs_in_flight is not None:
            tuning = dataclasses.replace(tuning, jobs_in_flight=self.jobs_in_flight)
        settings = self.settings()
        shared = token_share(settings.github_tokens, *slice_of)
        if shared != settings.github_tokens:
            settings = settings.model_copy(update={"github_tokens": shared})
        return run_crawl(settings, packages, run_id=run_id, force=config.force,
                         max_age_hours=config.max_age_hours, time_budget_s=config.time_budget_s,
                         progress=progress, log=log, tuning=tuning, partitions=partitions)
