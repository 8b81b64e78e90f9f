"""Configuration from the environment, shared by the `pulse` CLI and the Dagster code location.

Everything is read from environment variables (DESIGN.md, "Configuration") so that the CLI, the
Dagster UI and CI configure the pipeline the same way. Tokens are kept as `SecretStr` so that a
stray `repr()` or log line cannot leak them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the variable."""


def _value(env: Mapping[str, str | None], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name}={value!r} is not an http(s) URL")
    return value.rstrip("/")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    home: Path
    catalogue: str
    public_url: str
    timezone: str
    github_api_url: str
    github_graphql_url: str
    github_tokens: tuple[SecretStr, ...] = ()
    pypi_url: str
    gitlab_api_url: str
    bitbucket_api_url: str
    codeberg_api_url: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"PULSE_TIMEZONE={value!r} is not a known IANA time zone") from exc
        return value

    @classmethod
    def from_env(cls) -> Settings:
        return cls.from_mapping(os.environ)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str | None]) -> Settings:
        """Settings from environment-variable names -> values (None or blank: the default), so that
        Dagster resources can pass their configured fields through the same defaults and checks."""

        def _env(name: str, default: str | None = None) -> str | None:
            return _value(env, name, default)

        api = _check_url("GITHUB_API_URL", _env("GITHUB_API_URL", "https://api.github.com"))
        graphql = _env("GITHUB_GRAPHQL_URL") or default_graphql_url(api)
        tokens = tuple(SecretStr(t.strip()) for t in (_env("GITHUB_TOKEN", "") or "").split(",") if t.strip())
        catalogue = _env("PULSE_CATALOGUE", "https://djangopackages.org")
        if catalogue.startswith(("http://", "https://")):
            catalogue = _check_url("PULSE_CATALOGUE", catalogue)
        return cls(
            home=Path(_env("PULSE_HOME", "./data")).expanduser().resolve(),
            catalogue=catalogue,
            public_url=_check_url("PULSE_PUBLIC_URL", _env("PULSE_PUBLIC_URL", "http://localhost:8000")),
            timezone=_env("PULSE_TIMEZONE", "UTC"),
            github_api_url=api,
            github_graphql_url=_check_url("GITHUB_GRAPHQL_URL", graphql),
            github_tokens=tokens,
            pypi_url=_check_url("PYPI_URL", _env("PYPI_URL", "https://pypi.org")),
            gitlab_api_url=_check_url("GITLAB_API_URL", _env("GITLAB_API_URL", "https://gitlab.com/api/v4")),
            bitbucket_api_url=_check_url(
                "BITBUCKET_API_URL", _env("BITBUCKET_API_URL", "https://api.bitbucket.org/2.0")
            ),
            codeberg_api_url=_check_url(
                "CODEBERG_API_URL", _env("CODEBERG_API_URL", "https://codeberg.org/api/v1")
            ),
        )

    @property
    def catalogue_is_url(self) -> bool:
        return self.catalogue.startswith(("http://", "https://"))

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def published_path(self) -> Path:
        return self.home / "published.duckdb"

    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def export_dir(self) -> Path:
        return self.home / "export"

    def allowed_hosts(self) -> frozenset[str]:
        """The only network locations the crawler may contact (host:port)."""
        urls = [self.github_api_url, self.github_graphql_url, self.pypi_url, self.gitlab_api_url,
                self.bitbucket_api_url, self.codeberg_api_url]
        if self.catalogue_is_url:
            urls.append(self.catalogue)
        return frozenset(netloc(u) for u in urls)


def netloc(url: str) -> str:
    """host:port with the scheme's default port filled in, lower-cased."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def default_graphql_url(api_url: str) -> str:
    """GitHub.com serves GraphQL at /graphql; GitHub Enterprise at /api/graphql beside /api/v3."""
    api_url = api_url.rstrip("/")
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/v3")] + "/graphql"
    return api_url + "/graphql"
