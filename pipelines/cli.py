"""The `pulse` command line (click): refresh, demo, simulate, serve, query, export, status, ui.

Every command reads the same environment as the Dagster code location (pipelines/settings.py) and
works from any working directory with no DAGSTER_HOME set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines import progress
from pipelines.crawler import shutdown
from pipelines.settings import Settings, SettingsError

console = Console(stderr=True, soft_wrap=True)
DEMO_TOKENS = "sim-demo-token-1,sim-demo-token-2"

# Exit codes of `pulse refresh` / `pulse demo` (README.md, Commands). 2 is click's usage error.
EXIT_OK = 0  # the run completed (package-level upstream errors are normal: recorded and reported)
EXIT_FATAL = 1  # nothing usable came of it: configuration, PULSE_HOME, a failed step, a refused first catalogue
EXIT_DEGRADED = 3  # the run kept earlier data: the catalogue was refused, or a source endpoint was unavailable


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"configuration: {first['msg'].removeprefix('Value error, ')}")
    except (SettingsError, ValueError) as exc:
        _fail(f"configuration: {exc}")
    raise AssertionError("unreachable")


def _check_home(settings: Settings) -> None:
    """A fatal problem is one clear line, before Dagster starts: PULSE_HOME must be writable."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        probe = settings.home / ".pulse-write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        _fail(f"PULSE_HOME={settings.home} is not writable: {exc.strerror or exc}")


def _check_warehouse(settings: Settings) -> None:
    """PULSE_WAREHOUSE_URL's extension can be loaded: one clear line before Dagster starts (warehouse.db)."""
    from warehouse.db import WarehouseUnavailable, check_target

    try:
        check_target(settings.target)
    except WarehouseUnavailable as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    console.print(f"[bold red]pulse: {message}[/]")
    sys.exit(EXIT_FATAL)


class _ConsoleNotices(logging.Handler):
    """Prints the crawl's notices (quota waits, back-offs, stops: `pipelines.sources.http.quota.NOTICE`)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            console.print(record.getMessage(), style="yellow", markup=False, highlight=False)
        except Exception:  # pragma: no cover - a broken console must not break the crawl
            self.handleError(record)


@contextlib.contextmanager
def _notices_on_console() -> Iterator[None]:
    """Show waits on the console while Dagster's own console log is silenced (no -v): one line each.

    Without it a refresh waiting for a GitHub quota reset would sit silent for up to an hour, the
    progress display being off when the output is not a terminal.
    """
    from pipelines.sources.http.quota import NOTICE

    handler = _ConsoleNotices(logging.WARNING)
    propagate = NOTICE.propagate
    NOTICE.addHandler(handler)
    NOTICE.propagate = False
    try:
        yield
    finally:
        NOTICE.removeHandler(handler)
        NOTICE.propagate = propagate


def _crawl_lines(crawl: dict[str, Any]) -> list[str]:
    """The closing lines about the crawl: what it asked and spent, and whether the budget stopped it."""
    requests = crawl.get("requests_by_source") or {}
    per_source = ", ".join(f"{source} {n}" for source, n in requests.items() if n)
    lines = [f"crawl: {sum(requests.values())} requests ({per_source or 'none'}), "
             f"{crawl.get('not_modified', 0)} unchanged (304); GitHub quota spent "
             f"{crawl.get('quota_spent', 0):g}"
             + (f", {crawl['quota_wait_s']:.0f} s waited for quota resets" if crawl.get("quota_wait_s") else "")
             + (f", {crawl['backoffs']} secondary-limit back-offs" if crawl.get("backoffs") else "")]
    if crawl.get("stopped_by_budget"):
        reason = f" ({crawl['stop_reason']})" if crawl.get("stop_reason") else ""
        lines.append(f"stopped by the time budget: {crawl.get('left', 0)} requests left for the next run{reason}")
    return lines


def _stopped(signum: int, outcome: Any, seconds: float) -> None:
    """A refresh stopped by SIGTERM/SIGINT: one line, exit 128 + the signal's number (130, 143).

    Everything the run held is released by now (lock, Dagster instance, warehouse): the process exits
    at once, without the interpreter's slow teardown, while a container's grace period runs.
    """
    detail = ""
    # the crawl step (`crawl.crawl_slice[slice_0]` since the crawl is partitioned) says what it archived
    interrupted = re.search(r"CrawlInterrupted: stopped by \w+: (.*)", (outcome and outcome.failure) or "")
    if interrupted:
        detail = "; " + interrupted.group(1)
    console.print(f"[bold red]pulse: refresh stopped by {shutdown.name(signum)} after {seconds:.1f}s{detail}; "
                  "nothing partial was published; the next refresh continues from the raw archive[/]")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)


def _refresh(settings: Settings, *, force: bool, max_age_hours: float, time_budget: float | None,
             replay: bool = False, verbose: bool = False, accept_catalogue_change: bool = False,
             processes: int = 1, partition: str | None = None) -> int:
    """Run one refresh and print its summary; the exit code (EXIT_OK or EXIT_DEGRADED; fatal or a
    stop signal: exits)."""
    from dagster import DagsterExecutionInterruptedError

    from pipelines.runner import crawl_errors_summary, run_refresh

    _check_home(settings)
    _check_warehouse(settings)
    if replay and settings.target.exists() is False:
        # the raw archive holds upstream answers, not the catalogue: that lives in the warehouse
        _fail(f"refresh --replay needs the catalogue stored in {settings.target.path}, which does not exist; "
              "run `pulse refresh` once first")
    console.print(f"[bold]pulse refresh[/] catalogue={settings.catalogue} home={settings.home}")
    bars = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False, disable=not console.is_terminal)
    tasks: dict[str, int] = {"starting": bars.add_task("starting Dagster run", total=1)}

    def listener(stage: str, done: int, total: int) -> None:
        bars.update(tasks["starting"], completed=1)
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    progress.install(listener)
    started = time.perf_counter()
    outcome = None
    with shutdown.SignalLog() as signals, shutdown.interrupt_on_signals():
        try:
            with bars, (contextlib.nullcontext() if verbose else _notices_on_console()):
                outcome = run_refresh(settings, force=force, max_age_hours=max_age_hours,
                                      time_budget_s=time_budget, replay=replay,
                                      log_level="INFO" if verbose else "CRITICAL",
                                      accept_catalogue_change=accept_catalogue_change,
                                      processes=processes, partition=partition)
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            pass  # a stop signal outside the crawl: Dagster interrupted the step in progress
        finally:
            progress.install(None)
        stop_signal = signals.first()
    if stop_signal is not None:
        _stopped(stop_signal, outcome, time.perf_counter() - started)
    assert outcome is not None
    table = Table(title="steps", show_header=True)
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, seconds in outcome.step_seconds.items():
        table.add_row(step, f"{seconds:.1f}")
    console.print(table)
    if outcome.crawl is not None:
        for number, line in enumerate(_crawl_lines(outcome.crawl)):
            console.print(line, style="yellow" if number else None, markup=False, highlight=False)
    if outcome.catalogue_refused is not None:
        if outcome.catalogue_kept <= 0:  # nothing stored to keep: nothing works yet
            _fail(f"refresh failed after {outcome.seconds:.1f}s: {outcome.catalogue_refused}; "
                  "no catalogue is stored yet")
        # one line: what was refused and why, and what was kept (the crawl errors of the kept snapshot
        # are not this run's: no summary of them)
        console.print(f"pulse: refresh degraded: {outcome.catalogue_refused}; kept the stored catalogue "
                      f"({outcome.catalogue_kept} packages), the published snapshot and the export tree unchanged "
                      "(nothing downstream ran)", style="bold yellow", markup=False, highlight=False)
        return EXIT_DEGRADED
    if not outcome.success:
        _fail(f"refresh failed after {outcome.seconds:.1f}s: {outcome.failure}")
    summary = crawl_errors_summary(settings.published_path)
    console.print(f"[green]refresh completed[/] in {outcome.seconds:.1f}s; warehouse {settings.target.label}; "
                  f"export {settings.export_dir / 'api' / 'v4'}")
    for source, key, message in summary.endpoints:
        console.print(f"{source} unavailable ({key}): {message}", style="yellow", markup=False, highlight=False)
    if summary.failures:
        detail = ", ".join(f"{source}/{kind}: {count}" for source, kind, count in summary.failures)
        console.print(f"[yellow]{summary.failing_packages} packages with errors recorded[/] ({detail}); "
                      "see core.crawl_errors WHERE severity = 'error' (`pulse query`)")
    elif not summary.endpoints:
        console.print("no upstream errors recorded")
    for kind, count in summary.notices:
        what = "catalogue URLs outdated (the repository was renamed)" if kind == "renamed" else f"{kind} notices"
        console.print(f"{count} {what}; see core.crawl_errors WHERE severity = 'info'")
    if summary.endpoints:
        sources = sorted({source for source, _, _ in summary.endpoints})
        console.print(f"pulse: refresh degraded: {', '.join(sources)} unavailable; their packages kept their last "
                      "good data; see core.endpoint_errors (`pulse query`)",
                      style="bold yellow", markup=False, highlight=False)
        return EXIT_DEGRADED
    return EXIT_OK


@click.group()
@click.version_option(package_name="package-pulse")
def main() -> None:
    """Package Pulse: catalogue -> GitHub/PyPI crawl -> DuckDB -> API v4 exports."""


@main.command()
@click.option("--force", is_flag=True, help="Crawl every package, however fresh its data.")
@click.option("--max-age-hours", type=float, default=20.0, show_default=True, help="Re-crawl data older than this.")
@click.option("--time-budget", type=float, default=None, help="Seconds; checkpoint and stop cleanly after it.")
@click.option("--replay", is_flag=True, help="Rebuild core/marts/exports from the raw archive only (no network).")
@click.option("--accept-catalogue-change", is_flag=True,
              help="Apply a catalogue that shrank by more than PULSE_CATALOGUE_MAX_SHRINK (never an empty or "
                   "incomplete one).")
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Crawl in this many parallel processes (Dagster's multiprocess executor; tokens split).")
@click.option("--partition", default=None,
              help="Re-crawl one crawl partition only (e.g. github-2, gitlab; docs/ARCHITECTURE.md), then rebuild.")
@click.option("--verbose", "-v", is_flag=True, help="Show Dagster's step logs.")
def refresh(force: bool, max_age_hours: float, time_budget: float | None, replay: bool,
            accept_catalogue_change: bool, processes: int, partition: str | None, verbose: bool) -> None:
    """Materialize the whole asset graph once, in-process.

    Exit codes: 0 done (package-level upstream errors are normal), 3 degraded (the catalogue was
    refused or a source endpoint was unavailable: earlier data kept), 1 fatal.
    """
    sys.exit(_refresh(_settings(), force=force, max_age_hours=max_age_hours, time_budget=time_budget,
                      replay=replay, verbose=verbose, accept_catalogue_change=accept_catalogue_change,
                      processes=processes, partition=partition))


@main.command()
@click.option("--packages", type=int, default=250, show_default=True, help="Size of the simulated directory.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
def demo(packages: int, seed: int, latency_ms: float) -> None:
    """Start the simulator on loopback and refresh against it (offline). Exit codes as `refresh`."""
    from simulator.server import start_in_thread

    started = time.perf_counter()
    with start_in_thread(packages=packages, seed=seed, latency_ms=latency_ms) as sim:
        os.environ.update(sim.env())
        # the simulator's own tokens: a real GITHUB_TOKEN is never sent to the demo's fake GitHub
        os.environ["GITHUB_TOKEN"] = DEMO_TOKENS
        console.print(f"simulator on {sim.url} ({packages} packages, seed {seed})")
        code = _refresh(_settings(), force=True, max_age_hours=0.0, time_budget=None)
    console.print(f"demo finished in {time.perf_counter() - started:.1f}s")
    sys.exit(code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="0: any free port (the line `serving ... on http://host:port/` says which).")
@click.option("--public-url", default=None,
              help="Base of every link in the documents (default: PULSE_PUBLIC_URL when set, else each "
                   "request's own scheme and Host / X-Forwarded-Proto and X-Forwarded-Host).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes sharing the port (SO_REUSEPORT), each with its own copy of the snapshot "
                   "[default: the number of cores].")
def serve(host: str, port: int, public_url: str | None, workers: int | None) -> None:
    """Serve the published snapshot as API v4 (read-only): caching headers, gzip, CORS, live reload."""
    from pipelines.serve import PortUnavailable, run_server
    from pipelines.settings import check_public_url

    settings = _settings()
    if not settings.published_path.exists():
        _fail(f"no published snapshot at {settings.published_path}: run `pulse refresh` first")
    try:
        # explicit only: the default localhost URL must not pin the links of a server behind a proxy
        explicit = check_public_url(public_url, "--public-url") if public_url else settings.explicit_public_url
    except SettingsError as exc:
        _fail(f"configuration: {exc}")
    links = explicit or "each request's host"
    workers = workers or os.cpu_count() or 1

    def announce(bound: int) -> None:  # the bound port: `--port 0` asks for any free one
        console.print(f"serving {settings.published_path} on http://{host}:{bound}/api/v4/ "
                      f"({workers} worker{'s' if workers > 1 else ''}; links: {links})", highlight=False)

    try:
        run_server(settings.published_path, public_url=explicit, timezone=settings.timezone, host=host,
                   port=port, workers=workers, announce=announce)
    except PortUnavailable as exc:
        _fail(str(exc))


@main.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def query(sql: str, fmt: str) -> None:
    """Run SQL against the published snapshot (read-only)."""
    import duckdb
    import polars as pl

    from warehouse.db import connect_reader

    settings = _settings()
    try:
        con = connect_reader(settings.published_path)
    except FileNotFoundError as exc:
        _fail(str(exc))
    try:
        relation = con.sql(sql)
        frame = relation.pl() if relation is not None else pl.DataFrame()
    except duckdb.Error as exc:
        _fail(f"query failed: {str(exc).splitlines()[0]}")
    finally:
        con.close()
    if fmt == "csv":
        click.echo(frame.write_csv(), nl=False)
    elif fmt == "json":
        click.echo(frame.write_json())
    else:
        with pl.Config(tbl_rows=50, tbl_cols=20, fmt_str_lengths=60, tbl_width_chars=200):
            click.echo(frame)


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Write the files into this folder instead of a new release under PULSE_HOME/releases "
                   "(no `latest` pointer, no pruning; with one --format the default is PULSE_HOME/export/datasets).")
@click.option("--format", "fmt", type=click.Choice(["all", "parquet", "csv", "jsonl"]), default="all",
              show_default=True, help="all: Parquet, CSV and JSON Lines with datapackage.json; else one format only.")
def export(out_dir: Path | None, fmt: str) -> None:
    """Export the core, health, history and marts tables of the published snapshot as a dataset release.

    Without options: the same release the `exports/dataset_release` asset writes (PULSE_HOME/releases/
    <release id>/, `latest` moved, old releases pruned by PULSE_RELEASES_KEEP)."""
    from assets.exports.datasets import DATASET_FORMATS, export_datasets
    from assets.exports.releases import publish_release, write_release_files

    settings = _settings()
    try:
        if out_dir is None and fmt == "all":
            release = publish_release(settings.published_path, settings.releases_dir, settings.releases_keep)
            written = [release.path / name for name in sorted(release.files)] + [release.path / "datapackage.json"]
            console.print(f"release {release.release_id} in {release.path}", highlight=False)
        elif fmt == "all":
            out_dir.mkdir(parents=True, exist_ok=True)
            release = write_release_files(settings.published_path, out_dir.resolve(), DATASET_FORMATS)
            written = [release.path / name for name in sorted(release.files)] + [release.path / "datapackage.json"]
        else:
            written = export_datasets(settings.published_path, out_dir or settings.export_dir / "datasets", fmt)
    except FileNotFoundError as exc:
        _fail(str(exc))
    for path in written:
        click.echo(str(path))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
@click.option("--offline", is_flag=True, help="Do not ask GitHub for the quota left (GET /rate_limit per token).")
def status(as_json: bool, offline: bool) -> None:
    """The last refresh, freshness, errors by kind, quota left per GitHub account (its login, never a
    token) and the next scheduled run."""
    import orjson

    from pipelines.status import collect, lines

    report = collect(_settings(), online=not offline)
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in lines(report):
            click.echo(line)


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
@click.option("--schedule", is_flag=True, help="Turn the daily refresh schedule on (as PULSE_SCHEDULE=on).")
def ui(port: int, schedule: bool) -> None:
    """The Dagster UI (`dagster dev`) on this project's code location and instance."""
    from pipelines.runner import ensure_dagster_home

    if schedule:
        os.environ["PULSE_SCHEDULE"] = "on"  # read by the code location `dagster dev` starts
    settings = _settings()
    _check_home(settings)
    home = ensure_dagster_home(settings)
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    dagster = str(Path(sys.executable).parent / "dagster")
    console.print(f"Dagster instance in {home}; UI on http://127.0.0.1:{port}")
    sys.exit(_supervise([dagster, "dev", "-w", str(workspace), "-p", str(port)]))


UI_STOP_S = 2.0  # after SIGTERM/SIGINT, `dagster dev` and its processes get this long, then SIGKILL


def _supervise(command: list[str]) -> int:
    """Run `command` in its own process group until it ends or this process gets SIGTERM/SIGINT.

    `dagster dev` starts the webserver, the daemon and code servers; stopping them itself takes it
    5-10 s, longer than a container's stop should. A stop signal is forwarded as SIGTERM to the whole
    group, which gets `UI_STOP_S`; what is still running then is killed. A requested stop exits 0.
    """
    import signal
    import subprocess

    child = subprocess.Popen(command, process_group=0)  # noqa: S603 - our own venv's dagster
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    while not received:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return child.wait(timeout=0.2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=UI_STOP_S)
    with contextlib.suppress(ProcessLookupError):  # the webserver, daemon and code servers too
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    console.print(f"pulse ui: stopped by {signal.Signals(received[0]).name}")
    return 0


def _attach_simulate() -> None:
    try:
        from simulator.cli import simulate
    except ImportError:  # the simulator is optional for a production install
        return
    main.add_command(simulate, name="simulate")


_attach_simulate()
