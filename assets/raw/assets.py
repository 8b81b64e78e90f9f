"""The crawl as a partitioned asset: by source, and by a stable hash shard within the big sources.

One asset per upstream (raw/github, raw/pypi, ...) so the UI shows each archive's state; one graph
produces them all, partitioned by `CRAWL_PARTITIONS` (`github-0`..`github-3`, `pypi-0`.., `gitlab`,
...: `pipelines.crawler.plan`; `PULSE_CRAWL_SHARDS` shards per big source, 4 by default). Every raw
asset carries every key: partition `github-2` of raw/pypi is "the crawl of shard github-2" (nothing
to do for PyPI), which keeps the downstream assets' "all partitions of every parent" one simple rule.

- `crawl_slices` reads the catalogue once (the writer pool: never at the same time as a writing step)
  and deals the run's partition keys into `CrawlConfig.processes` slices;
- `crawl_slice` (one step per slice; parallel processes under the multiprocess executor) crawls its
  partitions in one event loop, each partition archiving its own batches, with its share of tokens;
- `crawl_done` reports: all partitions materialized with the crawl's figures, or, when a slice
  failed, the partitions that succeeded materialized one by one and the step failed naming the rest,
  so the UI shows which shard failed and that shard re-runs alone.

A run covers a range of keys in one step (`BackfillPolicy.single_run()`), so `pulse refresh` and a
backfill of many shards crawl them all in one loop; a step per package would cost more than the crawl.
"""


import dataclasses
from collections import Counter
from typing import Any

import dagster as dg

from assets.metadata import OWNERS
from assets.raw.metrics import crawl_metrics
from assets.raw.slices import CrawlSlice, SliceOutcome, merge_reports, split_partitions
from pipelines import progress
from pipelines.crawler.crawl import CrawlInterrupted, CrawlReport
from pipelines.crawler.plan import partition_keys, partition_of
from pipelines.resources import WRITER_POOL, CrawlConfig, CrawlerResource, WarehouseResource
from pipelines.sources.registry import SOURCES
from warehouse.load import read_table
from warehouse.raw_store import SyncStats, mirroring

RAW_KEYS = {source.name: dg.AssetKey(["raw", source.name]) for source in SOURCES}
# built when the code location loads, from PULSE_CRAWL_SHARDS (`pipelines.crawler.plan.SHARDS`): a new
# shard count is a new set of keys (docs/SCALING.md, "Shards and concurrency")
CRAWL_PARTITIONS = dg.StaticPartitionsDefinition(partition_keys())
# the tags of a run over every partition (what `pulse refresh` and the daily schedule run)
ALL_PARTITIONS_TAGS = {"dagster/asset_partition_range_start": CRAWL_PARTITIONS.get_partition_keys()[0],
                       "dagster/asset_partition_range_end": CRAWL_PARTITIONS.get_partition_keys()[-1]}


def _run_partitions(context: dg.OpExecutionContext) -> list[str]:
    """The partition keys this run materializes (a key, a range, or every key when unpartitioned)."""
    if context.has_partition_key_range or context.has_partition_key:
        return list(context.partition_keys)
    return partition_keys()


@dg.op(ins={"catalogue": dg.In(dg.Nothing)}, out=dg.DynamicOut(CrawlSlice), pool=WRITER_POOL)
def crawl_slices(context: dg.OpExecutionContext, config: CrawlConfig, warehouse: WarehouseResource):
    """Read the catalogue (the only warehouse read of the crawl: slices never open the DuckDB file,
    which one process at a time may write) and hand each slice its keys and packages."""
    with warehouse.writer() as con:
        packages = read_table(con, "catalogue.packages")
    packages = config.select(packages)
    keys = _run_partitions(context)
    groups = split_partitions(keys, config.processes)
    context.log.info("crawl of %d partitions in %d slice(s), %d packages", len(keys), len(groups), packages.height)
    for index, group in enumerate(groups):
        yield dg.DynamicOutput(CrawlSlice(index, len(groups), group, packages, config.model_dump()),
                               mapping_key=f"slice_{index}")


@dg.op
def crawl_slice(context: dg.OpExecutionContext, part: CrawlSlice, crawler: CrawlerResource) -> SliceOutcome:
    """Crawl one slice's partitions; a failure is returned (not raised) so the others still report.

    With PULSE_RAW_URL the step mirrors the archive (warehouse.raw_store.mirroring): it pulls what its
    plan reads, uploads each batch as it is written and pushes what is missing at its end, so the
    batches leave the step's pod even when the crawl fails."""
    with mirroring(crawler.settings(), partitions=part.partitions, log=context.log) as synced:
        try:
            report = crawler.crawl(part.packages, CrawlConfig(**part.options), run_id=context.run.run_id,
                                   log=context.log, progress=progress.report, partitions=part.partitions,
                                   slice_of=(part.index, part.count))
        except CrawlInterrupted:  # a stop signal is no shard's failure: the step fails at once, as before
            raise
        except Exception as exc:  # the step's report names the failed partitions; the traceback is logged
            context.log.exception("crawl of partitions %s failed", ", ".join(part.partitions))
            outcome = SliceOutcome(part.partitions, failure=f"{type(exc).__name__}: {exc}")
        else:
            outcome = SliceOutcome(part.partitions, report=report)
    return dataclasses.replace(outcome, raw_store=synced) if synced is not None else outcome


def _metadata(report: CrawlReport, source: str, partition: str | None = None) -> dict[str, Any]:
    """What a raw asset reports for the crawl (or one partition of it)."""
    errors = [e for e in report.errors if partition is None or partition_of(e[1], e[0]) == partition]
    stats = report.sources.get(source)
    metadata: dict[str, Any] = {
        "requests": stats.requests if stats else 0,
        "errors": sum(1 for e in errors if e[1] == source),
        "stopped_by_budget": report.stopped_by_budget,
        "seconds": round(report.seconds, 2),
        "crawl": dg.MetadataValue.json(report.summary()),  # the whole crawl (`pulse refresh` prints it)
    }
    if stats and stats.quota_spent:
        metadata["quota_spent"] = stats.quota_spent
    metadata.update(crawl_metrics(report, source))  # numbers the UI plots per run (assets.raw.metrics)
    if partition is not None:  # a partition's own errors (the figures above are its slice's)
        metadata["errors"] = sum(1 for e in errors if e[1] == source)
    if report.archived_by_partition:
        metadata["archived_by_partition"] = dg.MetadataValue.json(report.archived_by_partition)
    if source == SOURCES[0].name:  # the crawl's errors by kind, once
        metadata["errors_by_kind"] = dg.MetadataValue.json(dict(Counter(e[2] for e in errors)))
    return metadata


def _synced(outcomes: list[SliceOutcome]) -> SyncStats | None:
    """The slices' object-storage numbers added up (None when PULSE_RAW_URL is unset)."""
    stats = [o.raw_store for o in outcomes if o.raw_store is not None]
    if not stats:
        return None
    total = SyncStats()
    for one in stats:
        total.add(one)
    return total


def _sync_metadata(synced: SyncStats | None, source: str) -> dict[str, Any]:
    """`raw_store_*` numbers of one source (pushed, unpushed, pulled, bytes); nothing without PULSE_RAW_URL."""
    if synced is None:
        return {}
    metadata: dict[str, Any] = dict(synced.metadata(source))
    if synced.error:
        metadata["raw_store_error"] = synced.error
    return metadata


@dg.op(out={source: dg.Out(dg.Nothing, is_required=False) for source in RAW_KEYS})
def crawl_done(context: dg.OpExecutionContext, outcomes: list[SliceOutcome]):
    """Materialize what the slices crawled; fail naming the partitions of a failed slice."""
    failed = [o for o in outcomes if o.failure is not None]
    done = [o for o in outcomes if o.report is not None]
    report = merge_reports([o.report for o in done]) if done else CrawlReport()
    synced = _synced(outcomes)
    if report.stopped_by_budget:
        context.log.warning("crawl stopped at its time budget; the next refresh continues where it stopped")
    if not failed:
        for source in RAW_KEYS:
            yield dg.Output(None, source, metadata=_metadata(report, source) | _sync_metadata(synced, source))
        return
    for outcome in done:  # the partitions that did succeed, one by one
        assert outcome.report is not None
        for key in outcome.partitions:
            for source, asset_key in RAW_KEYS.items():
                yield dg.AssetMaterialization(asset_key=asset_key, partition=key,
                                              metadata=_metadata(outcome.report, source, key)
                                              | _sync_metadata(_synced([outcome]), source))
    names = ", ".join(key for o in failed for key in o.partitions)
    raise dg.Failure(description=f"crawl partitions failed: {names} ({failed[0].failure})",
                     metadata={"failed_partitions": dg.MetadataValue.json([k for o in failed for k in o.partitions])})


def _config(config: CrawlConfig) -> dict[str, Any]:
    """The run configuration of the graph is the crawl's (`ops: {crawl: {config: ...}}`, as before)."""
    return {"crawl_slices": {"config": dict(config)}}


def crawl_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The crawl over `partitions_def`'s keys (the code location's: `CRAWL_PARTITIONS`; a test builds one
    over another shard count, with `pipelines.crawler.plan.SHARDS` set to match)."""

    @dg.graph_multi_asset(
        name="crawl",
        group_name="raw",
        outs={
            source: dg.AssetOut(
                key=key,
                description=f"Archived {source} responses (Parquet batches under PULSE_HOME/raw/{source}/), "
                            "partitioned by crawl shard.",
                kinds={"parquet", "python"},
                owners=OWNERS,
                dagster_type=dg.Nothing,
            )
            for source, key in RAW_KEYS.items()
        },
        ins={"catalogue": dg.AssetIn(dg.AssetKey(["catalogue", "packages"]), dagster_type=dg.Nothing)},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        config=dg.ConfigMapping(config_fn=_config),
    )
    def crawl(catalogue):
        return crawl_done(crawl_slices(catalogue).map(crawl_slice).collect())

    return crawl


crawl = crawl_asset(CRAWL_PARTITIONS)
