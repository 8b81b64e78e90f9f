"""Running the crawl: the planned requests, concurrently, with every answer archived as it arrives.

`run_crawl()` is the whole thing (sync; one asyncio loop). It

1. plans (`pipelines.crawler.state` reads what the archive holds, `pipelines.crawler.plan` decides what is due):
   one job per unique repo_key (GitHub, GitLab, Bitbucket, Codeberg) and per unique pypi_name, with
   the request keys of ARCHITECTURE.md; keys whose newest good fetch is younger than
   `max_age_hours` are skipped unless `force`; never-seen keys first, then the oldest;
2. runs the jobs concurrently (bounded per upstream), sending `If-None-Match` with the newest good
   ETag of each key (a 304 is archived with a null body: the previous good body stays current);
3. appends every answer, good or failed (classified in `error_kind`), to the raw archive as it
   arrives, in durable batches, so a killed crawl resumes where it stopped. Batches are written by
   a worker thread (`_ArchiveBuffer`: temporary file, fsync, rename, fsync of the folder), never on
   the event loop, so requests keep flowing while Parquet is written.

Without a GitHub token, repositories go through REST (repo, participation, contributors, newest
commit). With one, repository metadata (and the newest commit: `defaultBranchRef.target`) come in
GraphQL batches (`graphql_repo`, query in `pipelines.sources.github`) and REST is kept for
participation and contributors.

Quota saver: a non-empty repository with no push for 52 weeks + `Tuning.idle_margin_days` has a
participation of 52 zeros; that row is archived without a request (status 200, `attempts` 0, header
`x-pulse-derived`). Most catalogue packages are idle, so this saves ~0.7 requests per package.

Failures never raise: each answer is archived with its `error_kind`, and the run goes on. When a
quota reset (or a secondary-limit back-off) cannot be waited for within `time_budget_s`, that source
stops taking new work, the archive is flushed and `CrawlReport.stopped_by_budget` is set; the next
run skips what was archived (staleness policy) and continues. Waits and stops are announced on the
`pulse.notice` logger too (`pipelines.sources.http.quota.notify`), which `pulse refresh` prints.

The planning names (`request_key`, `KeyState`, `Job`, `Plan`, `load_state`, `plan_crawl`, ...) are
re-exported here, where callers have always imported them from.
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
import orjson
import polars as pl

from pipelines.crawler.plan import (
    BITBUCKET_ENDPOINTS,
    CODEBERG_ENDPOINTS,
    EPOCH,
    GITHUB_REST_ENDPOINTS,
    GITHUB_TOKEN_ENDPOINTS,
    GITLAB_ENDPOINTS,
    Job,
    Plan,
    plan_crawl,
    request_key,
)
from pipelines.crawler.state import (
    KeyState,
    graphql_last_activity,
    graphql_nonempty,
    load_state,
    rest_nonempty,
)
from pipelines.crawler.upstreams import GITHUB_MAX_CONCURRENCY, Upstreams
from pipelines.settings import Settings
from pipelines.sources import bitbucket as bitbucket_mod
from pipelines.sources import codeberg as codeberg_mod
from pipelines.sources import github as github_mod
from pipelines.sources import gitlab as gitlab_mod
from pipelines.sources import pypi as pypi_mod
from pipelines.sources.http.quota import notify
from pipelines.sources.http.upstream import BudgetExceeded, Fetched, Tuning
from pipelines.sources.times import parse_iso
from warehouse.archive import RawResponse, write_batch

__all__ = [
    "BITBUCKET_ENDPOINTS",
    "CODEBERG_ENDPOINTS",
    "EPOCH",
    "ERROR_BODY_CHARS",
    "GITHUB_MAX_CONCURRENCY",
    "GITHUB_REST_ENDPOINTS",
    "GITHUB_TOKEN_ENDPOINTS",
    "GITLAB_ENDPOINTS",
    "CrawlReport",
    "Job",
    "KeyState",
    "Plan",
    "graphql_last_activity",
    "graphql_nonempty",
    "load_state",
    "plan_crawl",
    "request_key",
    "rest_nonempty",
    "run_crawl",
]

log_default = logging.getLogger(__name__)

ERROR_BODY_CHARS = 2000


# --------------------------------------------------------------------------------------------
# report


@dataclass
class CrawlReport:
    requests_by_source: dict[str, int] = field(default_factory=dict)
    responses_by_status: dict[int, int] = field(default_factory=dict)
    # (subject, source, kind, http_status, message)
    errors: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    skipped_fresh: int = 0
    stopped_by_budget: bool = False
    github_quota_spent: float = 0.0
    seconds: float = 0.0
    planned: int = 0  # request keys due this run
    archived: int = 0  # responses written to the archive
    not_modified: int = 0  # 304 answers
    jobs_by_source: dict[str, int] = field(default_factory=dict)
    skipped_unsupported: int = 0  # repos on hosts we have no client for
    skipped_problem: int = 0  # packages whose repo URL was unusable
    stop_reason: str | None = None
    github_quota_wait_s: float = 0.0  # seconds spent waiting for GitHub quota resets
    github_backoffs: list[float] = field(default_factory=list)  # secondary-limit back-offs (s)

    @property
    def error_count(self) -> int:
        return len(self.errors)

    @property
    def left(self) -> int:
        """Request keys that were due but not archived (a stopped crawl): the next run's work."""
        return max(0, self.planned - self.archived)

    def summary(self) -> dict[str, Any]:
        """What the run asked, spent and left, for asset metadata and the CLI's closing lines."""
        return {
            "planned": self.planned,
            "archived": self.archived,
            "not_modified": self.not_modified,
            "left": self.left,
            "requests_by_source": dict(self.requests_by_source),
            "errors": len(self.errors),
            "github_quota_spent": round(self.github_quota_spent, 1),
            "github_quota_wait_s": round(self.github_quota_wait_s, 1),
            "github_backoffs": len(self.github_backoffs),
            "stopped_by_budget": self.stopped_by_budget,
            "stop_reason": self.stop_reason,
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

    def __init__(self, raw_dir: Any, run_id: str, batch_size: int = 500) -> None:
        self.raw_dir = raw_dir
        self.run_id = run_id
        self.batch_size = batch_size
        self.written = 0
        self._rows: dict[str, list[RawResponse]] = {}
        self._pending: set[asyncio.Future[None]] = set()
        self._errors: list[BaseException] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulse-archive")

    def add(self, row: RawResponse) -> None:
        buffer = self._rows.setdefault(row.source, [])
        buffer.append(row)
        if len(buffer) >= self.batch_size:
            self._hand_over(row.source)

    def _hand_over(self, source: str) -> None:
        rows = self._rows.pop(source, [])
        if not rows:
            return
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, write_batch, self.raw_dir, source, rows, self.run_id)
        self._pending.add(future)
        future.add_done_callback(functools.partial(self._done, rows=len(rows)))

    def _done(self, future: asyncio.Future[None], *, rows: int) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        if future.exception() is not None:
            self._errors.append(future.exception())
        else:
            self.written += rows

    async def flush(self) -> None:
        """Hand every buffer to the writer and wait until all batches so far are durable."""
        for source in list(self._rows):
            self._hand_over(source)
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        """After the loop: wait for the writer, then write what is still buffered (synchronously)."""
        self._executor.shutdown(wait=True)
        for source in list(self._rows):
            rows = self._rows.pop(source)
            write_batch(self.raw_dir, source, rows, self.run_id)
            self.written += len(rows)
        if self._errors:
            raise self._errors[0]



# --------------------------------------------------------------------------------------------
# running


class _Crawler:
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
        self._stop_reason: str | None = None
        self._source_stop: dict[str, str] = {}
        self._done: Counter[str] = Counter()

    # -- archive ---------------------------------------------------------------------------
    def archive(self, job: Job, endpoint: str, fetched: Fetched) -> None:
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

    def _bad_entry(self, job: Job, why: str) -> None:
        """Archive every due key of a job that cannot be asked for, so the reason shows in crawl_errors."""
        for endpoint in job.due:
            self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry", error=why))

    async def _one(self, job: Job, endpoint: str, call: Awaitable[Fetched]) -> None:
        self.archive(job, endpoint, await call)

    # -- stopping --------------------------------------------------------------------------
    def stopped(self, source: str) -> bool:
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
                self.report.stopped_by_budget = True
                break
            task = asyncio.create_task(self._guard(source, total, unit, handle, size))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
        if tasks:
            await asyncio.gather(*tasks)

    # -- sources ---------------------------------------------------------------------------
    async def run(self) -> None:
        upstreams = Upstreams.connect(self.settings, self.tuning, deadline=self.deadline, log=self.log,
                                      transport=self.transport)
        self.github, self.pypi = upstreams.github, upstreams.pypi
        self.gitlab, self.bitbucket, self.codeberg = upstreams.gitlab, upstreams.bitbucket, upstreams.codeberg
        # GitLab / Codeberg commit pages reach back to the start of the 52-week window
        self.window_since = (datetime.now(UTC) - timedelta(weeks=52)).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)

        flusher = asyncio.create_task(self._flush_periodically())
        try:
            jobs = self.plan.jobs
            if jobs["github"]:
                await self.github.prime_quota()  # free: what every token has left, before spending
            if self.settings.github_tokens:
                github_units = self._github_token_units(jobs["github"])
                github_handle = self._github_unit
            else:
                github_units = [(job, 1) for job in jobs["github"]]
                github_handle = self._github_rest
            await asyncio.gather(
                self.drive("github", github_units, github_handle),
                self.drive("pypi", [(job, 1) for job in jobs["pypi"]], self._pypi),
                self.drive("gitlab", [(job, 1) for job in jobs["gitlab"]], self._gitlab),
                self.drive("bitbucket", [(job, 1) for job in jobs["bitbucket"]], self._bitbucket),
                self.drive("codeberg", [(job, 1) for job in jobs["codeberg"]], self._codeberg),
            )
            await self.writer.flush()
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await upstreams.aclose()
        report = self.report
        reasons = ([self._stop_reason] if self._stop_reason else []) + [
            f"{source}: {reason}" for source, reason in self._source_stop.items()]
        report.stop_reason = "; ".join(reasons) or None
        if reasons:
            report.stopped_by_budget = True
        report.requests_by_source = upstreams.requests_by_source()
        report.responses_by_status = upstreams.responses_by_status()
        report.github_quota_spent = upstreams.github_quota_spent()
        report.github_quota_wait_s = upstreams.pool.waited_s
        report.github_backoffs = upstreams.github_backoffs()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.tuning.flush_interval_s)
            await self.writer.flush()

    # GitHub --------------------------------------------------------------------------------
    def _github_token_units(self, jobs: list[Job]) -> list[tuple[Any, int]]:
        units: list[tuple[Any, int]] = []
        batch: list[Job] = []
        for job in jobs:
            if "graphql_repo" in job.due and _valid_github(job):
                batch.append(job)
                if len(batch) >= self.tuning.graphql_batch:
                    units.append((batch, len(batch)))
                    batch = []
            else:
                units.append((job, 1))
        if batch:
            units.append((batch, len(batch)))
        return units

    async def _github_unit(self, unit: Job | list[Job]) -> None:
        if isinstance(unit, Job):
            await self._github_rest(unit)
            return
        batch = [job for job in unit if not self.stopped("github")]
        if not batch:
            return
        names = [tuple((job.full_name or job.ident).split("/", 1)) for job in batch]
        results = await self.github.graphql_repos(names)
        follow_ups = []
        for job, result in zip(batch, results, strict=True):
            fetched = result.fetched
            self.archive(job, "graphql_repo", fetched)
            if fetched.ok:
                node = fetched.data
                job.full_name = node.get("nameWithOwner") or job.full_name
                job.default_branch = (node.get("defaultBranchRef") or {}).get("name") or job.default_branch
                job.last_activity = graphql_last_activity(node) or job.last_activity
                job.nonempty = graphql_nonempty(node)
            elif fetched.error_kind in ("gone", "blocked"):
                continue  # nothing else to ask about this repository now
            follow_ups.append(self._github_rest(job, metadata_done=True))
        await asyncio.gather(*follow_ups)

    async def _github_rest(self, job: Job, metadata_done: bool = False) -> None:
        if not _valid_github(job):
            self._bad_entry(job, "owner/name not usable for a GitHub request")
            return
        full = job.full_name or job.ident
        branch = job.default_branch
        if "repo" in job.due and not metadata_done:
            fetched = await self.github.repo(full, job.etag("repo"))
            self.archive(job, "repo", fetched)
            if fetched.ok:
                full = str(fetched.data.get("full_name") or full)
                branch = fetched.data.get("default_branch") or branch
                job.last_activity = fetched.data.get("pushed_at") or job.last_activity
                job.nonempty = rest_nonempty(fetched.data)
            elif not fetched.not_modified:
                return  # the repository is unavailable: do not spend quota on the rest now
        tasks = []
        if "participation" in job.due and self._idle(job):
            self.archive(job, "participation", self._idle_participation(full, job))
        elif "participation" in job.due:
            tasks.append(self._one(job, "participation",
                                   self.github.participation(full, job.etag("participation"))))
        if "contributors" in job.due:
            tasks.append(self._one(job, "contributors",
                                   self.github.contributors(full, job.etag("contributors"))))
        if "commits" in job.due:
            tasks.append(self._one(job, "commits",
                                   self.github.newest_commit(full, branch, job.etag("commits"))))
        await asyncio.gather(*tasks)

    def _idle(self, job: Job) -> bool:
        """No push for more than 52 weeks (+ a margin): participation is known to be all zeros."""
        if not self.tuning.derive_idle_participation or not job.last_activity or not job.nonempty:
            return False  # an empty repository answers 204: ask
        when = parse_iso(job.last_activity)
        limit = datetime.now(UTC) - timedelta(weeks=52, days=self.tuning.idle_margin_days)
        return when is not None and when < limit

    def _idle_participation(self, full: str, job: Job) -> Fetched:
        """The participation GitHub would answer for an idle repository, without spending quota.

        Archived with status 200, `attempts` 0 and an `x-pulse-derived` header naming the evidence,
        so a reader can always tell it from an upstream answer.
        """
        zeros = [0] * 52
        body = orjson.dumps({"all": zeros, "owner": zeros}).decode()
        return Fetched(url=github_mod.repo_path(full) + "/stats/participation", status=200, text=body,
                       attempts=0, headers={"x-pulse-derived": f"no push since {job.last_activity}"})

    # PyPI ----------------------------------------------------------------------------------
    async def _pypi(self, job: Job) -> None:
        if not pypi_mod.valid_name(job.ident):
            self._bad_entry(job, "not a normalised PyPI project name")
            return
        tasks = []
        if "pypi_json" in job.due:
            tasks.append(self._one(job, "pypi_json",
                                   self.pypi.project_json(job.ident, job.etag("pypi_json"), job.path)))
        if "pypi_simple" in job.due:
            tasks.append(self._one(job, "pypi_simple", self.pypi.simple(job.ident, job.etag("pypi_simple"))))
        await asyncio.gather(*tasks)

    # GitLab --------------------------------------------------------------------------------
    async def _gitlab(self, job: Job) -> None:
        if not gitlab_mod.valid_path(job.ident):
            self._bad_entry(job, "not a usable GitLab project path")
            return
        project: int | str = job.project_id or job.ident
        if "gitlab_project" in job.due:
            fetched = await self.gitlab.project(job.ident, job.etag("gitlab_project"))
            self.archive(job, "gitlab_project", fetched)
            if fetched.ok and isinstance(fetched.data.get("id"), int):
                project = fetched.data["id"]
            elif not fetched.not_modified:
                return
        tasks = []
        if "gitlab_commits" in job.due:
            tasks.append(self._one(job, "gitlab_commits",
                                   self.gitlab.commits(project, self.window_since, job.etag("gitlab_commits"))))
        if "gitlab_contributors" in job.due:
            tasks.append(self._one(job, "gitlab_contributors",
                                   self.gitlab.contributors(project, job.etag("gitlab_contributors"))))
        await asyncio.gather(*tasks)

    # Bitbucket -----------------------------------------------------------------------------
    async def _bitbucket(self, job: Job) -> None:
        workspace, _, slug = job.ident.partition("/")
        if not bitbucket_mod.valid_name(workspace, slug):
            self._bad_entry(job, "not a usable Bitbucket workspace/slug")
            return
        await self._repository_then_commits(
            job,
            lambda etag: self.bitbucket.repository(workspace, slug, etag),
            lambda etag: self.bitbucket.commits(workspace, slug, self.window_since, etag),
        )

    # Codeberg ------------------------------------------------------------------------------
    async def _codeberg(self, job: Job) -> None:
        owner, _, name = job.ident.partition("/")
        if not codeberg_mod.valid_name(owner, name):
            self._bad_entry(job, "not a usable Codeberg owner/name")
            return
        await self._repository_then_commits(
            job,
            lambda etag: self.codeberg.repository(owner, name, etag),
            lambda etag: self.codeberg.commits(owner, name, self.window_since, etag),
        )

    # Bitbucket and Codeberg ----------------------------------------------------------------
    async def _repository_then_commits(
        self,
        job: Job,
        repository: Callable[[str | None], Awaitable[Fetched]],
        commits: Callable[[str | None], Awaitable[Fetched]],
    ) -> None:
        """`<source>_repo`, then `<source>_commits` only when the repository is there (or unchanged)."""
        repo_endpoint, commits_endpoint = f"{job.source}_repo", f"{job.source}_commits"
        if repo_endpoint in job.due:
            fetched = await repository(job.etag(repo_endpoint))
            self.archive(job, repo_endpoint, fetched)
            if not (fetched.ok or fetched.not_modified):
                return  # the repository is unavailable: do not ask for its commits now
        if commits_endpoint in job.due:
            await self._one(job, commits_endpoint, commits(job.etag(commits_endpoint)))


def _run_loop(main: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run, also from a thread that already runs a loop (notebooks): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(lambda: asyncio.run(main())).result()



def _valid_github(job: Job) -> bool:
    owner, _, name = (job.full_name or job.ident).partition("/")
    return github_mod.valid_name(owner, name)



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
) -> CrawlReport:
    """Crawl every due request of `packages` (catalogue.packages columns) into the raw archive."""
    log = log or log_default
    tuning = tuning or Tuning()
    started = time.monotonic()
    deadline = started + time_budget_s if time_budget_s is not None else None
    states, facts = load_state(settings.raw_dir)
    plan = plan_crawl(packages, states, facts, with_token=bool(settings.github_tokens),
                      now=datetime.now(UTC), force=force, max_age_hours=max_age_hours,
                      fetch_simple=tuning.fetch_simple)
    log.info(
        "crawl plan: %d request keys due (%s jobs), %d fresh keys skipped%s",
        plan.planned,
        ", ".join(f"{s} {len(j)}" for s, j in plan.jobs.items()),
        plan.skipped_fresh,
        " (GitHub via GraphQL + REST)" if settings.github_tokens else " (GitHub via REST, no token)",
    )
    # httpx logs every request at INFO: tens of thousands of lines per crawl; keep them out
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    writer = _ArchiveBuffer(settings.raw_dir, run_id)
    try:
        crawler = _Crawler(settings, plan, writer, tuning=tuning, deadline=deadline, progress=progress,
                           log=log, transport=transport)
        try:
            _run_loop(crawler.run)
        finally:
            writer.close()
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    report = crawler.report
    report.seconds = time.monotonic() - started
    log.info(
        "crawl done in %.1f s: %d responses archived (%d not modified), %d errors, GitHub quota %.1f%s",
        report.seconds, report.archived, report.not_modified, len(report.errors), report.github_quota_spent,
        f"; stopped early: {report.stop_reason}" if report.stopped_by_budget else "",
    )
    if report.stopped_by_budget:  # `pulse refresh` prints this in its closing summary
        log.warning("crawl stopped by the time budget: %d requests left for the next run", report.left)
    return report
