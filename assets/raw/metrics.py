"""What one crawl did for one source, as plain numbers Dagster plots over time.

Dagster draws a plot for every int/float metadata entry an asset reports on each materialization
(the asset's Plots tab), so these are flat numbers under stable names, present on every run even
when zero (every error kind of `ERROR_KINDS`, not only those that occurred): a gap in a plot would
otherwise look like missing data rather than "none this time". The whole crawl's summary stays as the
JSON `crawl` entry beside them (`pulse refresh` prints it).
"""

from __future__ import annotations

from collections import Counter

from pipelines.crawler.crawl import CrawlReport
from pipelines.sources.crawling import SourceStats
from pipelines.sources.http.fetched import ERROR_KINDS


def crawl_metrics(report: CrawlReport, source: str) -> dict[str, int | float]:
    """Per-source crawl numbers for `raw/<source>`'s materialization metadata.

    - `requests`: HTTP requests sent (retries, pages, polls included: what the upstream counts);
    - `answers_304`, `ratio_304`: answers `304 Not Modified` and their share of all answers (how much of
      the crawl the ETags saved);
    - `quota_spent`: requests and query points charged against the source's quota (GitHub's today);
    - `waited_s`: seconds spent waiting, for quota resets (`quota_wait_s`) plus secondary-limit
      back-offs (`backoff_s`, `backoffs` times) plus the waits of requests for GitHub's pace
      (`pace_wait_s`) plus their waits for one of the machine-wide slots in flight (`slot_wait_s`), both
      summed over the requests that waited, so they can exceed the crawl's seconds;
    - `errors`, `errors_<kind>`: archived failures of this source, by error kind;
    - `packages_due`, `packages_done`: subjects (a repository, a PyPI project) with a request due this
      run, and those the crawl worked through (a crawl stopped by its time budget leaves the rest).
    """
    stats = report.sources.get(source) or SourceStats()
    answers = sum(stats.statuses.values())
    not_modified = int(stats.statuses.get(304, 0))
    backoff_s = float(sum(stats.backoffs))
    errors = Counter(kind for _, error_source, kind, _, _ in report.errors if error_source == source)
    return {
        "requests": int(stats.requests),
        "answers_304": not_modified,
        "ratio_304": round(not_modified / answers, 4) if answers else 0.0,
        "quota_spent": round(float(stats.quota_spent), 1),
        "quota_wait_s": round(float(stats.quota_wait_s), 2),
        "backoff_s": round(backoff_s, 2),
        "backoffs": len(stats.backoffs),
        "pace_wait_s": round(float(stats.pace_wait_s), 2),
        "slot_wait_s": round(float(stats.slot_wait_s), 2),
        "waited_s": round(float(stats.quota_wait_s) + backoff_s + float(stats.pace_wait_s)
                          + float(stats.slot_wait_s), 2),
        "errors": int(sum(errors.values())),
        **{f"errors_{kind}": int(n) for kind, n in (dict.fromkeys(ERROR_KINDS, 0) | errors).items()},
        "packages_due": int(report.jobs_by_source.get(source, 0)),
        "packages_done": int(report.done_by_source.get(source, 0)),
    }
