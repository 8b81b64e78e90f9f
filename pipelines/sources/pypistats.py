"""pypistats.org: PyPI download counts (what djangopackages shows as `pypi_downloads`).

pypistats (github.com/crflynn/pypistats.org, `pypistats/views/api.py`) is a small volunteer-run
Flask service over a daily BigQuery extract:

- `GET /api/packages/<package>/recent` -> `{"data": {"last_day": n, "last_week": n, "last_month": n},
  "package": name, "type": "recent_downloads"}` (mirrors excluded);
- `GET /api/packages/<package>/overall?mirrors=false` -> `{"data": [{"category": "without_mirrors",
  "date": "YYYY-MM-DD", "downloads": n}, ...], "package": name, "type": "overall_downloads"}`, one
  row per day, oldest first, kept for 180 days.

The package name is normalised by the server (`.` and `_` become `-`; it stores PEP 503 names), so
the catalogue's PEP 503 `pypi_name` is asked as is. An unknown project answers 404 with the plain
text body `404` (archived as `not_found`, like PyPI's). Its etiquette: the data changes once a day,
so ask each endpoint at most once a day (`min_age_hours`), gently (two requests in flight); IP rate
limits answer 429 (`Upstream` honours `retry-after`, seconds or an HTTP date, and pauses the whole
upstream). Whatever validator it sends is sent back the next day: an ETag as `If-None-Match`, else a
`Last-Modified` as `If-Modified-Since` (`pipelines.sources.http.upstream.validator`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import quote

import polars as pl

from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, Run, SourceStats, Wiring, fetch_into
from pipelines.sources.facts import DAILY_DOWNLOAD_FACTS, DOWNLOAD_FACTS, SourceFacts, cast_columns
from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.health import EndpointRule
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.pypi import valid_name
from pipelines.sources.reading import Bodies, JsonShape, malformed, structure

DAYS_KEPT = 180  # the daily series pypistats serves, and what core keeps of it


class PyPIStats:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def recent(self, name: str, etag: str | None = None) -> Fetched:
        """Downloads in the last day, week and month (`data.last_month`: djangopackages' number)."""
        fetched = await self.upstream.get(f"/api/packages/{quote(name, safe='')}/recent", etag=etag,
                                          headers={"Accept": "application/json"})
        return _refine(fetched, dict)

    async def overall(self, name: str, etag: str | None = None) -> Fetched:
        """The daily series without mirrors (180 days, oldest first)."""
        fetched = await self.upstream.get(f"/api/packages/{quote(name, safe='')}/overall?mirrors=false",
                                          etag=etag, headers={"Accept": "application/json"})
        return _refine(fetched, list)


def _refine(fetched: Fetched, data_type: type) -> Fetched:
    if fetched.status == 404:
        fetched.error_kind, fetched.error = "not_found", "HTTP 404: no download statistics for this project"
    elif fetched.ok and not (isinstance(fetched.data, dict) and isinstance(fetched.data.get("data"), data_type)):
        fetched.error_kind, fetched.error = "malformed", f"pypistats body has no 'data' {data_type.__name__}"
    return fetched


def _no_statistics(fetched: Fetched) -> bool:
    """pypistats' own 404 for a project it has no statistics for: the bare text `404`."""
    return fetched.status == 404 and (fetched.text or "").strip() == "404"


NO_STATISTICS_IS_AN_ANSWER = EndpointRule(package_answer=_no_statistics)


class PyPIStatsCrawling(Source):
    """Named by the catalogue's `pypi_name` (PEP 503), like PyPI."""

    name = "pypistats"
    kind = "package"
    catalogue_column = "pypi_name"
    env_url = "PYPISTATS_URL"
    default_url = "https://pypistats.org"
    concurrency = 2  # a small volunteer service
    min_age_hours = 24.0  # its data changes once a day: never ask more often
    marks_fetched = False  # the v4 record shows no downloads: its last_fetched stays PyPI's and the repo's

    def endpoints(self, *, with_token: bool, tuning: Tuning) -> tuple[str, ...]:
        return ("pypistats_recent", "pypistats_overall")

    def request_key(self, endpoint: str, ident: str) -> str:
        return f"{self.name}:{endpoint.removeprefix('pypistats_')}:{ident}".lower()

    def endpoint_rule(self, endpoint: str) -> EndpointRule:
        return NO_STATISTICS_IS_AN_ANSWER

    def connect(self, url: str, settings: Any, wiring: Wiring) -> PyPIStats:
        return PyPIStats(wiring.upstream(self.name, url, self.cap(wiring.tuning)))

    async def crawl(self, unit: Job, client: PyPIStats, run: Run) -> None:
        job = unit
        if not valid_name(job.ident):
            run.bad_entry(job, "not a normalised PyPI project name")
            return
        tasks = []
        if "pypistats_recent" in job.due:
            tasks.append(fetch_into(run, job, "pypistats_recent",
                                    client.recent(job.ident, job.etag("pypistats_recent"))))
        if "pypistats_overall" in job.due:
            tasks.append(fetch_into(run, job, "pypistats_overall",
                                    client.overall(job.ident, job.etag("pypistats_overall"))))
        await asyncio.gather(*tasks)

    def stats(self, client: PyPIStats) -> SourceStats:
        return SourceStats.of(client.upstream)


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

RECENT_DTYPE = pl.Struct({"data": pl.Struct({"last_day": pl.Int64(), "last_week": pl.Int64(),
                                             "last_month": pl.Int64()})})
OVERALL_DTYPE = pl.Struct({"data": pl.List(pl.Struct({"category": pl.String(), "date": pl.String(),
                                                      "downloads": pl.Int64()}))})
WITHOUT_MIRRORS = "without_mirrors"


def read_recent(docs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`/recent` -> last_month per subject (null when the body has none), malformed reasons."""
    data = pl.col("doc").struct.field("data")
    ok, bad = docs.filter(data.is_not_null()), docs.filter(data.is_null())
    recent = ok.select("subject", data.struct.field("last_month").alias("last_month"))
    return cast_columns(recent, DOWNLOAD_FACTS), malformed(bad, "pypistats recent body has no 'data' object")


def read_overall(docs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`/overall` -> the `without_mirrors` days, the last `DAYS_KEPT` up to the newest day of each series
    (a day listed twice keeps its larger count), malformed reasons."""
    data = pl.col("doc").struct.field("data")
    ok, bad = docs.filter(data.is_not_null()), docs.filter(data.is_null())
    days = (
        ok.select("subject", data.alias("d"))
        .explode("d")
        .filter(pl.col("d").is_not_null())
        .unnest("d")
        .filter(pl.col("category") == WITHOUT_MIRRORS)
        .select("subject", pl.col("date").str.to_date("%Y-%m-%d", strict=False).alias("day"), "downloads")
        .filter(pl.col("day").is_not_null() & pl.col("downloads").is_not_null())
        .group_by("subject", "day").agg(pl.col("downloads").max())
        .filter(pl.col("day") > pl.col("day").max().over("subject") - pl.duration(days=DAYS_KEPT))
        .sort("subject", "day")
    )
    return cast_columns(days, DAILY_DOWNLOAD_FACTS), malformed(bad, "pypistats overall body has no 'data' list")


class PyPIStatsReading:
    """pypistats' reading half of its `Source` (decoded column-wise)."""

    shapes: ClassVar[dict[str, JsonShape]] = {"pypistats_recent": "object", "pypistats_overall": "object"}
    structures: ClassVar[dict[str, str]] = {"pypistats_recent": structure(RECENT_DTYPE),
                                            "pypistats_overall": structure(OVERALL_DTYPE)}

    def read(self, bodies: Bodies) -> SourceFacts:
        recent, bad_recent = read_recent(bodies.docs["pypistats_recent"])
        daily, bad_overall = read_overall(bodies.docs["pypistats_overall"])
        return SourceFacts(downloads=recent, daily_downloads=daily, malformed=pl.concat([bad_recent, bad_overall]))


class PyPIStatsSource(PyPIStatsReading, PyPIStatsCrawling):
    """Both halves of the source: crawled by `PyPIStatsCrawling`, read by `PyPIStatsReading`."""


SOURCE = PyPIStatsSource()
