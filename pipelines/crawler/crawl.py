"""Running the crawl: the planned requests, concurrently, with every answer archived as it arrives.

`run_crawl()` is the whole thing (sync; one asyncio loop). It

1. plans (`pipelines.crawler.state` reads what the archive holds, `pipelines.crawler.plan` decides
   what is due): one job per unique repo_key and per unique package name, with the request keys of
   ARCHITECTURE.md; keys whose newest good fetch is younger than
   `max_age_hours` are skipped unless `force`; never-seen keys first, then the oldest;
2. runs the jobs concurrently (bounded per upstream), sending `If-None-Match` with the newest good
   ETag of each key (a 304 is archived with a null body: the previous good body stays current);
3. appends every answer, good or failed (classified in `error_kind`), to the raw archive as it
   arrives, in durable batches, so a killed crawl resumes where it stopped. Batches are written by
   a worker thread (`_ArchiveBuffer`: temporary file, fsync, rename, fsync of the folder), never on
   the event loop, so requests keep flowing while Parquet is written.

Every source crawls its own jobs (`Source.units`, `Source.crawl` in `pipelines.sources.<name>`):
the engine knows no host by name, only the registry (`pipelines.sources.registry.SOURCES`).

Failures never raise: each answer is archived with its `error_kind`, and the run goes on. When a
quota reset (or a secondary-limit back-off) cannot be waited for within `time_budget_s`, that source
stops taking new work, the archive is flushed and `CrawlReport.stopped_by_budget` is set; the next
run skips what was archived (staleness policy) and continues. Waits and stops are announced on the
`pulse.notice` logger too (`pipelines.sources.http.quota.notify`), which `pulse refresh` prints.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl

from pipelines.crawler import shutdown
from pipelines.crawler.plan import Plan, partition_of, plan_crawl
from pipelines.crawler.state import load_state
from pipelines.crawler.upstreams import Upstreams
from pipelines.settings import Settings
from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, SourceStats
from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.health import DEFAULT_RULE, Circuit, EndpointError, suspect
from pipelines.sources.http.quota import BudgetExceeded, notify
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import BY_NAME, SOURCES
from warehouse.archive import RawResponse, write_batch

log_default = logging.getLogger(__name__)

STOP_GRACE_S = 2.0  # after a stop signal, what is in flight gets this long to finish; then it is cancelled


class CrawlInterrupted(RuntimeError):
    """A stop signal ended the crawl: the archive is flushed; the step fails so nothing downstream runs."""

ERROR_BODY_CHARS = 2000


# --------------------------------------------------------------------------------------------
# report


@dataclass
class CrawlReport:
    sources: dict[str, SourceStats] = field(default_factory=dict)  # what each source reports it spent
    # (subject, source, kind, http_status, message)
    errors: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    skipped_fresh: int = 0
    stopped_by_budget: bool = False
    seconds: float = 0.0
    planned: int = 0  # request keys due this run
    archived: int = 0  # responses written to the archive
    not_modified: int = 0  # 304 answers
    jobs_by_source: dict[str, int] = field(default_factory=dict)  # subjects due per source (repos, projects)
    done_by_source: dict[str, int] = field(default_factory=dict)  # of those, worked through (answered or failed)
    skipped_unsupported: int = 0  # repos on hosts we have no client for
    skipped_problem: int = 0  # packages whose repo URL was unusable
    stop_reason: str | None = None
    interrupted_by: str | None = None  # "SIGTERM" / "SIGINT" when a stop signal ended the crawl
    # endpoint-level failures (open circuits, `pipelines.sources.http.health`): one per (source, endpoint)
    endpoint_errors: list[EndpointError] = field(default_factory=list)
    # a partitioned crawl (`run_crawl(partitions=...)`): the keys it crawled, and per key what it archived
    partitions: list[str] | None = None
    archived_by_partition: dict[str, int] = field(default_factory=dict)

    @property
    def left(self) -> int:
        """Request keys that were due but not archived (a stopped crawl): the next run's work."""
        return max(0, self.planned - self.archived)

    @property
    def requests_by_source(self) -> dict[str, int]:
        return {name: stats.requests for name, stats in self.sources.items()}

    @property
    def responses_by_status(self) -> dict[int, int]:
        statuses: Counter[int] = Counter()
        for stats in self.sources.values():
            statuses.update(stats.statuses)
        return dict(sorted(statuses.items()))

    @property
    def quota_spent(self) -> float:
        """Requests that cost quota plus query points, as the upstreams count them (GitHub's, today)."""
        return sum(stats.quota_spent for stats in self.sources.values())

    @property
    def quota_wait_s(self) -> float:
        return sum(stats.quota_wait_s for stats in self.sources.values())

    @property
    def backoffs(self) -> list[float]:
        return [delay for stats in self.sources.values() for delay in stats.backoffs]

    def summary(self) -> dict[str, Any]:
        """What the run asked, spent and left, for asset metadata and the CLI's closing lines."""
        return {
            "planned": self.planned,
            "archived": self.archived,
            "not_modified": self.not_modified,
            "left": self.left,
            "requests_by_source": self.requests_by_source,
            "errors": len(self.errors),
            "quota_spent": round(self.quota_spent, 1),
            "quota_wait_s": round(self.quota_wait_s, 1),
            "backoffs": len(self.backoffs),
            "stopped_by_budget": self.stopped_by_budget,
            "stop_reason": self.stop_reason,
            "endpoint_errors": [e.as_dict() for e in self.endpoint_errors],
            "seconds": round(self.seconds, 2),
        }


# --------------------------------------------------------------------------------------------
# archive


class _ArchiveBuffer:
    """Raw responses buffered on the event loop and written as durable batches by a worker thread.

    `add` only appends (no lock, no I/O): a full buffer is handed to the writer thread whole, so
    the crawl goes on while Parquet is encoded and fsynced. One writer thread keeps batches in
    order and the disk's fsyncs from competing. What is buffered when the loop ends (a stopped or
    cancelled crawl) is written by `close`, synchronously.
    """

    def __init__(self, raw_dir: Any, run_id: str, batch_size: int = 500, by_partition: bool = False) -> None:
        self.raw_dir = raw_dir
        self.run_id = run_id
        self.batch_size = batch_size
        self.by_partition = by_partition  # a partitioned crawl: each partition's rows in its own batches
        self.written = 0
        self.written_by_partition: Counter[str] = Counter()
        # (source, partition key or None) -> rows
        self._rows: dict[tuple[str, str | None], list[RawResponse]] = {}
        self._pending: set[asyncio.Future[None]] = set()
        self._errors: list[BaseException] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulse-archive")

    def add(self, row: RawResponse) -> None:
        slot = (row.source, partition_of(row.source, row.subject) if self.by_partition else None)
        buffer = self._rows.setdefault(slot, [])
        buffer.append(row)
        if len(buffer) >= self.batch_size:
            self._hand_over(slot)

    def _hand_over(self, slot: tuple[str, str | None]) -> None:
        rows = self._rows.pop(slot, [])
        if not rows:
            return
        write = write_batch if slot[1] is None else functools.partial(write_batch, partition=slot[1])
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, write, self.raw_dir, slot[0], rows, self.run_id)
        self._pending.add(future)
        future.add_done_callback(functools.partial(self._done, rows=len(rows), partition=slot[1]))

    def _done(self, future: asyncio.Future[None], *, rows: int, partition: str | None) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        if future.exception() is not None:
            self._errors.append(future.exception())
        else:
            self.written += rows
            if partition is not None:
                self.written_by_partition[partition] += rows

    async def flush(self) -> None:
        """Hand every buffer to the writer and wait until all batches so far are durable."""
        for slot in list(self._rows):
            self._hand_over(slot)
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        """After the loop: wait for the writer, then write what is still buffered (synchronously)."""
        self._executor.shutdown(wait=True)
        for slot in list(self._rows):
            rows = self._rows.pop(slot)
            if slot[1] is None:
                write_batch(self.raw_dir, slot[0], rows, self.run_id)
            else:
                write_batch(self.raw_dir, slot[0], rows, self.run_id, partition=slot[1])
            self.written += len(rows)
            if slot[1] is not None:
                self.written_by_partition[slot[1]] += len(rows)
        if self._errors:
            raise self._errors[0]



# --------------------------------------------------------------------------------------------
# running


class _Crawler:
    """One crawl's loop: every source's units of work, concurrently, each answer archived (`Run`)."""

    def __init__(
        self,
        settings: Settings,
        plan: Plan,
        writer: _ArchiveBuffer,
        *,
        tuning: Tuning,
        deadline: float | None,
        progress: Callable[[str, int, int], None] | None,
        log: logging.Logger,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.plan = plan
        self.writer = writer
        self.tuning = tuning
        self.deadline = deadline
        self.progress = progress
        self.log = log
        self.report = CrawlReport(skipped_fresh=plan.skipped_fresh, planned=plan.planned,
                                  skipped_unsupported=plan.skipped_unsupported,
                                  skipped_problem=plan.skipped_problem,
                                  jobs_by_source={s: len(j) for s, j in plan.jobs.items()})
        # commit pages reach back to the start of the 52-week window
        self.window_since = (datetime.now(UTC) - timedelta(weeks=52)).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)
        self._stop_reason: str | None = None
        # endpoint health: one circuit per (source, endpoint), thresholds capped by what is planned
        self.circuits: dict[tuple[str, str], Circuit] = {}
        self._planned_by_endpoint: Counter[tuple[str, str]] = Counter(
            (source, endpoint) for source, jobs in plan.jobs.items() for job in jobs for endpoint in job.due)
        self.failing_endpoints: set[str] = set()  # endpoint keys whose newest archived row is a failure
        self._source_stop: dict[str, str] = {}
        self._done: Counter[str] = Counter()

    # -- endpoint health --------------------------------------------------------------------
    def circuit(self, source: str, endpoint: str) -> Circuit:
        key = (source, endpoint)
        if key not in self.circuits:
            rule = BY_NAME[source].endpoint_rule(endpoint) if source in BY_NAME else DEFAULT_RULE
            threshold = min(rule.threshold, max(2, self._planned_by_endpoint[key]))
            self.circuits[key] = Circuit(source, endpoint, rule, threshold)
        return self.circuits[key]

    def endpoint_open(self, source: str, endpoint: str) -> bool:
        circuit = self.circuits.get((source, endpoint))
        return circuit is not None and circuit.open

    def _settle_endpoints(self) -> None:
        """After the loop: held answers of undecided endpoints are archived as they are (too few to
        judge); each open circuit is archived as one endpoint row (error_kind `endpoint`), and an
        endpoint that failed last time and answered this time gets a row saying it works again."""
        for circuit in self.circuits.values():
            if circuit.state == "unknown":
                for job, fetched, _ in circuit.pending:
                    self._write(job, circuit.endpoint, fetched)
                circuit.pending = []
            error = circuit.error
            key = f"{circuit.source}:endpoint:{circuit.endpoint}"
            subject = f"endpoint:{circuit.source}:{circuit.endpoint}"
            if error is not None:
                self.report.endpoint_errors.append(error)
                notify(self.log, f"{error.message} (its answers were not recorded as package facts)")
                self.writer.add(RawResponse(
                    request_key=key, source=circuit.source, endpoint="endpoint", subject=subject, url=error.url,
                    status=error.status, body=error.excerpt or None, etag=None,
                    headers={"content-type": error.content_type} if error.content_type else {},
                    error_kind="endpoint", error=error.message, attempts=error.requests))
            elif circuit.state == "healthy" and key in self.failing_endpoints:
                self.writer.add(RawResponse(
                    request_key=key, source=circuit.source, endpoint="endpoint", subject=subject, url="",
                    status=200, body=None, etag=None, headers={}, error_kind=None, error=None, attempts=0))

    # -- archive (the `Run` a source reports to) ----------------------------------------------
    def archive(self, job: Job, endpoint: str, fetched: Fetched) -> None:
        """Archive an answer, unless its endpoint looks broken (held until judged, dropped when open)."""
        circuit = self.circuit(job.source, endpoint)
        signature = suspect(fetched, circuit.rule)
        if signature is None:
            if fetched.attempts > 0 and (fetched.ok or fetched.not_modified):  # a 404 proves nothing
                for held_job, held, _ in circuit.succeeded():
                    self._write(held_job, endpoint, held)
            elif fetched.attempts > 0 and fetched.error_kind not in (None, "rate_limited", "bad_entry") \
                    and circuit.other_failure(job, fetched) != "archive":
                return
            self._write(job, endpoint, fetched)
        elif circuit.failed(job, fetched, signature) == "archive":
            self._write(job, endpoint, fetched)

    def _write(self, job: Job, endpoint: str, fetched: Fetched) -> None:
        body = fetched.text
        if fetched.status == 304 or fetched.status == 0:
            body = None
        elif fetched.error_kind is not None and body is not None:
            body = body[:ERROR_BODY_CHARS]
        self.writer.add(RawResponse(
            request_key=job.key(endpoint),
            source=job.source,
            endpoint=endpoint,
            subject=job.subject,
            url=fetched.url,
            status=fetched.status,
            body=body,
            etag=fetched.etag,
            headers=fetched.headers,
            error_kind=fetched.error_kind,
            error=fetched.error,
            attempts=max(0, fetched.attempts),
        ))
        self.report.archived += 1
        if fetched.status == 304:
            self.report.not_modified += 1
        if fetched.error_kind is not None:
            self.report.errors.append((job.subject, job.source, fetched.error_kind, fetched.status,
                                       fetched.error or fetched.error_kind))

    def bad_entry(self, job: Job, why: str) -> None:
        """Archive every due key of a job that cannot be asked for, so the reason shows in crawl_errors."""
        for endpoint in job.due:
            self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry", error=why))

    # -- stopping --------------------------------------------------------------------------
    def stopped(self, source: str) -> bool:
        """Take no new work: the time budget, or an endpoint of the source that is down for good."""
        if self._budget_stopped(source):
            return True
        mine = [c for (name, _), c in self.circuits.items() if name == source]
        healthy = any(c.state == "healthy" for c in mine)
        return any(c.host_wide(healthy) for c in mine)

    def _budget_stopped(self, source: str) -> bool:
        signum = shutdown.requested()
        if signum is not None and self.report.interrupted_by is None:
            self.report.interrupted_by = shutdown.name(signum)
            self._stop_reason = f"{self.report.interrupted_by} received"
        if self._stop_reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self._stop_reason = "time budget reached"
            notify(self.log, "crawl stopping: time budget reached (the next run continues from here)")
        return self._stop_reason is not None or source in self._source_stop

    def stop(self, source: str, reason: str) -> None:
        """Stop one source (its quota cannot be waited for within the budget); others go on."""
        reason = reason.removeprefix(f"{source}: ")
        if source not in self._source_stop:
            self._source_stop[source] = reason
            notify(self.log, f"{source}: stopping at the time budget: {reason} (the next run continues from here)")

    # -- running ---------------------------------------------------------------------------
    async def _guard(self, source: str, job_count: int, unit: Any, handle: Callable[[Any], Awaitable[None]],
                     size: int) -> None:
        try:
            await handle(unit)
        except BudgetExceeded as exc:
            self.stop(source, str(exc))
        except Exception as exc:  # a broken package never stops the run
            self.log.exception("crawl of %s failed unexpectedly", source)
            self.report.errors.append((getattr(unit, "subject", source), source, "transient", 0,
                                       f"unexpected {type(exc).__name__}"))
        finally:
            self._done[source] += size
            if self.progress is not None:
                self.progress(source, self._done[source], job_count)

    async def drive(self, source: str, units: list[tuple[Any, int]], handle: Callable[[Any], Awaitable[None]]
                    ) -> None:
        total = sum(size for _, size in units)
        slots = asyncio.Semaphore(self.tuning.jobs_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        for unit, size in units:
            await slots.acquire()
            if self.stopped(source):
                slots.release()
                if self._budget_stopped(source):
                    self.report.stopped_by_budget = True
                break
            task = asyncio.create_task(self._guard(source, total, unit, handle, size))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
        if tasks:
            await asyncio.gather(*tasks)

    async def _source(self, source: Source, client: Any) -> None:
        jobs = self.plan.jobs[source.name]
        await source.prepare(client, jobs)
        await self.drive(source.name, source.units(client, jobs, self.tuning),
                         functools.partial(source.crawl, client=client, run=self))

    async def run(self) -> None:
        upstreams = Upstreams.connect(self.settings, self.tuning, deadline=self.deadline, log=self.log,
                                      transport=self.transport)
        flusher = asyncio.create_task(self._flush_periodically())
        sources = asyncio.gather(*(self._source(source, upstreams.by_source[source.name]) for source in SOURCES))
        watcher = asyncio.create_task(self._watch_stop_signal(sources))
        try:
            await asyncio.wait({sources})
            # cancelled by `_watch_stop_signal` (a cancelled gather holds a CancelledError) is a stop
            cancelled = sources.cancelled() or isinstance(sources.exception(), asyncio.CancelledError)
            if not (cancelled and self.report.interrupted_by):
                sources.result()  # raise what the sources raised
            self._settle_endpoints()
            await self.writer.flush()
        finally:
            for task in (flusher, watcher):
                task.cancel()
            await asyncio.gather(flusher, watcher, return_exceptions=True)
            await upstreams.aclose()
        reasons = ([self._stop_reason] if self._stop_reason else []) + [
            f"{source}: {reason}" for source, reason in self._source_stop.items()]
        self.report.stop_reason = "; ".join(reasons) or None
        if reasons:
            self.report.stopped_by_budget = True
        self.report.sources = upstreams.stats()
        self.report.done_by_source = dict(self._done)

    async def _watch_stop_signal(self, sources: asyncio.Future[Any]) -> None:
        """A stop signal: no new work (`stopped`), what is in flight gets `STOP_GRACE_S`, then is cancelled.

        A cancelled unit loses only its unanswered requests: they are still due on the next run.
        """
        while shutdown.requested() is None:
            await asyncio.sleep(0.05)
        self.stopped("")
        notify(self.log, f"crawl stopping: {self.report.interrupted_by} received; flushing the archive "
                         "(the next run continues from here)")
        done, _ = await asyncio.wait({sources}, timeout=STOP_GRACE_S)
        if not done:
            sources.cancel()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.tuning.flush_interval_s)
            await self.writer.flush()


def _run_loop(main: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run, also from a thread that already runs a loop (notebooks): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(lambda: asyncio.run(main())).result()




# --------------------------------------------------------------------------------------------
# public API


def run_crawl(
    settings: Settings,
    packages: pl.DataFrame,
    *,
    run_id: str,
    force: bool = False,
    max_age_hours: float = 20.0,
    time_budget_s: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    log: logging.Logger | None = None,
    tuning: Tuning | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    partitions: list[str] | None = None,
) -> CrawlReport:
    """Crawl every due request of `packages` (catalogue.packages columns) into the raw archive.

    `partitions`: only the subjects of these crawl partition keys (`pipelines.crawler.plan`), each
    partition's answers written in its own batches (None: every subject, batches per source).
    """
    log = log or log_default
    tuning = tuning or Tuning()
    started = time.monotonic()
    deadline = started + time_budget_s if time_budget_s is not None else None
    states, facts = load_state(settings.raw_dir)
    plan = plan_crawl(packages, states, facts, with_token=settings.with_token, now=datetime.now(UTC),
                      force=force, max_age_hours=max_age_hours, tuning=tuning, partitions=partitions)
    log.info(
        "crawl plan: %d request keys due (%s jobs), %d fresh keys skipped (%s)",
        plan.planned,
        ", ".join(f"{s} {len(j)}" for s, j in plan.jobs.items()),
        plan.skipped_fresh,
        "with a token" if settings.with_token else "no token",
    )
    # httpx logs every request at INFO: tens of thousands of lines per crawl; keep them out
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    writer = _ArchiveBuffer(settings.raw_dir, run_id, by_partition=partitions is not None)
    try:
        crawler = _Crawler(settings, plan, writer, tuning=tuning, deadline=deadline, progress=progress,
                           log=log, transport=transport)
        crawler.failing_endpoints = {key for key, state in states.items() if ":endpoint:" in key and state.failing}
        try:
            with shutdown.stop_on_signals():
                _run_loop(crawler.run)
        finally:
            writer.close()
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    report = crawler.report
    report.seconds = time.monotonic() - started
    if partitions is not None:
        report.partitions = list(partitions)
        report.archived_by_partition = {key: writer.written_by_partition.get(key, 0) for key in partitions}
    log.info(
        "crawl done in %.1f s: %d responses archived (%d not modified), %d errors, quota spent %.1f%s",
        report.seconds, report.archived, report.not_modified, len(report.errors), report.quota_spent,
        f"; stopped early: {report.stop_reason}" if report.stopped_by_budget else "",
    )
    if report.interrupted_by:
        raise CrawlInterrupted(f"stopped by {report.interrupted_by}: {report.archived} responses archived, "
                               f"{report.left} requests left for the next run")
    if report.stopped_by_budget:  # `pulse refresh` prints this in its closing summary
        log.warning("crawl stopped by the time budget: %d requests left for the next run", report.left)
    return report
