"""The sensors of the code location: the catalogue sensor and the alerts.

**Catalogue sensor** (`catalogue_sensor`, every CATALOGUE_POLL_S): probes PULSE_CATALOGUE cheaply
(assets/catalogue/changes.py: a file's size/mtime/sha256, the API's count and newest ids with their
modified times, one request). When the probe moved, it reads the catalogue, judges the read with the
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
that succeeded (a non-blocking check). Both go through pipelines/alerts.py: a log line always, a
Slack-compatible POST to PULSE_ALERT_WEBHOOK when set, never a secret.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from assets.catalogue.changes import (
    change_key,
    changed_package_ids,
    probe_signature,
    same_signature,
    stored_packages_frame,
)
from assets.catalogue.guard import judge_catalogue
from assets.catalogue.readers import read_catalogue
from assets.catalogue.transform import build_catalogue
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
    """One tick of the catalogue sensor (the pure-ish part: no Dagster context, so tests call it too)."""
    state = _cursor(cursor)
    previous = state.get("signature")
    source = redact(settings.catalogue)
    try:
        signature = probe_signature(settings.catalogue, previous)
    except CatalogueError as exc:  # unreachable now: try again next tick, nothing concluded
        return dg.SensorResult(skip_reason=f"catalogue probe failed: {redact(str(exc))}")
    if same_signature(signature, previous):
        return dg.SensorResult(skip_reason=f"catalogue {source} unchanged")
    stored = stored_packages_frame([settings.warehouse_path, settings.published_path])
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
    new_cursor = json.dumps({"signature": signature})
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


SENSORS = [catalogue_sensor, run_failure_alert, failed_checks_alert]
