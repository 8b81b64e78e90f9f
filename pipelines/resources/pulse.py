"""Where Package Pulse lives and what it publishes: PULSE_HOME, the catalogue source, the public URL."""

from __future__ import annotations

import dagster as dg

from pipelines.settings import Settings


class PulseResource(dg.ConfigurableResource):
    """The settings the catalogue, core and export assets need, from typed fields (never the process
    environment: `pipelines.definitions` passes `dg.EnvVar`s, tests pass values). None: the default
    of the matching environment variable (DESIGN.md, Configuration)."""

    home: str | None = None  # PULSE_HOME
    catalogue: str | None = None  # PULSE_CATALOGUE: a djangopackages base URL or a file
    public_url: str | None = None  # PULSE_PUBLIC_URL
    timezone: str | None = None  # PULSE_TIMEZONE
    health_config: str | None = None  # PULSE_HEALTH_CONFIG: a health.toml to score with (None: the shipped one)
    catalogue_max_shrink: str | None = None  # PULSE_CATALOGUE_MAX_SHRINK (a fraction; kept as text like the env)
    releases_keep: str | None = None  # PULSE_RELEASES_KEEP (dataset releases kept; text like the env)
    raw_url: str | None = None  # PULSE_RAW_URL: the raw archive on object storage (warehouse/raw_store.py)

    def settings(self) -> Settings:
        return Settings.from_mapping({
            "PULSE_HOME": self.home,
            "PULSE_CATALOGUE": self.catalogue,
            "PULSE_PUBLIC_URL": self.public_url,
            "PULSE_TIMEZONE": self.timezone,
            "PULSE_CATALOGUE_MAX_SHRINK": self.catalogue_max_shrink,
            "PULSE_RELEASES_KEEP": self.releases_keep,
            "PULSE_RAW_URL": self.raw_url,
        })
