"""The catalogue sensor, evaluated the way the daemon does (`dg.build_sensor_context` on a real Dagster
instance, the sensor's real resources) against a real catalogue file and a real DuckDB warehouse:
nothing stored -> wait for the first refresh; unchanged -> no run; new and changed packages -> one run
of exactly those ids with a run key that the same change always gets; a failing or empty catalogue
-> skipped with its reason, never taken for "packages deleted"."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import httpx
import orjson
import polars as pl
import pytest

from assets.catalogue.changes import (
    PROBE_SIZE,
    PROBE_WINDOW,
    api_probe,
    api_signature,
    changed_package_ids,
    file_signature,
    same_signature,
    window_start,
)
from assets.catalogue.readers import read_catalogue
from assets.catalogue.transform import build_catalogue
from pipelines.resources import CrawlConfig, PulseResource
from pipelines.sensors import catalogue_sensor, catalogue_update_job
from simulator.catalogue import edited_packages
from tests.catalogue.conftest import v4_world
from warehouse.db import open_writer
from warehouse.load import replace_tables


def write_catalogue(path: Path, world: dict) -> None:
    path.write_bytes(orjson.dumps(world))


def store(home: Path, catalogue: Path | str) -> None:
    """What the catalogue step stores (the same reader, transform and loader)."""
    with open_writer(home / "warehouse.duckdb") as con:
        replace_tables(con, build_catalogue(read_catalogue(str(catalogue))).tables())


@pytest.fixture(scope="module")
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def place(tmp_path):
    home, catalogue = tmp_path / "home", tmp_path / "catalogue.json"
    home.mkdir()
    write_catalogue(catalogue, v4_world(packages=6))
    return home, catalogue


def tick(instance, home: Path, catalogue: Path | str, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={
            "pulse": PulseResource(home=str(home), catalogue=str(catalogue))}) as context:
        return catalogue_sensor(context)


def test_new_and_changed_packages_get_one_run_of_exactly_their_ids(instance, place):
    home, catalogue = place
    first = tick(instance, home, catalogue, None)
    assert not first.run_requests and "no catalogue stored yet" in first.skip_reason.skip_message

    store(home, catalogue)
    settled = tick(instance, home, catalogue, None)
    assert not settled.run_requests and "no package new or changed" in settled.skip_reason.skip_message
    assert settled.cursor is not None
    unchanged = tick(instance, home, catalogue, settled.cursor)
    assert not unchanged.run_requests and "unchanged" in unchanged.skip_reason.skip_message

    world = v4_world(packages=8)  # packages 7 and 8 are new
    package_2 = next(p for p in world["packages"] if p["id"] == 2)
    package_2["repo_url"] = "https://github.com/someone-else/package-2"  # moved repository
    package_2["modified"] = "2026-11-30T10:00:00Z"
    write_catalogue(catalogue, world)
    changed = tick(instance, home, catalogue, settled.cursor)
    [request] = changed.run_requests
    assert request.run_config["ops"]["crawl"]["config"]["package_ids"] == [2, 7, 8]
    assert request.run_key.startswith("catalogue-")
    assert changed.cursor != settled.cursor

    # the same change, looked at again from an older cursor (a reset, a restarted daemon): same run key,
    # so the daemon does not launch it twice
    again = tick(instance, home, catalogue, settled.cursor)
    assert [r.run_key for r in again.run_requests] == [request.run_key]
    # once the run applied the catalogue, nothing is new any more
    store(home, catalogue)
    after = tick(instance, home, catalogue, settled.cursor)
    assert not after.run_requests


def test_the_run_crawls_only_the_given_packages():
    packages = build_catalogue(read_catalogue_from(v4_world(packages=5))).packages
    assert sorted(CrawlConfig(package_ids=[2, 4]).select(packages)["id"].to_list()) == [2, 4]
    assert CrawlConfig().select(packages).height == 5
    assert catalogue_update_job.selection.resolve(_graph()) >= {dg.AssetKey(["raw", "github"]),
                                                                  dg.AssetKey(["catalogue", "packages"])}


def read_catalogue_from(world: dict):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(orjson.dumps(world))
        handle.flush()
        return read_catalogue(handle.name)


def _graph():
    from pipelines.definitions import defs

    return defs.resolve_asset_graph()


def test_a_failing_or_empty_catalogue_is_skipped_never_taken_for_deletions(instance, place):
    home, catalogue = place
    store(home, catalogue)
    settled = tick(instance, home, catalogue, None)

    write_catalogue(catalogue, {"categories": [], "grids": [], "packages": []})
    empty = tick(instance, home, catalogue, settled.cursor)
    assert not empty.run_requests and "empty catalogue is never applied" in empty.skip_reason.skip_message
    assert empty.cursor is None  # the cursor stays: the next tick looks again

    catalogue.write_text("<html><title>Down for maintenance</title></html>")
    broken = tick(instance, home, catalogue, settled.cursor)
    assert not broken.run_requests and "catalogue refused" in broken.skip_reason.skip_message

    catalogue.unlink()
    gone = tick(instance, home, catalogue, settled.cursor)
    assert not gone.run_requests and "catalogue probe failed" in gone.skip_reason.skip_message

    shrunk = v4_world(packages=6)
    shrunk["packages"] = shrunk["packages"][:2]
    write_catalogue(catalogue, shrunk)
    refused = tick(instance, home, catalogue, settled.cursor)
    assert not refused.run_requests and "--accept-catalogue-change" in refused.skip_reason.skip_message


def test_file_probe_hashes_only_when_size_or_mtime_moved(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("[1]")
    first = file_signature(path)
    touched = file_signature(path, {**first, "sha256": "reused"})
    assert touched["sha256"] == "reused"  # nothing moved: not read again
    path.write_text("[2]")
    changed = file_signature(path, first)
    assert not same_signature(first, changed)
    assert json.loads(json.dumps(changed)) == changed  # the cursor is JSON


def test_api_probe_head_is_one_request_for_count_and_newest(simulator):
    before = len(simulator.requests())
    signature = api_signature(simulator.url)
    assert len(simulator.requests()) == before + 1
    listed = httpx.get(f"{simulator.url}/api/v4/packages/?limit=1", timeout=10).json()
    assert signature["count"] == listed["count"] and signature["newest"][0][0] == listed["results"][0]["id"]
    ids = [i for i, _ in signature["newest"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == min(20, signature["count"])
    assert same_signature(signature, api_signature(simulator.url))


def test_the_lists_take_limit_and_offset_only_like_the_real_api(simulator):
    """djangopackages' PackageViewSet has no filter backends: `ordering` and `modified__gt` are ignored
    (the simulator answers the same), so "recently modified" cannot be asked for."""
    plain = httpx.get(f"{simulator.url}/api/v4/packages/?limit=5&offset=7", timeout=10).json()
    for extra in ("ordering=-modified", "ordering=modified", "modified__gt=2030-01-01T00:00:00Z"):
        asked = httpx.get(f"{simulator.url}/api/v4/packages/?limit=5&offset=7&{extra}", timeout=10).json()
        assert [r["id"] for r in asked["results"]] == [r["id"] for r in plain["results"]]
        assert asked["count"] == plain["count"]


def test_the_window_walks_the_whole_list_two_requests_a_tick(simulator):
    count = httpx.get(f"{simulator.url}/api/v4/packages/?limit=1", timeout=10).json()["count"]
    seen: list[int] = []
    offset = None
    before = len(simulator.requests())
    ticks = -(-(count - PROBE_SIZE) // PROBE_WINDOW)
    for _ in range(ticks):
        looked = api_probe(simulator.url, offset)
        assert looked.window_offset == (PROBE_SIZE if offset is None else offset)
        seen += [r["id"] for r in looked.window]
        offset = looked.next_window
    assert len(simulator.requests()) == before + 2 * ticks
    assert offset == PROBE_SIZE  # wrapped to the top
    head = [i for i, _ in api_signature(simulator.url)["newest"]]
    assert sorted(seen + head) == list(range(1, count + 1))  # every package, once per walk
    assert window_start(10_000, count) == PROBE_SIZE and window_start("x", count) == PROBE_SIZE


def test_api_catalogue_sensor_settles_then_costs_two_requests_a_tick(instance, simulator, tmp_path):
    store(tmp_path, simulator.url)
    settled = tick(instance, tmp_path, simulator.url, None)
    assert not settled.run_requests and "no package new or changed" in settled.skip_reason.skip_message
    before = len(simulator.requests())
    quiet = tick(instance, tmp_path, simulator.url, settled.cursor)
    assert "unchanged (head and packages 121-220 of 250)" in quiet.skip_reason.skip_message
    assert len(simulator.requests()) == before + 2  # the head and the window, nothing else
    assert json.loads(quiet.cursor)["window"] == 220  # the next tick looks further down


def test_an_edit_of_an_old_package_is_caught_within_one_walk(instance, make_simulator, tmp_path):
    """An editor changes two packages far below the newest 20: the head does not move, the window
    meets them, and one run crawls exactly them; seen again (a later window, an older cursor), the
    same run key; once stored, quiet again."""
    server = make_simulator(packages=150, seed=2)
    store(tmp_path, server.url)
    settled = tick(instance, tmp_path, server.url, None)
    assert not settled.run_requests
    server.sim.faults.catalogue_edit = 2
    edited = sorted(edited_packages(server.world.n, server.sim.faults.seed, 2))
    assert edited and max(edited) <= 150 - PROBE_SIZE  # older than the head: invisible to it
    head = api_signature(server.url)
    assert same_signature(head, json.loads(settled.cursor)["signature"])

    cursor, requests = settled.cursor, []
    for _ in range(-(-(150 - PROBE_SIZE) // PROBE_WINDOW) + 1):  # a whole walk, and one tick more
        result = tick(instance, tmp_path, server.url, cursor)
        requests += result.run_requests
        cursor = result.cursor or cursor
    assert requests, "the window never met the edited packages"
    assert {r.run_key for r in requests} == {requests[0].run_key}  # one change, one run key
    assert requests[0].run_config["ops"]["crawl"]["config"]["package_ids"] == edited

    store(tmp_path, server.url)  # the run applied the catalogue
    for _ in range(2):
        result = tick(instance, tmp_path, server.url, cursor)
        assert not result.run_requests and "unchanged" in result.skip_reason.skip_message
        cursor = result.cursor


def test_changed_ids_ignore_deleted_packages():
    stored = build_catalogue(read_catalogue_from(v4_world(packages=5))).packages
    fewer = stored.filter(pl.col("id") != 3)
    assert changed_package_ids(fewer, stored) == []
    assert changed_package_ids(stored, fewer) == [3]


def test_the_real_crawler_applies_package_ids(tmp_path):
    """`CrawlerResource.crawl` itself filters (not only the test fake): with no id selected nothing is
    planned, so not a single request leaves (its hosts here are unroutable)."""
    from pipelines.resources import CrawlerResource

    packages = build_catalogue(read_catalogue_from(v4_world(packages=5))).packages
    crawler = CrawlerResource(home=str(tmp_path), api_urls={
        "GITHUB_API_URL": "http://github.invalid", "PYPI_URL": "http://pypi.invalid",
        "PYPISTATS_URL": "http://pypistats.invalid"})
    report = crawler.crawl(packages, CrawlConfig(package_ids=[]), run_id="none")
    assert report.planned == 0 and report.archived == 0 and not report.errors
