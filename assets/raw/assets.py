"""The crawl as one Dagster step: every host is crawled concurrently in one event loop.

One asset per upstream (raw/github, raw/pypi, ...) so the UI shows each archive's state, but a
single step produces them all: a Dagster step per package would cost more than the crawl itself.
"""


from collections import Counter

import dagster as dg

from assets.metadata import OWNERS
from assets.raw.metrics import crawl_metrics
from pipelines import progress
from pipelines.resources import WRITER_POOL, CrawlConfig, CrawlerResource, WarehouseResource
from pipelines.sources.registry import SOURCES
from warehouse.load import read_table

RAW_KEYS = {source.name: dg.AssetKey(["raw", source.name]) for source in SOURCES}


@dg.multi_asset(
    name="crawl",
    group_name="raw",
    specs=[
        dg.AssetSpec(
            key,
            deps=[dg.AssetKey(["catalogue", "packages"])],
            description=f"Archived {source} responses (Parquet batches under PULSE_HOME/raw/{source}/).",
            kinds={"parquet", "python"},
            owners=OWNERS,
        )
        for source, key in RAW_KEYS.items()
    ],
    pool=WRITER_POOL,
)
def crawl(context: dg.AssetExecutionContext, config: CrawlConfig, crawler: CrawlerResource,
          warehouse: WarehouseResource):
    with warehouse.writer() as con:
        packages = read_table(con, "catalogue.packages")
    report = crawler.crawl(packages, config, run_id=context.run.run_id, log=context.log, progress=progress.report)
    errors_by_source = Counter(error[1] for error in report.errors)
    errors_by_kind = Counter(error[2] for error in report.errors)
    if report.stopped_by_budget:
        context.log.warning("crawl stopped at its time budget; the next refresh continues where it stopped")
    summary = dg.MetadataValue.json(report.summary())  # the whole crawl (`pulse refresh` prints it)
    for source, key in RAW_KEYS.items():
        stats = report.sources.get(source)
        metadata = {
            "requests": stats.requests if stats else 0,
            "errors": errors_by_source.get(source, 0),
            "stopped_by_budget": report.stopped_by_budget,
            "seconds": round(report.seconds, 2),
            "crawl": summary,
        }
        if stats and stats.quota_spent:
            metadata["quota_spent"] = stats.quota_spent
        metadata.update(crawl_metrics(report, source))  # numbers the UI plots per run (assets.raw.metrics)
        if source == SOURCES[0].name:  # the whole crawl's errors, once
            metadata["errors_by_kind"] = dg.MetadataValue.json(dict(errors_by_kind))
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
