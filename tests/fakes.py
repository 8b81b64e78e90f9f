"""Fake resources for tests: the same interface as the real ones, no network.

`FakeCrawlerResource` is the crawler of `pipelines.resources.CrawlerResource` with the HTTP taken
out: `crawl()` writes the sample archive's canned responses (tests/fixtures/sample.py) for the
packages it is given, the way a crawl that got exactly those answers would.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

from pipelines.crawler.crawl import CrawlReport
from pipelines.crawler.plan import partition_of
from pipelines.resources import CrawlConfig, CrawlerResource
from pipelines.sources.crawling import SourceStats
from tests.fixtures.sample import sample_responses
from warehouse.archive import write_batch


class FakeCrawlerResource(CrawlerResource):
    """Archives canned answers instead of calling upstreams."""

    def crawl(self, packages: pl.DataFrame, config: CrawlConfig, run_id: str, log=None,
              progress=None, partitions=None, slice_of=(0, 1)) -> CrawlReport:
        packages = config.select(packages)
        subjects = set(packages["repo_key"].drop_nulls()) | {f"pypi:{name}" for name in
                                                              packages["pypi_name"].drop_nulls()}
        raw_dir = self.settings().raw_dir
        report = CrawlReport(partitions=partitions)
        for source, rows in sample_responses().items():
            rows = [row for row in rows if row.subject in subjects
                    and (partitions is None or partition_of(source, row.subject) in partitions)]
            for key in sorted({partition_of(source, row.subject) for row in rows} if partitions else {None}):
                batch = [row for row in rows if key is None or partition_of(source, row.subject) == key]
                if batch:  # a partitioned crawl writes each partition's batches apart, as the real one
                    write_batch(raw_dir, source, batch, run_id, key)
            report.sources[source] = SourceStats(requests=len(rows), statuses=Counter(row.status for row in rows))
            report.archived += len(rows)
            report.errors.extend((row.subject, source, row.error_kind, row.status, row.error or "")
                                 for row in rows if row.error_kind)
        report.planned = report.archived
        if progress is not None:
            progress("crawl", report.archived, report.planned)
        return report
