"""Running the `refresh` job in-process, the way `pulse refresh` and `pulse demo` do.

No daemon is needed: the job executes in this process against a Dagster instance that lives
under PULSE_HOME unless DAGSTER_HOME says otherwise, with the writer pool limited to one step.

A refresh killed outright (SIGKILL, OOM, power loss) cannot tell Dagster it ended: its run stays
STARTED and keeps its `warehouse_writer` pool slot, so the next run's steps would wait for that slot
forever. Each CLI refresh therefore holds an exclusive lock on `<DAGSTER_HOME>/pulse-refresh.lock`
(released by the kernel when the process dies, however it dies) and tags its run `pulse/cli`; the
next refresh, once it holds the lock, knows that every unfinished run with that tag is dead, marks
it failed and frees its slots (`_recover_dead_runs`). A second refresh started while one is running
does not queue behind it: it fails at once with one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from filelock import FileLock, Timeout

from pipelines.settings import Settings
from warehouse.db import connect_reader

INSTANCE_YAML = """\
# Written by `pulse`: Dagster's instance for runs started from the CLI.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1      # warehouse_writer: one step at a time writes the DuckDB file
  runs:
    max_concurrent_runs: 1
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Use DAGSTER_HOME when set, else keep the instance under PULSE_HOME/dagster."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home)
    path = settings.home / "dagster"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(path)
    return path


RunResult = dg.ExecuteInProcessResult | dg.JobExecutionResult  # in this process, or the multiprocess executor's
RUN_TAG = "pulse/cli"  # on runs started by `run_refresh` (value: refresh | replay)
LOCK_FILE = "pulse-refresh.lock"


class RefreshBusy(RuntimeError):
    """Another refresh holds this Dagster instance."""


@contextlib.contextmanager
def refresh_lock(dagster_home: Path) -> Iterator[None]:
    """Exclusive, non-blocking lock of one Dagster instance for the duration of a refresh.

    The same `filelock` as the warehouse's writer lock (portable; released by the OS when the process
    dies, so a SIGKILLed refresh never leaves it held). The holder's pid sits beside it for the message.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    holder_file = dagster_home / (LOCK_FILE + ".pid")
    lock = FileLock(dagster_home / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = holder_file.read_text().strip() if holder_file.exists() else "?"
        raise RefreshBusy(f"another refresh is running on {dagster_home} (pid {holder or '?'})") from None
    try:
        holder_file.write_text(str(os.getpid()))
        yield
    finally:
        lock.release()


def _recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark unfinished `pulse/cli` runs failed and free their pool slots (call with the lock held:
    no such run can still be alive). Returns their run ids."""
    unfinished = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.QUEUED]
    records = instance.get_run_records(dg.RunsFilter(statuses=unfinished, tags={RUN_TAG: ["refresh", "replay"]}))
    recovered = []
    for record in records:
        run = record.dagster_run
        instance.report_run_failed(run, "pulse: the process running this refresh died before it finished "
                                        "(e.g. SIGKILL); a later refresh released its pool slots")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
    return recovered


@dataclass
class RefreshOutcome:
    success: bool
    seconds: float
    step_seconds: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    run_id: str | None = None
    crawl: dict[str, Any] | None = None  # `CrawlReport.summary()` of the crawl step, when it ran
    # the catalogue guard refused the read (its one-line reason); nothing downstream ran
    catalogue_refused: str | None = None
    catalogue_kept: int = 0  # packages of the stored catalogue that stayed in place


def _catalogue_refusal(result: RunResult) -> tuple[str, int] | None:
    """(reason, stored packages kept) when the catalogue's blocking `plausible` check failed."""
    from assets.catalogue.assets import PLAUSIBLE_KEY

    for evaluation in result.get_asset_check_evaluations():
        if evaluation.asset_check_key == PLAUSIBLE_KEY and not evaluation.passed:
            metadata = evaluation.metadata
            reason = getattr(metadata.get("reason"), "value", None) or "catalogue refused"
            kept = getattr(metadata.get("stored_packages"), "value", 0) or 0
            return str(reason), int(kept)
    return None


def _crawl_summary(result: RunResult) -> dict[str, Any] | None:
    """The crawl's summary from the `crawl` metadata of its raw asset materializations."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[:1] != ["raw"]:
            continue
        data = getattr(materialization.metadata.get("crawl"), "value", None)
        if isinstance(data, dict):
            return data
    return None


_QUALIFIED = re.compile(r"^(?:[A-Za-z_]\w*\.)+(\w+: )")  # "pkg.mod.Error: x" -> "Error: x"


def _short_name(match: re.Match) -> str:
    return match.group(1)


def _first_failure(result: RunResult) -> str | None:
    """`step: Error: message` of the first failed step, naming the exception our code raised."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error if event.event_specific_data else None
            if error is None:
                return f"{event.step_key}: step failed"
            # Dagster wraps the asset's own exception once: that one says what went wrong
            raised = error.cause if error.cause is not None else error
            lines = [line for line in (raised.message or "").strip().splitlines() if line.strip()]
            text = " ".join(lines) if lines else raised.cls_name
            return f"{event.step_key}: {_QUALIFIED.sub(_short_name, text)}"
    return None


REPLAY_GROUPS = ("core", "health", "history", "marts", "exports")


def refresh_job() -> dg.JobDefinition:
    """The `refresh` job, for `dg.reconstructable` (the multiprocess executor's steps load it anew)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("refresh")


def partition_tags(partition: str | None) -> dict[str, str]:
    """The run tags of a refresh: every crawl partition, or one (`pulse refresh --partition github-2`)."""
    from assets.raw.assets import ALL_PARTITIONS_TAGS, CRAWL_PARTITIONS

    if partition is None:
        return dict(ALL_PARTITIONS_TAGS)
    keys = CRAWL_PARTITIONS.get_partition_keys()
    if partition not in keys:
        raise ValueError(f"unknown crawl partition {partition!r}; the partitions are {', '.join(keys)}")
    return {"dagster/asset_partition_range_start": partition, "dagster/asset_partition_range_end": partition}


def run_refresh(settings: Settings, *, force: bool = False, max_age_hours: float = 20.0,
                time_budget_s: float | None = None, replay: bool = False,
                log_level: str = "CRITICAL", accept_catalogue_change: bool = False,
                processes: int = 1, partition: str | None = None) -> RefreshOutcome:
    """Materialize the whole asset graph once and say how it went (never raises on a step failure).

    The crawl covers every crawl partition, or only `partition` (re-crawling one shard). `processes`
    > 1 splits the crawl into that many slices run by Dagster's multiprocess executor in parallel
    processes (every step then runs in a process of its own); 1 runs the job in this process.

    `replay` rebuilds everything downstream of the raw archive from what is already stored, with
    no network: the catalogue already in the warehouse and the archived responses (a full core
    build, never the incremental one). `accept_catalogue_change` applies a catalogue that shrank by
    more than PULSE_CATALOGUE_MAX_SHRINK (`CatalogueConfig.accept_change`).
    """
    from pipelines.definitions import defs

    settings.home.mkdir(parents=True, exist_ok=True)
    dagster_home = ensure_dagster_home(settings)
    started = time.perf_counter()
    try:
        with refresh_lock(dagster_home):
            return _run_locked(defs, force=force, max_age_hours=max_age_hours, time_budget_s=time_budget_s,
                               replay=replay, log_level=log_level, started=started,
                               accept_catalogue_change=accept_catalogue_change, processes=processes,
                               partition=partition)
    except (RefreshBusy, ValueError) as exc:
        return RefreshOutcome(success=False, seconds=time.perf_counter() - started, failure=str(exc))


def _run_locked(defs, *, force: bool, max_age_hours: float, time_budget_s: float | None, replay: bool,
                log_level: str, started: float, accept_catalogue_change: bool = False, processes: int = 1,
                partition: str | None = None) -> RefreshOutcome:
    from assets.catalogue.assets import CatalogueConfig
    from assets.core.assets import CoreConfig
    from pipelines.resources import CrawlConfig

    job = defs.resolve_job_def("refresh")
    selection = None
    tags = {RUN_TAG: "replay" if replay else "refresh"}
    if replay:
        graph = defs.resolve_asset_graph()
        selection = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name in REPLAY_GROUPS]
        # a replay rebuilds: the incremental core refresh would keep tables it believes current
        ops: dict[str, dg.Config] = {"core_tables": CoreConfig(full=True)}
    else:
        ops = {"catalogue": CatalogueConfig(accept_change=accept_catalogue_change),
               "crawl": CrawlConfig(force=force, max_age_hours=max_age_hours, time_budget_s=time_budget_s,
                                    processes=processes)}
        tags.update(partition_tags(partition))
    loggers = {"console": {"config": {"log_level": log_level}}}
    run_config = dg.RunConfig(ops=ops, loggers=loggers)
    with dg.DagsterInstance.get() as instance:
        _recover_dead_runs(instance)
        if processes > 1 and not replay:
            return _run_in_processes(defs, instance, ops, loggers, tags, processes, started)
        result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False,
                                        asset_selection=selection, tags=tags)
        return _outcome(result, started, _step_seconds(instance, result.run_id))


def _run_in_processes(defs, instance: dg.DagsterInstance, ops: dict[str, dg.Config], loggers: dict[str, Any],
                      tags: dict[str, str], processes: int, started: float) -> RefreshOutcome:
    """The refresh in three runs of the `refresh` job: the catalogue in this process, the crawl under
    Dagster's multiprocess executor (its slices in parallel processes), then everything downstream
    in this process. The catalogue and the downstream steps all write the one DuckDB file one at a
    time (the writer pool), so a process each would only add a process start per step."""
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    catalogue = [key for key in keys if graph.get(key).group_name == "catalogue"]
    raw = [key for key in keys if graph.get(key).group_name == "raw"]
    rest = [key for key in keys if graph.get(key).group_name not in ("catalogue", "raw")]
    job = defs.resolve_job_def("refresh")
    plain = {RUN_TAG: tags[RUN_TAG]}
    outcomes: list[RefreshOutcome] = []

    def finish(result: RunResult) -> bool:
        outcomes.append(_outcome(result, started, _step_seconds(instance, result.run_id)))
        return result.success

    if finish(job.execute_in_process(run_config=dg.RunConfig(ops={"catalogue": ops["catalogue"]}, loggers=loggers),
                                     instance=instance, raise_on_error=False, asset_selection=catalogue, tags=plain)):
        config = dg.RunConfig(ops={"crawl": ops["crawl"]}, loggers=loggers).to_config_dict()
        # forkserver with the code location preloaded: each step forks ready, no second import
        config["execution"] = {"config": {"multiprocess": {
            "max_concurrent": processes,
            "start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}}}
        with dg.execute_job(dg.reconstructable(refresh_job), instance=instance, run_config=config, tags=tags,
                            asset_selection=raw, raise_on_error=False) as crawled:
            crawl_ok = finish(crawled)
        if crawl_ok:
            finish(job.execute_in_process(run_config=dg.RunConfig(loggers=loggers), instance=instance,
                                          raise_on_error=False, asset_selection=rest, tags=plain))
    last = outcomes[-1]
    last.step_seconds = {step: s for outcome in outcomes for step, s in outcome.step_seconds.items()}
    last.crawl = next((outcome.crawl for outcome in outcomes if outcome.crawl is not None), None)
    return last


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    return {
        stat.step_key: stat.end_time - stat.start_time
        for stat in instance.get_run_step_stats(run_id)
        if stat.start_time is not None and stat.end_time is not None
    }


def _outcome(result: RunResult, started: float, step_seconds: dict[str, float]) -> RefreshOutcome:
    """What `pulse refresh` says about a finished run (read while its result is still open)."""
    refused = None if result.success else _catalogue_refusal(result)
    return RefreshOutcome(
        success=result.success,
        seconds=time.perf_counter() - started,
        step_seconds=step_seconds,
        failure=None if result.success else (refused[0] if refused else _first_failure(result) or "the run failed"),
        run_id=result.run_id,
        crawl=_crawl_summary(result),
        catalogue_refused=refused[0] if refused else None,
        catalogue_kept=refused[1] if refused else 0,
    )


@dataclass
class ErrorSummary:
    failing_packages: int = 0  # distinct packages with at least one failure (severity 'error')
    failures: list[tuple[str, str, int]] = field(default_factory=list)  # (source, kind, packages)
    notices: list[tuple[str, int]] = field(default_factory=list)  # (kind, packages), severity 'info'
    # source-level failures (a refused or unavailable endpoint): (source, request_key, message)
    endpoints: list[tuple[str, str, str]] = field(default_factory=list)


# Source-level failures live in core.endpoint_errors (the crawler's endpoint health): one row per
# endpoint that did not work as a whole, with the evidence; such a source degrades the run, and its
# packages keep their last good data. core.crawl_errors holds package-level rows only.


def crawl_errors_summary(published_path: Path) -> ErrorSummary:
    """What core.crawl_errors says after the run: source-level failures, package failures and
    informational notices, apart."""
    summary = ErrorSummary()
    if not published_path.exists():
        return summary
    con = connect_reader(published_path)
    package_row = "severity = 'error'"
    try:
        summary.failures = con.execute(
            f"SELECT source, kind, count(DISTINCT package_id) FROM core.crawl_errors WHERE {package_row} "
            "GROUP BY ALL ORDER BY 3 DESC, 1, 2"
        ).fetchall()
        summary.failing_packages = con.execute(
            f"SELECT count(DISTINCT package_id) FROM core.crawl_errors WHERE {package_row}").fetchone()[0]
        summary.notices = con.execute(
            "SELECT kind, count(DISTINCT package_id) FROM core.crawl_errors WHERE severity = 'info' "
            "GROUP BY ALL ORDER BY 2 DESC, 1"
        ).fetchall()
        summary.endpoints = [
            (str(source), str(endpoint), " ".join(str(message or "endpoint not working").split()))
            for source, endpoint, message in con.execute(
                "SELECT source, endpoint, message FROM core.endpoint_errors ORDER BY 1, 2").fetchall()
        ]
    except duckdb.Error:
        return ErrorSummary()  # an older snapshot without the table or column: nothing to say
    finally:
        con.close()
    return summary
