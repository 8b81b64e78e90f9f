"""Configuration from the environment, shared by the `pulse` CLI and the Dagster code location.

Everything is read from environment variables (DESIGN.md, "Configuration") so that the CLI, the
Dagster UI and CI configure the pipeline the same way. Tokens are kept as `SecretStr` so that a
stray `repr()` or log line cannot leak them. Each source's base URL comes from the variable its
module declares (`Source.env_url`, e.g. CODEBERG_API_URL), through the registry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from pipelines.sources.http.hosts import netloc
from pipelines.sources.registry import SOURCES
from warehouse.db import WarehouseTarget, WarehouseUrlError, parse_warehouse_url

CATALOGUE_MAX_SHRINK = 0.10  # default of PULSE_CATALOGUE_MAX_SHRINK (assets/catalogue/guard.py)
FRESHNESS_HOURS = 26.0  # default of PULSE_FRESHNESS_HOURS: the published snapshot is stale after this
RELEASES_KEEP = 7  # default of PULSE_RELEASES_KEEP: dataset releases kept (assets/exports/releases.py)


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the variable."""


def _value(env: Mapping[str, str | None], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _fraction(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        fraction = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number (a fraction such as 0.1)") from None
    if not 0.0 <= fraction <= 1.0:
        raise SettingsError(f"{name}={value!r} is not a fraction within 0..1 (0.1 means 10%)")
    return fraction


def _number(name: str, value: str | None, kind: type[int] | type[float]) -> int | float | None:
    """A non-negative number setting (None when unset)."""
    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a {'whole ' if kind is int else ''}number") from None
    if number < 0:
        raise SettingsError(f"{name}={value!r} must not be negative")
    return number


def _count(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        count = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number") from None
    if count < 1:
        raise SettingsError(f"{name}={value!r} must be at least 1")
    return count


def _check_url(name: str, value: str, *, secret: bool = False) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = "(hidden: it may hold a secret)" if secret else repr(value)
        raise SettingsError(f"{name}={shown} is not an http(s) URL")
    return value.rstrip("/")


def _hours(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        hours = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number of hours (such as 26)") from None
    if not hours > 0:
        raise SettingsError(f"{name}={value!r} must be a positive number of hours")
    return hours


def freshness_hours(env: Mapping[str, str | None]) -> float:
    """PULSE_FRESHNESS_HOURS alone (the code location reads it at load, without the other settings)."""
    return _hours("PULSE_FRESHNESS_HOURS", _value(env, "PULSE_FRESHNESS_HOURS"), FRESHNESS_HOURS)


def schedule_on(env: Mapping[str, str | None]) -> bool:
    """PULSE_SCHEDULE alone: on/off (unset: off)."""
    return _switch("PULSE_SCHEDULE", _value(env, "PULSE_SCHEDULE"))


# --- shards/concurrency ---
# Both are properties of the machine and of the code location, not of one run: read from the process
# environment (PULSE_CRAWL_SHARDS alone when the code location loads, like PULSE_FRESHNESS_HOURS;
# PULSE_GITHUB_MAX_IN_FLIGHT by `Settings` unless its mapping names it), so every Dagster process
# (daemon, webserver, run and step workers) agrees on them. docs/SCALING.md, "Shards and concurrency".
CRAWL_SHARDS = 4  # default of PULSE_CRAWL_SHARDS: hash shards of each big source (github, pypi, pypistats)
MAX_CRAWL_SHARDS = 64
GITHUB_MAX_IN_FLIGHT = 100  # default of PULSE_GITHUB_MAX_IN_FLIGHT: GitHub's documented concurrent-request cap


def _bounded(name: str, value: str | None, default: int, low: int, high: int, what: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number ({what})") from None
    if not low <= number <= high and not (name == "PULSE_GITHUB_MAX_IN_FLIGHT" and number == 0):
        raise SettingsError(f"{name}={value!r} is out of range: {what}")
    return number


def crawl_shards(env: Mapping[str, str | None]) -> int:
    """PULSE_CRAWL_SHARDS alone (the code location reads it at load: it names the crawl's partitions)."""
    return _bounded("PULSE_CRAWL_SHARDS", _value(env, "PULSE_CRAWL_SHARDS"), CRAWL_SHARDS, 1, MAX_CRAWL_SHARDS,
                    f"shards per big source, 1..{MAX_CRAWL_SHARDS}; default {CRAWL_SHARDS}")


def github_max_in_flight(env: Mapping[str, str | None]) -> int:
    """PULSE_GITHUB_MAX_IN_FLIGHT alone: GitHub requests in flight per account shared by every crawl
    process of the machine (0: no machine-wide cap, only each process's own)."""
    return _bounded("PULSE_GITHUB_MAX_IN_FLIGHT", _value(env, "PULSE_GITHUB_MAX_IN_FLIGHT"), GITHUB_MAX_IN_FLIGHT,
                    2, 10_000, f"GitHub requests in flight per account on this machine, 2..10000, or 0 for "
                    f"no machine-wide cap; default {GITHUB_MAX_IN_FLIGHT}, GitHub's documented limit")
# --- end shards/concurrency ---


def _switch(name: str, value: str | None) -> bool:
    """on/off (also true/false, 1/0, yes/no); unset: off."""
    if value is None:
        return False
    text = value.lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name}={value!r} is neither on nor off")


# --- warehouseurl ---
def warehouse_target(env: Mapping[str, str | None], home: Path) -> WarehouseTarget:
    """PULSE_WAREHOUSE_URL and PULSE_WAREHOUSE_DATA_PATH (warehouse.db.parse_warehouse_url), as a SettingsError."""
    try:
        return parse_warehouse_url(_value(env, "PULSE_WAREHOUSE_URL"), _value(env, "PULSE_WAREHOUSE_DATA_PATH"), home)
    except WarehouseUrlError as exc:
        raise SettingsError(str(exc)) from None


# --- raw archive on object storage ---
def _raw_url(value: str | None) -> str | None:
    """PULSE_RAW_URL checked (warehouse.raw_store.check_url); None when unset."""
    if value is None:
        return None
    from warehouse.raw_store import check_url

    try:
        return check_url(value)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def check_public_url(value: str, name: str = "PULSE_PUBLIC_URL") -> str:
    """An http(s) base URL for links (`pulse serve --public-url`), without its trailing slash."""
    return _check_url(name, value)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    home: Path
    catalogue: str
    public_url: str
    public_url_set: bool = False  # PULSE_PUBLIC_URL was given (else public_url is the localhost default)
    timezone: str
    source_urls: dict[str, str]  # base URL per source name (pipelines.sources.registry)
    github_graphql_url: str
    github_tokens: tuple[SecretStr, ...] = ()
    catalogue_max_shrink: float = CATALOGUE_MAX_SHRINK  # PULSE_CATALOGUE_MAX_SHRINK: a fraction, 0..1
    # automation (pipelines/sensors.py, pipelines/status.py)
    freshness_hours: float = FRESHNESS_HOURS  # PULSE_FRESHNESS_HOURS
    schedule_on: bool = False  # PULSE_SCHEDULE=on: the daily refresh schedule starts running
    alert_webhook: SecretStr | None = None  # PULSE_ALERT_WEBHOOK: Slack-compatible; its URL is a secret
    ui_url: str | None = None  # PULSE_UI_URL: base of the Dagster UI, for links in alerts
    releases_keep: int = RELEASES_KEEP  # PULSE_RELEASES_KEEP: dataset releases kept under releases_dir
    # GitHub's pace (pipelines/sources/http/pace.py): REST points per window per account (0: off) and
    # the window in seconds; None: the crawl's defaults (900 a minute). Tests scale the window down.
    github_pace_per_minute: int | None = None  # PULSE_GITHUB_PACE_PER_MINUTE
    github_pace_window_s: float | None = None  # PULSE_GITHUB_PACE_WINDOW_S
    # --- warehouseurl ---
    # PULSE_WAREHOUSE_URL (+ PULSE_WAREHOUSE_DATA_PATH): where the warehouse lives (warehouse/db.py);
    # unset: the file PULSE_HOME/warehouse.duckdb. Kept as a target whose repr hides the connection string.
    warehouse: WarehouseTarget | None = None
    # --- shards/concurrency --- PULSE_GITHUB_MAX_IN_FLIGHT (pipelines/sources/http/slots.py): per account,
    # every crawl process of the machine together; 0: off
    github_max_in_flight: int = GITHUB_MAX_IN_FLIGHT
    crawl_shards: int = CRAWL_SHARDS  # PULSE_CRAWL_SHARDS, checked here too so `pulse` fails in one line
    # --- raw archive on object storage (warehouse/raw_store.py) ---
    raw_url: str | None = None  # PULSE_RAW_URL: s3://, gs://, az://, file:///, memory://; None: local raw/ only

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"PULSE_TIMEZONE={value!r} is not a known IANA time zone") from exc
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From `os.environ`, or from `environ` when given (the simulator's, a benchmark's)."""
        return cls.from_mapping(os.environ if environ is None else environ)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str | None]) -> Settings:
        """Settings from environment-variable names -> values (None or blank: the default), so that
        Dagster resources pass their configured fields through the same defaults and checks."""

        def value(name: str, default: str | None = None) -> str | None:
            return _value(env, name, default)

        urls = {source.name: _check_url(source.env_url, value(source.env_url, source.default_url))
                for source in SOURCES}
        graphql = value("GITHUB_GRAPHQL_URL") or default_graphql_url(urls["github"])
        tokens = tuple(SecretStr(t.strip()) for t in (value("GITHUB_TOKEN", "") or "").split(",") if t.strip())
        catalogue = value("PULSE_CATALOGUE", "https://djangopackages.org")
        if catalogue.startswith(("http://", "https://")):
            catalogue = _check_url("PULSE_CATALOGUE", catalogue)
        home = Path(value("PULSE_HOME", "./data")).expanduser().resolve()
        return cls(
            home=home,
            catalogue=catalogue,
            public_url=_check_url("PULSE_PUBLIC_URL", value("PULSE_PUBLIC_URL", "http://localhost:8000")),
            public_url_set=value("PULSE_PUBLIC_URL") is not None,
            timezone=value("PULSE_TIMEZONE", "UTC"),
            source_urls=urls,
            github_graphql_url=_check_url("GITHUB_GRAPHQL_URL", graphql),
            github_tokens=tokens,
            catalogue_max_shrink=_fraction("PULSE_CATALOGUE_MAX_SHRINK", value("PULSE_CATALOGUE_MAX_SHRINK"),
                                           CATALOGUE_MAX_SHRINK),
            freshness_hours=freshness_hours(env),
            schedule_on=schedule_on(env),
            alert_webhook=SecretStr(_check_url("PULSE_ALERT_WEBHOOK", hook, secret=True))
            if (hook := value("PULSE_ALERT_WEBHOOK")) else None,
            ui_url=_check_url("PULSE_UI_URL", ui) if (ui := value("PULSE_UI_URL")) else None,
            releases_keep=_count("PULSE_RELEASES_KEEP", value("PULSE_RELEASES_KEEP"), RELEASES_KEEP),
            github_pace_per_minute=_number("PULSE_GITHUB_PACE_PER_MINUTE", value("PULSE_GITHUB_PACE_PER_MINUTE"), int),
            github_pace_window_s=_number("PULSE_GITHUB_PACE_WINDOW_S", value("PULSE_GITHUB_PACE_WINDOW_S"), float),
            # --- warehouseurl ---
            warehouse=warehouse_target(env, home),
            # --- shards/concurrency --- machine-wide: the process environment unless the mapping names it
            github_max_in_flight=github_max_in_flight(env if value("PULSE_GITHUB_MAX_IN_FLIGHT") else os.environ),
            crawl_shards=crawl_shards(env if value("PULSE_CRAWL_SHARDS") else os.environ),
            # --- raw archive on object storage ---
            raw_url=_raw_url(value("PULSE_RAW_URL")),
        )

    def url(self, source: str) -> str:
        """The configured base URL of one source (by registry name)."""
        return self.source_urls[source]

    @property
    def explicit_public_url(self) -> str | None:
        """PULSE_PUBLIC_URL when the operator set it; None when `public_url` is only the default
        (`pulse serve` then builds links from each request's host)."""
        return self.public_url if self.public_url_set else None

    @property
    def with_token(self) -> bool:
        """GitHub tokens are configured (GraphQL batches; without one, REST only)."""
        return bool(self.github_tokens)

    @property
    def catalogue_is_url(self) -> bool:
        return self.catalogue.startswith(("http://", "https://"))

    @property
    def warehouse_path(self) -> Path:
        """The default warehouse file (PULSE_HOME/warehouse.duckdb); where the warehouse really is: `target`."""
        return self.home / "warehouse.duckdb"

    @property
    def target(self) -> WarehouseTarget:
        """Where the warehouse lives (PULSE_WAREHOUSE_URL; unset: `warehouse_path`, opened directly)."""
        return self.warehouse or WarehouseTarget.file(self.warehouse_path)

    @property
    def published_path(self) -> Path:
        return self.home / "published.duckdb"

    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def export_dir(self) -> Path:
        return self.home / "export"

    @property
    def releases_dir(self) -> Path:
        return self.home / "releases"

    def allowed_hosts(self) -> frozenset[str]:
        """The only network locations the crawler may contact (host:port)."""
        urls = [*self.source_urls.values(), self.github_graphql_url]
        if self.catalogue_is_url:
            urls.append(self.catalogue)
        return frozenset(netloc(u) for u in urls)


def default_graphql_url(api_url: str) -> str:
    """GitHub.com serves GraphQL at /graphql; GitHub Enterprise at /api/graphql beside /api/v3."""
    api_url = api_url.rstrip("/")
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/v3")] + "/graphql"
    return api_url + "/graphql"
