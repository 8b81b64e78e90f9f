"""Helpers for crawling the simulator: a catalogue.packages-like frame built from its world."""

from __future__ import annotations

import re

import polars as pl
from pydantic import SecretStr

from pipelines.settings import Settings

PACKAGE_SCHEMA = {"id": pl.Int64, "slug": pl.String, "repo_host": pl.String, "repo_owner": pl.String,
                  "repo_name": pl.String, "repo_key": pl.String, "pypi_name": pl.String,
                  "repo_url_problem": pl.String}


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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
            "pypi_name": pep503(p.pypi_name) if p.pypi_name else None,
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
        github_api_url=env["GITHUB_API_URL"],
        github_graphql_url=env["GITHUB_GRAPHQL_URL"],
        github_tokens=tuple(SecretStr(t) for t in tokens),
        pypi_url=env["PYPI_URL"],
        gitlab_api_url=env["GITLAB_API_URL"],
        bitbucket_api_url=env["BITBUCKET_API_URL"],
        codeberg_api_url=env["CODEBERG_API_URL"],
    )
