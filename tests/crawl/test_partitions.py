"""The partitioned crawl (issue 11, "Partitioned crawl").

The crawl's partitions are the sources, and within the big ones a stable hash shard of the subject
(the repository or project a package names). Proved here: the keys and the shard function; that the
plans of the partitions are disjoint and add up to the whole plan; a failed slice fails only its own
partitions (Dagster's per-partition status) and the failed shard re-runs alone; `package_ids`; and, on
the simulator over real HTTP with real DuckDB files, that a crawl done shard range by shard range
(a backfill in several runs) ends with the core tables and the API v4 tree of one single crawl.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from pydantic import SecretStr

from assets.raw.assets import ALL_PARTITIONS_TAGS, CRAWL_PARTITIONS, RAW_KEYS, crawl, crawl_asset
from assets.raw.slices import merge_reports, split_partitions
from pipelines.crawler import plan as plan_module
from pipelines.crawler.crawl import CrawlReport
from pipelines.crawler.plan import SHARDS, partition_keys, partition_of, plan_crawl, shard_of, shards_by_source
from pipelines.definitions import ALL_ASSETS
from pipelines.resources import CrawlConfig, PulseResource, WarehouseResource
from pipelines.resources.crawler import token_share
from pipelines.settings import Settings, SettingsError, crawl_shards
from pipelines.sources.crawling import SourceStats
from pipelines.sources.registry import SOURCES
from simulator.hosts import REPO_HOSTS
from simulator.server import start_in_thread
from simulator.world import World
from tests.crawl.simjob import assert_same_outcome, sim_refresh_job
from tests.crawl.simworld import world_packages
from tests.e2e.conftest import SIM_TOKENS
from tests.fakes import FakeCrawlerResource
from tests.fixtures.sample import write_sample_catalogue_csv
from warehouse.archive import scan_archive

KEYS = partition_keys()


# ------------------------------------------------------------------------------------------------
# keys, shards, plans


def test_partition_keys_are_every_source_with_the_big_ones_sharded():
    assert CRAWL_PARTITIONS.get_partition_keys() == KEYS
    assert len(KEYS) == len(set(KEYS))
    for source in SOURCES:
        shards = SHARDS.get(source.name, 1)
        mine = [key for key in KEYS if key == source.name or key.startswith(f"{source.name}-")]
        assert mine == ([f"{source.name}-{i}" for i in range(shards)] if shards > 1 else [source.name])
    assert {"github", "pypi", "pypistats"} <= set(SHARDS) and "gitlab" in KEYS and "codeberg" in KEYS
    # the run of every partition (what `pulse refresh` and the daily schedule run) spans them all
    assert {"dagster/asset_partition_range_start": KEYS[0],
                                   "dagster/asset_partition_range_end": KEYS[-1]} == ALL_PARTITIONS_TAGS


def test_a_shard_is_a_stable_hash_of_the_subject():
    # fixed values: the same in every process and every run (Python's `hash` of a str is salted)
    assert [shard_of("github:django/django", 4), shard_of("pypi:django", 4), shard_of("pypistats:requests", 4)] \
        == [1, 3, 3]
    assert partition_of("github", "github:encode/django-rest-framework") == "github-2"
    assert partition_of("gitlab", "gitlab:a/b") == "gitlab"
    spread = Counter(shard_of(f"github:owner/repo-{i}", 4) for i in range(4000))
    assert set(spread) == {0, 1, 2, 3} and min(spread.values()) > 800  # about even


def _subjects(plan) -> set[tuple[str, str]]:
    return {(job.source, job.subject) for jobs in plan.jobs.values() for job in jobs}


def use_shards(monkeypatch: pytest.MonkeyPatch, count: int) -> list[str]:
    """This process crawls with `count` shards per big source, as a code location loaded with
    PULSE_CRAWL_SHARDS=count would (the plan's table; the partitions definition is the caller's)."""
    monkeypatch.setattr(plan_module, "SHARDS", shards_by_source(count))
    return partition_keys()


@pytest.mark.parametrize("count", [1, 2, 4, 32])
def test_the_plans_of_the_partitions_are_disjoint_and_add_up_to_the_whole_plan(monkeypatch, count):
    packages = world_packages(World(seed=4, packages=300, hosts=REPO_HOSTS))
    common = {"with_token": True, "now": datetime.now(UTC), "force": False, "max_age_hours": 20.0}
    whole = plan_crawl(packages, {}, {}, **common)
    keys = use_shards(monkeypatch, count)
    assert len(keys) == len(set(keys)) == 3 * count + 3  # the big sources sharded, the 3 others whole
    parts = [plan_crawl(packages, {}, {}, partitions=[key], **common) for key in keys]
    union: set[tuple[str, str]] = set()
    for key, part in zip(keys, parts, strict=True):
        subjects = _subjects(part)
        assert not subjects & union
        assert all(partition_of(source, subject) == key for source, subject in subjects)
        union |= subjects
    assert union == _subjects(whole)
    assert sum(part.planned for part in parts) == whole.planned
    if count <= 4:
        assert all(part.planned for key, part in zip(keys, parts, strict=True) if "-" in key)  # every shard has work
    # a few keys together are the union of those keys
    assert _subjects(plan_crawl(packages, {}, {}, partitions=keys[:3], **common)) == \
        set().union(*(_subjects(part) for part in parts[:3]))


def test_the_shard_count_is_a_checked_setting_and_a_key_of_another_count_is_refused(monkeypatch):
    assert crawl_shards({}) == 4 and crawl_shards({"PULSE_CRAWL_SHARDS": " 32 "}) == 32
    assert crawl_shards({"PULSE_CRAWL_SHARDS": "1"}) == 1
    monkeypatch.setenv("PULSE_CRAWL_SHARDS", "65")  # `pulse` checks it with the other settings: one line
    with pytest.raises(SettingsError, match="PULSE_CRAWL_SHARDS='65' is out of range"):
        Settings.from_mapping({})
    monkeypatch.delenv("PULSE_CRAWL_SHARDS")
    for bad in ("0", "65", "-2", "four", "2.5"):
        with pytest.raises(SettingsError, match=f"PULSE_CRAWL_SHARDS='{bad}'.*1..64"):
            crawl_shards({"PULSE_CRAWL_SHARDS": bad})
    # one shard: the big sources are single partitions like the small ones
    assert use_shards(monkeypatch, 1)[:2] == ["github", "pypi"] and partition_of("github", "github:a/b") == "github"
    # a key named under 4 shards (a backfill launched before the count went down) is refused, not
    # crawled as a shard whose subjects have moved
    use_shards(monkeypatch, 2)
    packages = world_packages(World(seed=4, packages=20, hosts=REPO_HOSTS))
    with pytest.raises(ValueError, match=r"github-3.*PULSE_CRAWL_SHARDS=2.*github-0, github-1, pypi-0"):
        plan_crawl(packages, {}, {}, with_token=False, now=datetime.now(UTC), force=False, max_age_hours=20.0,
                   partitions=["github-0", "github-3"])


def test_a_new_shard_count_leaves_the_old_keys_status_behind():
    """What the Dagster instance shows after PULSE_CRAWL_SHARDS changes (docs/SCALING.md): keys that
    exist under both counts keep their last status (though their subjects moved), new keys are missing
    until the next crawl covers them, and keys that are gone no longer show (their events stay)."""
    asset = RAW_KEYS["github"]
    with pytest.MonkeyPatch.context() as patch:
        more, fewer = use_shards(patch, 8), use_shards(patch, 2)
    with dg.DagsterInstance.ephemeral() as instance:
        for key in KEYS:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key))
        status = instance.get_status_by_partition(asset, more, dg.StaticPartitionsDefinition(more))
        assert {k for k, s in status.items() if s == dg.AssetPartitionStatus.MATERIALIZED} == set(KEYS)
        assert {k for k, s in status.items() if s is None} == set(more) - set(KEYS) != set()
        status = instance.get_status_by_partition(asset, fewer, dg.StaticPartitionsDefinition(fewer))
        assert set(status) == set(fewer) and set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}


def test_slices_deal_the_keys_round_robin_and_split_the_tokens():
    slices = split_partitions(KEYS, 3)
    assert sorted(key for group in slices for key in group) == sorted(KEYS)
    assert all({"github", "pypi"} <= {key.split("-")[0] for key in group} for group in slices)
    assert split_partitions(["gitlab"], 4) == [["gitlab"]]  # never an empty slice
    assert split_partitions(KEYS, 1) == [KEYS]
    tokens = tuple(SecretStr(f"t{i}") for i in range(5))
    shares = [token_share(tokens, i, 2) for i in range(2)]
    assert [[t.get_secret_value() for t in share] for share in shares] == [["t0", "t2", "t4"], ["t1", "t3"]]
    assert token_share(tokens[:1], 1, 2) == tokens[:1]  # fewer tokens than slices: all of them, shared pace
    assert token_share((), 0, 2) == ()


def test_the_reports_of_slices_add_up():
    a = CrawlReport(sources={"github": SourceStats(requests=3, statuses=Counter({200: 3}), quota_spent=3.0)},
                    errors=[("github:a/b", "github", "not_found", 404, "x")], planned=5, archived=4,
                    seconds=2.0, skipped_problem=7, partitions=["github-0"], archived_by_partition={"github-0": 4},
                    jobs_by_source={"github": 2})
    b = CrawlReport(sources={"github": SourceStats(requests=2, statuses=Counter({200: 1, 304: 1}), backoffs=[1.0]),
                             "pypi": SourceStats(requests=1)},
                    planned=2, archived=2, not_modified=1, seconds=3.0, skipped_problem=7, stopped_by_budget=True,
                    stop_reason="time budget reached", partitions=["pypi-0"], archived_by_partition={"pypi-0": 2},
                    jobs_by_source={"github": 1, "pypi": 1})
    merged = merge_reports([a, b])
    assert merged.requests_by_source == {"github": 5, "pypi": 1}
    assert merged.sources["github"].statuses == Counter({200: 4, 304: 1})
    assert merged.sources["github"].backoffs == [1.0] and merged.quota_spent == 3.0
    assert (merged.planned, merged.archived, merged.not_modified, merged.left) == (7, 6, 1, 1)
    assert merged.seconds == 3.0 and merged.skipped_problem == 7 and merged.stopped_by_budget
    assert merged.stop_reason == "time budget reached" and merged.jobs_by_source == {"github": 3, "pypi": 1}
    assert merged.archived_by_partition == {"github-0": 4, "pypi-0": 2} and len(merged.errors) == 1
    assert merge_reports([a]) is a


def test_package_ids_select_the_catalogue_rows():
    packages = pl.DataFrame({"id": [1, 2, 3], "slug": ["a", "b", "c"]})
    assert CrawlConfig().select(packages).height == 3
    assert CrawlConfig(package_ids=[3, 1, 99]).select(packages)["slug"].to_list() == ["a", "c"]
    assert CrawlConfig().package_ids is None and CrawlConfig().processes == 1


# ------------------------------------------------------------------------------------------------
# Dagster: per-partition status, a failed shard re-run alone, package_ids (the fake crawler)


class FailingCrawler(FakeCrawlerResource):
    """Fails the slice that holds the `gitlab` partition (a crash, not an upstream error)."""

    def crawl(self, packages, config, run_id, log=None, progress=None, partitions=None, slice_of=(0, 1)):
        if partitions is not None and "gitlab" in partitions:
            raise OSError("disk full (simulated)")
        return super().crawl(packages, config, run_id, log, progress, partitions, slice_of)


@pytest.fixture(scope="module")
def sample_catalogue(tmp_path_factory) -> tuple[Path, Path]:
    """The sample catalogue stored once (its warehouse file is copied into each test's home)."""
    from assets.catalogue.assets import catalogue

    folder = tmp_path_factory.mktemp("sample")
    source = write_sample_catalogue_csv(folder / "catalogue.csv")
    home = folder / "home"
    resources = {"pulse": PulseResource(home=str(home), catalogue=str(source)),
                 "warehouse": WarehouseResource(home=str(home))}
    assert dg.materialize([catalogue], resources=resources).success
    return source, home / "warehouse.duckdb"


@pytest.fixture
def sample_home(sample_catalogue, tmp_path):
    source, warehouse = sample_catalogue
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(warehouse, home / "warehouse.duckdb")
    base = {"pulse": PulseResource(home=str(home), catalogue=str(source)),
            "warehouse": WarehouseResource(home=str(home))}
    return base, str(home), str(source)


@pytest.mark.slow  # two Dagster runs over every partition
def test_a_failed_slice_fails_its_partitions_only_and_that_shard_reruns_alone(sample_home):
    base, home, source = sample_home
    slices = split_partitions(KEYS, 3)
    failing = next(group for group in slices if "gitlab" in group)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([crawl], resources={**base, "crawler": FailingCrawler(home=home, catalogue=source)},
                                run_config=dg.RunConfig(ops={"crawl": CrawlConfig(processes=3)}),
                                tags=ALL_PARTITIONS_TAGS, instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert failure.step_key == "crawl.crawl_done" and "gitlab" in failure.event_specific_data.error.message
        status = instance.get_status_by_partition(RAW_KEYS["github"], KEYS, CRAWL_PARTITIONS)
        assert {key for key, s in status.items() if s == dg.AssetPartitionStatus.FAILED} == set(failing)
        assert {key for key, s in status.items() if s == dg.AssetPartitionStatus.MATERIALIZED} == \
            set(KEYS) - set(failing)
        # the partitions that succeeded report their own figures
        latest = instance.get_latest_materialization_event(RAW_KEYS["github"]).asset_materialization
        assert latest.partition not in failing and "requests" in latest.metadata

        rerun = dg.materialize([crawl], resources={**base, "crawler": FakeCrawlerResource(home=home, catalogue=source)},
                               partition_key="gitlab", instance=instance)
        assert rerun.success
        assert {e.partition for e in rerun.get_asset_materialization_events()} == {"gitlab"}
        status = instance.get_status_by_partition(RAW_KEYS["gitlab"], KEYS, CRAWL_PARTITIONS)
        assert {key for key, s in status.items() if s == dg.AssetPartitionStatus.FAILED} == set(failing) - {"gitlab"}
        assert status == instance.get_status_by_partition(RAW_KEYS["github"], KEYS, CRAWL_PARTITIONS)
    # each partition wrote its own batches, named by the partition
    names = {path.name.split(".")[-2] for path in (Path(home) / "raw").glob("*/*.parquet")}
    assert "gitlab" in names and names <= set(KEYS)  # the re-run shard wrote its own batches too


def test_package_ids_crawl_only_those_packages(sample_home):
    base, home, source = sample_home
    result = dg.materialize([crawl], resources={**base, "crawler": FakeCrawlerResource(home=home, catalogue=source)},
                            run_config=dg.RunConfig(ops={"crawl": CrawlConfig(package_ids=[1])}),
                            tags=ALL_PARTITIONS_TAGS)
    assert result.success
    con = duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True)
    try:
        repo_key, pypi_name = con.execute("SELECT repo_key, pypi_name FROM catalogue.packages WHERE id = 1").fetchone()
    finally:
        con.close()
    subjects = set(scan_archive(Path(home) / "raw").collect()["subject"])
    assert subjects and subjects <= {repo_key, f"pypi:{pypi_name}", f"pypistats:{pypi_name}"}


# ------------------------------------------------------------------------------------------------
# the simulator: a crawl in shard ranges (several runs) ends like one single crawl

PACKAGES = 40
SEED = 31
PUBLIC_URL = "https://pulse.example"
# backfill ranges of the sharded home, the later keys first, the first range in two slices
RANGES = [("pypi-2", "pypistats-3", 2), ("github-0", "pypi-1", 1)]


def _job(sim, home: Path) -> dg.JobDefinition:
    return sim_refresh_job(sim, home, public_url=PUBLIC_URL, tokens=SIM_TOKENS)


def _range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _refresh_job(sim, home: Path, count: int | None = None) -> dg.JobDefinition:
    """The refresh job on the simulator; with `count`, its crawl partitioned by that many shards."""
    if count is None:
        return _job(sim, home)
    assets = [asset for asset in ALL_ASSETS if RAW_KEYS["github"] not in asset.keys]
    assets.append(crawl_asset(dg.StaticPartitionsDefinition(partition_keys())))
    return sim_refresh_job(sim, home, public_url=PUBLIC_URL, tokens=SIM_TOKENS, assets=assets)


# backfill ranges per shard count: the later keys first, the first range in two slices
RANGES_BY_COUNT = {4: RANGES, 2: [("pypi-1", "pypistats-1", 2), ("github-0", "pypi-0", 1)]}


@pytest.fixture(scope="module")
def single_crawl(tmp_path_factory):
    sim = start_in_thread(packages=PACKAGES, seed=SEED)
    single = tmp_path_factory.mktemp("single")
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            assert _job(sim, single).execute_in_process(instance=instance, tags=ALL_PARTITIONS_TAGS).success
        yield single
    finally:
        sim.stop()


@pytest.fixture(scope="module", params=[4, 2], ids=["4-shards", "2-shards"])
def single_and_sharded(request, single_crawl, tmp_path_factory):
    count = request.param
    sim = start_in_thread(packages=PACKAGES, seed=SEED)
    sharded = tmp_path_factory.mktemp(f"sharded{count}")
    try:
        with pytest.MonkeyPatch.context() as patch:
            keys = use_shards(patch, count)
            job = _refresh_job(sim, sharded, None if count == 4 else count)
            graph = job.asset_layer.asset_graph
            all_keys = graph.get_all_asset_keys()
            by_group = {group: [k for k in all_keys if graph.get(k).group_name == group]
                        for group in ("catalogue", "raw")}
            downstream = [k for k in all_keys if graph.get(k).group_name not in ("catalogue", "raw")]
            partitions = graph.get(RAW_KEYS["pypi"]).partitions_def
            assert partitions.get_partition_keys() == keys
            with dg.DagsterInstance.ephemeral() as instance:
                assert job.execute_in_process(instance=instance, asset_selection=by_group["catalogue"]).success
                for start, end, processes in RANGES_BY_COUNT[count]:
                    assert job.execute_in_process(
                        instance=instance, asset_selection=by_group["raw"], tags=_range(start, end),
                        run_config=dg.RunConfig(ops={"crawl": CrawlConfig(processes=processes)})).success
                status = instance.get_status_by_partition(RAW_KEYS["pypi"], keys, partitions)
                assert job.execute_in_process(instance=instance, asset_selection=downstream).success
        yield single_crawl, sharded, status, keys, count
    finally:
        sim.stop()


@pytest.mark.slow  # simulated crawls (one single, one sharded in two runs per count) and builds of the whole graph
def test_a_sharded_crawl_ends_like_a_single_crawl(single_and_sharded):
    single, sharded, status, keys, count = single_and_sharded
    assert len(status) == len(keys) and set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    assert_same_outcome(sharded, single, PACKAGES)
    # each request key answered once in both archives; the sharded one in batches named by partition
    for home in (single, sharded):
        rows = scan_archive(home / "raw").collect()
        assert rows.height == rows["request_key"].n_unique()
    assert set(scan_archive(single / "raw").collect()["request_key"]) == \
        set(scan_archive(sharded / "raw").collect()["request_key"])
    named = {p.name.split(".")[-2] for p in (sharded / "raw").glob("*/*.parquet")}
    assert named <= set(keys) and {"github-0", f"pypi-{count - 1}", "pypistats-1"} <= named
