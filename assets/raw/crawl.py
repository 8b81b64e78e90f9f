"""The crawl: which requests each package needs, running them concurrently, archiving the answers.

`run_crawl()` is the whole thing (sync; one asyncio loop). It

1. plans: one job per unique repo_key (GitHub, GitLab, Bitbucket, Codeberg) and per unique pypi_name, with
   the request keys of ARCHITECTURE.md; keys whose newest good fetch is younger than
   `max_age_hours` are skipped unless `force`; never-seen keys first, then the oldest;
2. runs the jobs concurrently (bounded per upstream), sending `If-None-Match` with the newest good
   ETag of each key (a 304 is archived with a null body: the previous good body stays current);
3. appends every answer, good or failed (classified in `error_kind`), to the raw archive as it
   arrives, in durable batches, so a killed crawl resumes where it stopped.

Without a GitHub token, repositories go through REST (repo, participation, contributors, newest
commit). With one, repository metadata (and the newest commit: `defaultBranchRef.target`) come in
GraphQL batches (`graphql_repo`, query in `pipelines.clients.github`) and REST is kept for
participation and contributors.

Quota saver: a non-empty repository with no push for 52 weeks + `Tuning.idle_margin_days` has a
participation of 52 zeros; that row is archived without a request (status 200, `attempts` 0, header
`x-pulse-derived`). Most catalogue packages are idle, so this saves ~0.7 requests per package.

Failures never raise: each answer is archived with its `error_kind`, and the run goes on. When a
quota reset (or a secondary-limit back-off) cannot be waited for within `time_budget_s`, that source
stops taking new work, the archive is flushed and `CrawlReport.stopped_by_budget` is set; the next
run skips what was archived (staleness policy) and continues.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import polars as pl

from pipelines.clients import bitbucket as bitbucket_mod
from pipelines.clients import codeberg as codeberg_mod
from pipelines.clients import github as github_mod
from pipelines.clients import gitlab as gitlab_mod
from pipelines.clients import pypi as pypi_mod
from pipelines.clients.http import BudgetExceeded, Fetched, TokenPool, Tuning, Upstream, make_clients
from pipelines.settings import Settings, netloc
from warehouse.archive import ArchiveWriter, RawResponse, scan_archive

log_default = logging.getLogger(__name__)

GITHUB_REST_ENDPOINTS = ("repo", "participation", "contributors", "commits")
GITHUB_TOKEN_ENDPOINTS = ("graphql_repo", "participation", "contributors")
GITLAB_ENDPOINTS = ("gitlab_project", "gitlab_commits", "gitlab_contributors")
BITBUCKET_ENDPOINTS = ("bitbucket_repo", "bitbucket_commits")
CODEBERG_ENDPOINTS = ("codeberg_repo", "codeberg_commits")
ERROR_BODY_CHARS = 2000
GITHUB_MAX_CONCURRENCY = 100  # requests in flight GitHub tolerates before a secondary limit
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# keys


def request_key(source: str, endpoint: str, ident: str) -> str:
    """The archive's request key (ARCHITECTURE.md, "Raw archive")."""
    if source == "pypi":
        return f"pypi:{endpoint.removeprefix('pypi_')}:{ident}".lower()
    return f"{source}:{endpoint}:{ident}".lower()


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

    @property
    def error_count(self) -> int:
        return len(self.errors)


# --------------------------------------------------------------------------------------------
# planning


@dataclass
class KeyState:
    etag: str | None
    last_ok: datetime | None  # newest good fetch, 304, or 409 (empty repository: commits = [])
    seen: bool = True


@dataclass
class Job:
    source: str  # github | gitlab | bitbucket | codeberg | pypi
    subject: str
    ident: str  # owner/name, gitlab path, ws/slug, codeberg owner/name or pypi name (as the catalogue spells it)
    due: dict[str, KeyState | None]  # endpoint -> stored state (None = never seen)
    order: tuple[int, datetime] = (0, EPOCH)
    full_name: str | None = None  # canonical name from a stored body (renames)
    default_branch: str | None = None
    last_activity: str | None = None  # newest push / commit (ISO), from repository metadata
    nonempty: bool | None = None  # the repository is known to have commits
    project_id: int | None = None

    def key(self, endpoint: str) -> str:
        return request_key(self.source, endpoint, self.ident)

    def etag(self, endpoint: str) -> str | None:
        state = self.due.get(endpoint)
        return state.etag if state else None


@dataclass
class Plan:
    jobs: dict[str, list[Job]]
    skipped_fresh: int
    skipped_unsupported: int
    skipped_problem: int

    @property
    def planned(self) -> int:
        return sum(len(j.due) for jobs in self.jobs.values() for j in jobs)


def load_state(raw_dir: Any) -> tuple[dict[str, KeyState], dict[str, dict[str, Any]]]:
    """Stored ETag/freshness per request key, and canonical facts from stored repository bodies.

    Same rules as `warehouse.archive.latest_responses()` (newest attempt; newest good = 2xx without
    error_kind), but reading bodies only for repository metadata, so a big archive stays cheap.
    """
    scan = scan_archive(raw_dir)
    good_row = pl.col("status").is_between(200, 299) & pl.col("error_kind").is_null()
    meta = scan.select("request_key", "status", "error_kind", "etag", "fetched_at")
    newest = meta.sort("fetched_at").group_by("request_key").agg(
        pl.col("status").last(), pl.col("error_kind").last(), pl.col("fetched_at").last())
    good = meta.filter(good_row).sort("fetched_at").group_by("request_key").agg(
        pl.col("etag").last().alias("good_etag"), pl.col("fetched_at").last().alias("good_fetched_at"))
    frame = newest.join(good, on="request_key", how="left").select(
        "request_key", "status", "error_kind", "fetched_at", "good_etag", "good_fetched_at").collect()
    states: dict[str, KeyState] = {}
    for key, status, error_kind, fetched_at, good_etag, good_fetched_at in frame.iter_rows():
        last_ok = good_fetched_at
        if status in (304, 409) and error_kind is None and fetched_at is not None:
            last_ok = fetched_at if last_ok is None else max(last_ok, fetched_at)
        states[key] = KeyState(etag=good_etag, last_ok=last_ok)
    facts: dict[str, dict[str, Any]] = {}
    bodies = (
        scan.filter(pl.col("endpoint").is_in(["repo", "graphql_repo", "gitlab_project"]) & good_row
                    & pl.col("body").is_not_null())
        .select("request_key", "endpoint", "body", "fetched_at")
        .sort("fetched_at")
        .group_by("request_key")
        .agg(pl.col("endpoint").last(), pl.col("body").last())
        .collect()
    )
    for key, endpoint, body in bodies.iter_rows():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        if endpoint == "repo":
            facts[key] = {"full_name": data.get("full_name"), "default_branch": data.get("default_branch"),
                          "last_activity": data.get("pushed_at"), "nonempty": rest_nonempty(data)}
        elif endpoint == "graphql_repo":
            ref = data.get("defaultBranchRef") or {}
            facts[key] = {"full_name": data.get("nameWithOwner"), "default_branch": ref.get("name"),
                          "last_activity": graphql_last_activity(data), "nonempty": graphql_nonempty(data)}
        else:
            facts[key] = {"project_id": data.get("id")}
    return states, facts


def plan_crawl(
    packages: pl.DataFrame,
    states: dict[str, KeyState],
    facts: dict[str, dict[str, Any]],
    *,
    with_token: bool,
    now: datetime,
    force: bool,
    max_age_hours: float,
    fetch_simple: bool = True,
) -> Plan:
    """Jobs per source, in crawl order (never-seen keys first, then the oldest good fetch)."""
    max_age = timedelta(hours=max_age_hours)
    skipped_fresh = skipped_unsupported = skipped_problem = 0
    jobs: dict[str, list[Job]] = {"github": [], "gitlab": [], "bitbucket": [], "codeberg": [], "pypi": []}
    seen_subjects: set[str] = set()

    def due_endpoints(source: str, ident: str, endpoints: Iterable[str]) -> dict[str, KeyState | None]:
        nonlocal skipped_fresh
        due: dict[str, KeyState | None] = {}
        for endpoint in endpoints:
            state = states.get(request_key(source, endpoint, ident))
            if state is not None and not force and state.last_ok is not None and now - state.last_ok < max_age:
                skipped_fresh += 1
                continue
            due[endpoint] = state
        return due

    def order(due: dict[str, KeyState | None]) -> tuple[int, datetime]:
        keys = [(0, EPOCH) if s is None else (1, s.last_ok or EPOCH) for s in due.values()]
        return min(keys)

    columns = set(packages.columns)
    rows = packages.select(
        [c for c in ("repo_host", "repo_owner", "repo_name", "repo_key", "pypi_name", "repo_url_problem")
         if c in columns]
    ).iter_rows(named=True)
    for row in rows:
        repo_key = row.get("repo_key")
        problem = row.get("repo_url_problem")
        host = row.get("repo_host")
        if problem:
            skipped_problem += 1
        elif repo_key and repo_key not in seen_subjects and row.get("repo_owner") and row.get("repo_name"):
            seen_subjects.add(repo_key)
            ident = f"{row['repo_owner']}/{row['repo_name']}"
            if host == "github":
                endpoints = GITHUB_TOKEN_ENDPOINTS if with_token else GITHUB_REST_ENDPOINTS
                due = due_endpoints("github", ident, endpoints)
                if due:
                    fact = facts.get(request_key("github", endpoints[0], ident)) or facts.get(
                        request_key("github", "repo" if with_token else "graphql_repo", ident)) or {}
                    jobs["github"].append(Job("github", repo_key, ident, due, order(due),
                                              full_name=fact.get("full_name"),
                                              default_branch=fact.get("default_branch"),
                                              last_activity=fact.get("last_activity"),
                                              nonempty=fact.get("nonempty")))
            elif host == "gitlab":
                due = due_endpoints("gitlab", ident, GITLAB_ENDPOINTS)
                if due:
                    fact = facts.get(request_key("gitlab", "gitlab_project", ident)) or {}
                    jobs["gitlab"].append(Job("gitlab", repo_key, ident, due, order(due),
                                              project_id=fact.get("project_id")))
            elif host == "bitbucket":
                due = due_endpoints("bitbucket", ident, BITBUCKET_ENDPOINTS)
                if due:
                    jobs["bitbucket"].append(Job("bitbucket", repo_key, ident, due, order(due)))
            elif host == "codeberg":
                due = due_endpoints("codeberg", ident, CODEBERG_ENDPOINTS)
                if due:
                    jobs["codeberg"].append(Job("codeberg", repo_key, ident, due, order(due)))
            else:
                skipped_unsupported += 1
        name = row.get("pypi_name")
        subject = f"pypi:{name}" if name else None
        if name and subject not in seen_subjects:
            seen_subjects.add(subject)
            endpoints = ("pypi_json", "pypi_simple") if fetch_simple else ("pypi_json",)
            due = due_endpoints("pypi", name, endpoints)
            if due:
                jobs["pypi"].append(Job("pypi", subject, name, due, order(due)))
    for source_jobs in jobs.values():
        source_jobs.sort(key=lambda j: j.order)
    return Plan(jobs, skipped_fresh, skipped_unsupported, skipped_problem)


# --------------------------------------------------------------------------------------------
# running


class _Crawler:
    def __init__(
        self,
        settings: Settings,
        plan: Plan,
        writer: ArchiveWriter,
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

    # -- stopping --------------------------------------------------------------------------
    def stopped(self, source: str) -> bool:
        if self._stop_reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self._stop_reason = "time budget reached"
            self.log.warning("crawl stopping: time budget reached (the next run continues from here)")
        return self._stop_reason is not None or source in self._source_stop

    def stop(self, source: str, reason: str) -> None:
        """Stop one source (its quota cannot be waited for within the budget); others go on."""
        if source not in self._source_stop:
            self._source_stop[source] = reason
            self.log.warning("crawl of %s stopping: %s (the next run continues from here)", source, reason)

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
        settings, tuning = self.settings, self.tuning
        allowed = settings.allowed_hosts()
        tokens = settings.github_tokens
        concurrency: Counter[str] = Counter()
        for url, size in ((settings.github_api_url, tuning.github_concurrency),
                          (settings.github_graphql_url, tuning.graphql_concurrency if tokens else 0),
                          (settings.pypi_url, tuning.pypi_concurrency),
                          (settings.gitlab_api_url, tuning.gitlab_concurrency),
                          (settings.bitbucket_api_url, tuning.bitbucket_concurrency),
                          (settings.codeberg_api_url, tuning.codeberg_concurrency)):
            concurrency[netloc(url)] += size
        urls = [settings.github_api_url, settings.github_graphql_url, settings.pypi_url,
                settings.gitlab_api_url, settings.bitbucket_api_url, settings.codeberg_api_url]
        clients = make_clients(urls, concurrency, tuning, transport=self.transport)
        pool = TokenPool(tokens, deadline=self.deadline, log=self.log, per_minute=tuning.github_rest_per_minute)

        def upstream(name: str, url: str, size: int, **kw: Any) -> Upstream:
            return Upstream(name, url, clients[netloc(url)], allowed=allowed, tuning=tuning,
                            concurrency=size, log=self.log, deadline=self.deadline, **kw)

        graphql_size = tuning.graphql_concurrency if tokens else 0
        gh_rest = upstream("github", settings.github_api_url,
                           max(1, min(tuning.github_concurrency, GITHUB_MAX_CONCURRENCY - graphql_size)),
                           pool=pool, resource="core")
        gh_graphql = (upstream("github-graphql", settings.github_graphql_url, tuning.graphql_concurrency,
                               pool=pool, resource="graphql") if tokens else None)
        self.github = github_mod.GitHub(gh_rest, gh_graphql, computing_attempts=tuning.computing_attempts,
                                        computing_base_s=tuning.computing_base_s,
                                        computing_max_s=tuning.computing_max_s, max_pages=tuning.max_pages)
        pypi_up = upstream("pypi", settings.pypi_url, tuning.pypi_concurrency)
        self.pypi = pypi_mod.PyPI(pypi_up)
        gitlab_up = upstream("gitlab", settings.gitlab_api_url, tuning.gitlab_concurrency)
        self.gitlab = gitlab_mod.GitLab(gitlab_up, max_pages=tuning.max_pages)
        bitbucket_up = upstream("bitbucket", settings.bitbucket_api_url, tuning.bitbucket_concurrency)
        self.bitbucket = bitbucket_mod.Bitbucket(bitbucket_up)
        codeberg_up = upstream("codeberg", settings.codeberg_api_url, tuning.codeberg_concurrency)
        self.codeberg = codeberg_mod.Codeberg(codeberg_up, max_pages=tuning.max_pages)
        # GitLab / Codeberg commit pages reach back to the start of the 52-week window
        self.window_since = (datetime.now(UTC) - timedelta(weeks=52)).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)

        flusher = asyncio.create_task(self._flush_periodically())
        try:
            jobs = self.plan.jobs
            if tokens:
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
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            for client in clients.values():
                await client.aclose()
        report = self.report
        reasons = ([self._stop_reason] if self._stop_reason else []) + [
            f"{source}: {reason}" for source, reason in self._source_stop.items()]
        report.stop_reason = "; ".join(reasons) or None
        if reasons:
            report.stopped_by_budget = True
        report.requests_by_source = {
            "github": gh_rest.stats.requests + (gh_graphql.stats.requests if gh_graphql else 0),
            "pypi": pypi_up.stats.requests,
            "gitlab": gitlab_up.stats.requests,
            "bitbucket": bitbucket_up.stats.requests,
            "codeberg": codeberg_up.stats.requests,
        }
        statuses: Counter[int] = Counter()
        for up in (gh_rest, gh_graphql, pypi_up, gitlab_up, bitbucket_up, codeberg_up):
            if up is not None:
                statuses.update(up.stats.statuses)
        report.responses_by_status = dict(sorted(statuses.items()))
        report.github_quota_spent = gh_rest.stats.quota_spent + self.github.graphql_cost

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.tuning.flush_interval_s)
            await asyncio.to_thread(self.writer.flush)

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
            for endpoint in job.due:
                self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry",
                                                    error="owner/name not usable for a GitHub request"))
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
            tasks.append(self._github_one(job, "participation",
                                          self.github.participation(full, job.etag("participation"))))
        if "contributors" in job.due:
            tasks.append(self._github_one(job, "contributors",
                                          self.github.contributors(full, job.etag("contributors"))))
        if "commits" in job.due:
            tasks.append(self._github_one(job, "commits",
                                          self.github.newest_commit(full, branch, job.etag("commits"))))
        await asyncio.gather(*tasks)

    def _idle(self, job: Job) -> bool:
        """No push for more than 52 weeks (+ a margin): participation is known to be all zeros."""
        if not self.tuning.derive_idle_participation or not job.last_activity or not job.nonempty:
            return False  # an empty repository answers 204: ask
        when = parse_time(job.last_activity)
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

    async def _github_one(self, job: Job, endpoint: str, call: Awaitable[Fetched]) -> None:
        self.archive(job, endpoint, await call)

    # PyPI ----------------------------------------------------------------------------------
    async def _pypi(self, job: Job) -> None:
        if not pypi_mod.valid_name(job.ident):
            for endpoint in job.due:
                self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry",
                                                    error="not a normalised PyPI project name"))
            return
        tasks = []
        if "pypi_json" in job.due:
            tasks.append(self._one(job, "pypi_json", self.pypi.project_json(job.ident, job.etag("pypi_json"))))
        if "pypi_simple" in job.due:
            tasks.append(self._one(job, "pypi_simple", self.pypi.simple(job.ident, job.etag("pypi_simple"))))
        await asyncio.gather(*tasks)

    async def _one(self, job: Job, endpoint: str, call: Awaitable[Fetched]) -> None:
        self.archive(job, endpoint, await call)

    # GitLab --------------------------------------------------------------------------------
    async def _gitlab(self, job: Job) -> None:
        if not gitlab_mod.valid_path(job.ident):
            for endpoint in job.due:
                self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry",
                                                    error="not a usable GitLab project path"))
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
            for endpoint in job.due:
                self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry",
                                                    error="not a usable Bitbucket workspace/slug"))
            return
        if "bitbucket_repo" in job.due:
            fetched = await self.bitbucket.repository(workspace, slug, job.etag("bitbucket_repo"))
            self.archive(job, "bitbucket_repo", fetched)
            if not (fetched.ok or fetched.not_modified):
                return
        if "bitbucket_commits" in job.due:
            await self._one(job, "bitbucket_commits",
                            self.bitbucket.commits(workspace, slug, job.etag("bitbucket_commits")))

    # Codeberg ------------------------------------------------------------------------------
    async def _codeberg(self, job: Job) -> None:
        owner, _, name = job.ident.partition("/")
        if not codeberg_mod.valid_name(owner, name):
            for endpoint in job.due:
                self.archive(job, endpoint, Fetched(url="", status=0, attempts=0, error_kind="bad_entry",
                                                    error="not a usable Codeberg owner/name"))
            return
        if "codeberg_repo" in job.due:
            fetched = await self.codeberg.repository(owner, name, job.etag("codeberg_repo"))
            self.archive(job, "codeberg_repo", fetched)
            if not (fetched.ok or fetched.not_modified):
                return  # the repository is unavailable: do not ask for its commits now
        if "codeberg_commits" in job.due:
            await self._one(job, "codeberg_commits",
                            self.codeberg.commits(owner, name, self.window_since, job.etag("codeberg_commits")))


def _run_loop(main: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run, also from a thread that already runs a loop (notebooks): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(lambda: asyncio.run(main())).result()


def parse_time(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def rest_nonempty(repo: dict[str, Any]) -> bool | None:
    size = repo.get("size")
    return size > 0 if isinstance(size, int) else None


def graphql_nonempty(node: dict[str, Any]) -> bool | None:
    empty = node.get("isEmpty")
    return (not empty) if isinstance(empty, bool) else None


def graphql_last_activity(node: dict[str, Any]) -> str | None:
    """The later of `pushedAt` and the newest default-branch commit of a GraphQL repository node."""
    target = ((node.get("defaultBranchRef") or {}).get("target") or {})
    stamps = [node.get("pushedAt"), target.get("committedDate") if isinstance(target, dict) else None]
    parsed = [(t, parse_time(t)) for t in stamps if isinstance(t, str)]
    parsed = [(t, p) for t, p in parsed if p is not None]
    return max(parsed, key=lambda tp: tp[1])[0] if parsed else None


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
    try:
        with ArchiveWriter(settings.raw_dir, run_id) as writer:
            crawler = _Crawler(settings, plan, writer, tuning=tuning, deadline=deadline, progress=progress,
                               log=log, transport=transport)
            _run_loop(crawler.run)
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
    return report
