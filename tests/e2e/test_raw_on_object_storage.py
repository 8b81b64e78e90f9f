"""The raw archive on object storage, end to end: real `pulse refresh` processes, the simulator over
HTTP, and moto's S3 server as the bucket (PULSE_RAW_URL + the standard AWS variables).

One home crawls and archives to the bucket; a second home with no raw batch at all (a new pod: only
the warehouse, which a deployment shares, came along) replays and ends with the same core tables. Its
cache emptied again and the store unreachable, it refuses to rebuild: its published snapshot stays.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.core.columns import CORE_KEYS, CORE_TABLES
from simulator.server import start_in_thread
from tests.e2e.conftest import pulse_env, query_file, run_pulse
from tests.s3_server import DUMMY_SECRET, free_port, s3_server
from warehouse.archive import batch_files
from warehouse.load import query

pytestmark = pytest.mark.slow


def batch_names(home: Path) -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in batch_files(home / "raw"))


def core_tables(home: Path) -> dict[str, pl.DataFrame]:
    """The published core tables, each ordered by its key."""
    import duckdb

    con = duckdb.connect(str(home / "published.duckdb"), read_only=True)
    try:
        return {name: query(con, f"SELECT * FROM {name} ORDER BY {', '.join(CORE_KEYS[name])}")
                for name in CORE_TABLES}
    finally:
        con.close()


def metadata(home: Path, *key: str) -> dict:
    """The newest materialization's metadata of one asset, from the home's Dagster instance."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(list(key)))
        assert event is not None and event.asset_materialization is not None
        return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def assert_same_core(one: Path, other: Path) -> None:
    mine, theirs = core_tables(one), core_tables(other)
    for name in CORE_TABLES:
        assert_frame_equal(mine[name], theirs[name], check_row_order=True)


def test_a_fresh_home_rebuilds_the_same_core_from_the_bucket(tmp_path):
    with s3_server() as s3, start_in_thread(packages=30, seed=23) as sim:
        url = f"s3://{s3.bucket}/pulse/raw"
        first = tmp_path / "first"
        # every crawl slice uploads its own batches (the same code in one process or in one pod each)
        result = run_pulse("refresh", env=pulse_env(sim, first, PULSE_RAW_URL=url, **s3.env))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert batch_names(first)
        assert [k.removeprefix("pulse/raw/") for k in s3.keys("pulse/raw/")] == batch_names(first)
        crawled = metadata(first, "raw", "github")
        assert crawled["raw_store_unpushed"] == 0 and "raw_store_error" not in crawled
        assert metadata(first, "core", "packages")["raw_store_pulled"] == 0  # the crawl was on this disk

        # a new pod: its PULSE_HOME holds the warehouse (shared in a deployment: the catalogue, core's
        # bookkeeping) and no raw batch at all. A replay, offline, rebuilds core from the bucket alone.
        second = tmp_path / "second"
        second.mkdir()
        shutil.copy(first / "warehouse.duckdb", second / "warehouse.duckdb")
        sim.reset_stats()
        result = run_pulse("refresh", "--replay", env=pulse_env(sim, second, PULSE_RAW_URL=url, **s3.env))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert sim.requests() == []  # no upstream request, not even the catalogue
        assert batch_names(second) == batch_names(first)
        assert_same_core(first, second)
        pulled = metadata(second, "core", "packages")
        assert pulled["raw_store_pulled"] == len(batch_names(first))
        assert pulled["raw_store_pulled_bytes"] == sum(p.stat().st_size for p in batch_files(first / "raw"))
        responses = "SELECT count(*) FROM raw.responses"
        assert query_file(second / "warehouse.duckdb", responses) == query_file(first / "warehouse.duckdb", responses)

        # the store unreachable and the cache empty: core refuses, nothing is published over the good data
        shutil.rmtree(second / "raw")
        before = (second / "published.duckdb").read_bytes()
        down = {**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
        result = run_pulse("refresh", "--replay", env=pulse_env(sim, second, PULSE_RAW_URL=url, **down))
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert f"the raw archive at {url} could not be read" in output, output[-3000:]
        assert "not rebuilt" in output
        assert DUMMY_SECRET not in output
        assert (second / "published.duckdb").read_bytes() == before
        assert_same_core(first, second)
