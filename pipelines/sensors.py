"""The sensors of the code location: the catalogue sensor and the alerts.

**Catalogue sensor** (`catalogue_sensor`, every CATALOGUE_POLL_S): probes PULSE_CATALOGUE cheaply
(assets/catalogue/changes.py: a file's size/mtime/sha256; for the API, two small requests: the count
and newest ids with their modified times, and a window of older packages that moves down the list a
step a tick, its offset in the cursor, so an edit of an old package is seen within one walk of the
list). When the probe moved (or the window met a package whose `modified` differs from the stored
one), it reads the catalogue, judges the read with the
catalogue guard (a failed, incomplete, empty or much shrunk read is skipped with its reason: never
taken for "packages deleted") and compares it with the stored `catalogue.packages`. New or changed
packages get one run of the `catalogue_update` job (the catalogue step, then the crawl of only those
ids: `CrawlConfig.package_ids`); everything downstream follows through the automation conditions
(assets/automation.py). The run key is a digest of the changed rows, so one change never runs twice,
even after the cursor is reset; the cursor keeps the last probe signature. Nothing stored yet: the
sensor waits for a first full refresh (`pulse refresh` or the `refresh` job) rather than crawl
everything on its own.

**Alerts**: `run_failure_alert` (any failed run of this instance, also those `pulse refresh` starts)
names the failed steps and failed checks; `failed_checks_alert` names the failed asset checks of runs
that succeeded (a non-blocking check); `staleness_alert` (every STALENESS_POLL_S) tells once when the
published snapshot turns stale, older than PULSE_FRESHNESS_HOURS, and once when it is fresh again.
All go through pipelines/alerts.py: a log line always, a Slack-compatible POST to PULSE_ALERT_WEBHOOK
when set, never a secret.

Staleness is a plain sensor rather than Dagster's freshness machinery: the `FreshnessPolicy` the
exports carry (assets/automation.py) shows in the UI, but its evaluation is a preview feature that an
instance must switch on (`freshness: enabled: True` in dagster.yaml) and its alerts are Dagster+
ones; freshness checks (`build_last_update_freshness_checks` + `build_sensor_for_freshness_checks`)
are superseded by those policies since 1.12. The sensor judges the same time as `pulse status`
(`pipelines.status.last_published`: the asset's last materialization, else the published file's
modification time) with the same rule (`assets.freshness.judge_freshness`), on any instance.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets.catalogue.changes import (
    change_key,
    changed_package_ids,
    edited_in_window,
    probe,
    same_signature,
    stored_packages_frame,
)
from assets.catalogue.guard import judge_catalogue
from assets.catalogue.readers import read_catalogue
from assets.catalogue.transform import build_catalogue
from assets.freshness import judge_freshness
from assets.raw.assets import ALL_PARTITIONS_TAGS
from pipelines.alerts import Alert, notify, redact
from pipelines.resources import CrawlConfig, PulseResource
from pipelines.settings import Settings
from pipelines.sources.djangopackages import CatalogueError

CATALOGUE_POLL_S = 900  # a probe is one request (or one stat) every 15 minutes
TRIGGER_TAG = "pulse/trigger"

catalogue_update_job = dg.define_asset_job(
    "catalogue_update",
    selection=dg.AssetSelection.groups("catalogue", "raw"),
    description="The catalogue, then the crawl of the packages given in `crawl.config.package_ids` (the "
                "catalogue sensor's new or changed ones); downstream follows by automation conditions.",
)


def _cursor(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def evaluate_catalogue(settings: Settings, cursor: str | None) -> dg.SensorResult:
    """One tick of the catalogue sensor (the pure-ish part: no Dagster context, so tests call it too).

    The cursor holds the last probe signature (`signature`) and, for the API, where the next tick's
    window of older packages starts (`window`); it moves on every tick the probe worked, so the
    window walks down the list whether or not anything changed."""
    state = _cursor(cursor)
    previous = state.get("signature")
    source = redact(settings.catalogue)
    try:
        looked = probe(settings.catalogue, previous, state.get("window"))
    except CatalogueError as exc:  # unreachable now: try again next tick, nothing concluded
        return dg.SensorResult(skip_reason=f"catalogue probe failed: {redact(str(exc))}")
    signature = looked.signature
    stored = None
    edited: list[int] = []
    if looked.window:
        stored = stored_packages_frame(_stored_paths(settings))
        edited = edited_in_window(looked.window, stored)
    seen = ""
    if looked.window_offset is not None:
        seen = f" (head and packages {looked.window_offset + 1}-{looked.window_offset + len(looked.window)} " \
               f"of {signature.get('count')})"
    if same_signature(signature, previous) and not edited:
        moved = None if looked.next_window is None else json.dumps({"signature": previous,
                                                                     "window": looked.next_window})
        return dg.SensorResult(skip_reason=f"catalogue {source} unchanged{seen}", cursor=moved)
    if stored is None:
        stored = stored_packages_frame(_stored_paths(settings))
    if stored is None or stored.is_empty():
        return dg.SensorResult(skip_reason="no catalogue stored yet: the first full refresh (`pulse refresh` or "
                                           "the `refresh` job) comes first")
    try:
        records = read_catalogue(settings.catalogue)
    except CatalogueError as exc:
        verdict = judge_catalogue(exc, stored.height, settings.catalogue_max_shrink)
        return dg.SensorResult(skip_reason=redact(verdict.line))
    frames = build_catalogue(records)
    verdict = judge_catalogue(records, stored.height, settings.catalogue_max_shrink,
                              packages=frames.packages.height)
    if not verdict.apply:  # the cursor stays: the next tick looks again
        return dg.SensorResult(skip_reason=redact(verdict.line))
    new_cursor = json.dumps({"signature": signature, **({"window": looked.next_window}
                                                         if looked.next_window is not None else {})})
    ids = changed_package_ids(frames.packages, stored)
    if not ids:
        return dg.SensorResult(skip_reason=f"catalogue {source} changed, no package new or changed "
                                           f"({verdict.line})", cursor=new_cursor)
    key = change_key(frames.packages, ids)
    request = dg.RunRequest(
        run_key=f"catalogue-{key}",
        run_config=dg.RunConfig(ops={"crawl": CrawlConfig(package_ids=ids)}),
        # the crawl is partitioned: every partition, narrowed to the packages by `package_ids`
        tags={TRIGGER_TAG: "catalogue_sensor", "pulse/packages": str(len(ids)), **ALL_PARTITIONS_TAGS},
    )
    return dg.SensorResult(run_requests=[request], cursor=new_cursor)


@dg.sensor(
    name="catalogue_sensor",
    job=catalogue_update_job,
    minimum_interval_seconds=CATALOGUE_POLL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls PULSE_CATALOGUE cheaply; crawls only new or changed packages (run key per change).",
)
def catalogue_sensor(context: dg.SensorEvaluationContext, pulse: PulseResource) -> dg.SensorResult:
    result = evaluate_catalogue(pulse.settings(), context.cursor)
    if result.skip_reason is not None:
        context.log.info(result.skip_reason.skip_message)
    return result


# -- alerts ----------------------------------------------------------------------------------------


def _settings_or_none(log) -> Settings | None:
    try:
        return Settings.from_env()
    except Exception as exc:  # a broken setting must not swallow the alert itself
        log.warning(f"pulse alert: settings unusable ({type(exc).__name__}); logging only")
        return None


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`asset:check (severity): description` of every failed check evaluation of the run."""
    lines = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.asset_check_evaluation_data
        if evaluation.passed:
            continue
        severity = evaluation.severity.value if evaluation.severity else "ERROR"
        what = evaluation.description or "failed"
        lines.append(f"check {evaluation.asset_check_key.asset_key.to_user_string()}:"
                     f"{evaluation.asset_check_key.name} ({severity}): {what}")
    return lines


def failed_steps(events) -> list[str]:
    lines = []
    for event in events:
        data = event.event_specific_data
        error = getattr(data, "error", None)
        if error is not None and error.cause is not None:  # the asset's own exception
            error = error.cause
        message = " ".join((error.message or error.cls_name).split()) if error is not None else "failed"
        lines.append(f"step {event.step_key}: {message[:300]}")
    return lines


@dg.run_failure_sensor(
    name="run_failure_alert",
    monitor_all_code_locations=True,  # also the runs `pulse refresh` executes in-process on this instance
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed run: a log line, and a POST to PULSE_ALERT_WEBHOOK when set.",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    failures = failed_steps(context.get_step_failure_events()) + failed_checks(context.instance, run.run_id)
    if not failures and context.failure_event.message:
        failures = [context.failure_event.message]
    alert = Alert(f"Package Pulse: run of {run.job_name} failed", run.run_id, run.job_name, failures)
    notify(alert, _settings_or_none(context.log), context.log)


@dg.run_status_sensor(
    name="failed_checks_alert",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Failed asset checks of a successful run: a log line, and a POST to PULSE_ALERT_WEBHOOK.",
)
def failed_checks_alert(context: dg.RunStatusSensorContext) -> None:
    run = context.dagster_run
    failures = failed_checks(context.instance, run.run_id)
    if failures:
        alert = Alert(f"Package Pulse: {len(failures)} asset check(s) failed", run.run_id, run.job_name, failures)
        notify(alert, _settings_or_none(context.log), context.log)


# -- staleness ---------------------------------------------------------------------------------------

STALENESS_POLL_S = 600  # the judgement is a stat and one instance read: cheap, and 26 h is the scale
PUBLISHED_ASSET = ("exports", "published_warehouse")


def evaluate_staleness(settings: Settings | None, instance: dg.DagsterInstance, cursor: str | None,
                       now: datetime, log: logging.Logger | None = None) -> tuple[str | None, str]:
    """One tick of the staleness alert: (the new cursor, what happened). Posts once when the published
    snapshot turns stale (also on a first tick that finds it stale) and once when it is fresh again;
    the cursor (`{"state": ...}`) remembers what was last told, so the other ticks post nothing. When
    the webhook did not take an alert, the cursor stays and the next tick tries again. Before the
    first publication the state is `unknown`: nothing to tell."""
    from pipelines.status import last_published, last_run

    if settings is None:
        return None, "settings unusable: nothing judged"
    told = _cursor(cursor).get("state")
    last, _ = last_published(settings, instance, PUBLISHED_ASSET)
    verdict = judge_freshness(last, now, settings.freshness_hours)
    state = verdict.state
    new_cursor = json.dumps({"state": state, "since": now.isoformat(timespec="seconds")
                             if state != told else _cursor(cursor).get("since")})
    name = "/".join(PUBLISHED_ASSET)
    if state == told or state == "unknown" or (state == "fresh" and told != "stale"):
        return new_cursor, f"{name} {verdict.line}; nothing to tell"
    details = [f"{name}: {verdict.line}; last published {verdict.last.isoformat(timespec='seconds')}"]
    if state == "stale":
        title = "Package Pulse: the published data is stale"
        run = last_run(instance)
        if run is not None:
            details.append(f"last finished run: {run['job']} {run['status']} at {run['started']} "
                           f"({run['trigger']}), run {run['run_id']}")
        details.append("run `pulse refresh` (or the `refresh` job in the UI); `pulse status` says what failed")
    else:
        title = "Package Pulse: the published data is fresh again"
    alert = Alert(title, failures=details, ui_path="/assets/" + "/".join(PUBLISHED_ASSET))
    delivered = notify(alert, settings, log, level=logging.ERROR if state == "stale" else logging.INFO)
    if settings.alert_webhook is not None and not delivered:
        return cursor, f"{name} {verdict.line}; the webhook did not take the alert: the next tick tries again"
    return new_cursor, f"{name} {verdict.line}; told"


@dg.sensor(
    name="staleness_alert",
    minimum_interval_seconds=STALENESS_POLL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="The published snapshot older than PULSE_FRESHNESS_HOURS: one alert when it turns stale, one "
                "when it is fresh again (log line, and a POST to PULSE_ALERT_WEBHOOK when set).",
)
def staleness_alert(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    settings = _settings_or_none(context.log)
    cursor, said = evaluate_staleness(settings, context.instance, context.cursor, datetime.now(UTC), context.log)
    return dg.SensorResult(skip_reason=said, cursor=cursor)


SENSORS = [catalogue_sensor, run_failure_alert, failed_checks_alert, staleness_alert]


def _stored_paths(settings: Settings) -> list[Path]:
    """Where the stored catalogue can be read: the warehouse when it is a DuckDB file on this machine
    (PULSE_WAREHOUSE_URL unset, or another DuckDB file), else only the published copy."""
    warehouse = settings.target.path
    return [warehouse, settings.published_path] if warehouse is not None else [settings.published_path]
