"""The `refresh` job of the code location with its resources pointed at a simulator and a home, for
tests that run it in the test process (`execute_in_process`) instead of through `pulse refresh`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from assets.core.columns import CORE_KEYS, CORE_TABLES
from pipelines.definitions import ALL_ASSETS, ALL_CHECKS, refresh_job
from pipelines.resources import CrawlerResource, PulseResource, WarehouseResource
from pipelines.sources.registry import SOURCES
from tests.e2e.conftest import without_last_fetched


def sim_refresh_job(sim, home: Path, *, public_url: str, tokens: str, timezone: str = "UTC",
                    assets: Sequence[Any] = ALL_ASSETS) -> dg.JobDefinition:
    """The refresh job over the simulator (`assets`: the job's assets, e.g. with another crawl asset)."""
    env = sim.env()
    place = {"home": str(home), "catalogue": env["PULSE_CATALOGUE"], "public_url": public_url, "timezone": timezone}
    resources = {
        "pulse": PulseResource(**place),
        "warehouse": WarehouseResource(home=str(home)),
        "crawler": CrawlerResource(**place, github_tokens=tokens, github_graphql_url=env["GITHUB_GRAPHQL_URL"],
                                   api_urls={s.env_url: env[s.env_url] for s in SOURCES}),
    }
    defs = dg.Definitions(assets=list(assets), asset_checks=ALL_CHECKS, jobs=[refresh_job], resources=resources)
    return defs.resolve_job_def("refresh")


def core_tables(home: Path) -> dict[str, pl.DataFrame]:
    """Every core table of a home's warehouse, in key order: what two crawls must agree on."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {name: con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(CORE_KEYS[name])}").pl()
                for name in CORE_TABLES}
    finally:
        con.close()


def export_records(home: Path) -> dict[str, object]:
    """The API v4 tree without `last_fetched` and the health documents (scored as of each crawl's clock)."""
    root = home / "export" / "api" / "v4"
    return {str(p.relative_to(root)): without_last_fetched(p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p).endswith("/health/index.json")}


TIME_COLUMNS = {  # wall-clock times of two crawls (as in tests/e2e/test_resume.py)
    "core.packages": ("last_fetched",),
    "core.repositories": ("fetched_at",),
    "core.crawl_errors": ("first_seen", "last_seen"),
}


def assert_same_outcome(got: Path, expected: Path, packages: int) -> None:
    """Two homes crawled differently (sharded, in processes) end with the same core tables (but for
    wall-clock columns) and the same API v4 records."""
    got_tables, expected_tables = core_tables(got), core_tables(expected)
    assert got_tables["core.packages"].height == packages
    for name in CORE_TABLES:
        drop = TIME_COLUMNS.get(name, ())
        left, right = got_tables[name].drop(drop), expected_tables[name].drop(drop)
        assert left.columns == right.columns and left.height == right.height, name
        assert left.equals(right), (name, pl.concat([left, right]).unique(keep="none").head(6))
    got_tree, expected_tree = export_records(got), export_records(expected)
    assert set(got_tree) == set(expected_tree) and len(got_tree) > packages
    assert not [path for path in got_tree if got_tree[path] != expected_tree[path]]
