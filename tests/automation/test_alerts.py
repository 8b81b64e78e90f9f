"""Alerts: a failed run (executed for real on a Dagster instance) goes through the real run-failure
sensor to a real HTTP receiver as Slack's incoming-webhook JSON (`{"text": ..., "blocks": [...]}`,
api.slack.com/messaging/webhooks), naming the run, the job, the failed step and the failed check, with
a link to the UI; no token and no secret-bearing URL anywhere; a webhook that fails is logged, never
raised."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from pipelines.alerts import Alert, notify, redact, redact_url
from pipelines.sensors import failed_checks_alert, run_failure_alert
from pipelines.settings import Settings

TOKEN = "ghp_automationTestSecret0123456789"
HOOK_SECRET = "T000/B000/hookSecretPart"


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.raw.append(data)
                receiver.bodies.append(json.loads(data))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def env_with(monkeypatch, hook: str) -> None:
    monkeypatch.setenv("PULSE_ALERT_WEBHOOK", hook)
    monkeypatch.setenv("PULSE_UI_URL", "http://admin:uipass@dagster.example:3000/?sso=abc")
    monkeypatch.setenv("GITHUB_TOKEN", f"{TOKEN},ghp_second")


@dg.asset(check_specs=[dg.AssetCheckSpec("not_empty", asset="checked")])
def checked():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="not_empty", passed=False, description="0 rows")


@dg.asset(deps=[checked])
def failing():
    raise RuntimeError(f"GET https://x-access-token:{TOKEN}@api.github.com/repos/a/b?access_token={TOKEN} failed")


def test_a_failed_run_posts_slack_json_without_secrets(receiver, monkeypatch, caplog, capfd):
    env_with(monkeypatch, f"{receiver.url}/services/{HOOK_SECRET}?token=abc")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([checked, failing], instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_instance=instance, dagster_run=run, dagster_event=failure,
        ).for_run_failure()
        with caplog.at_level(logging.DEBUG):  # httpx logs each request's URL at INFO: not this one
            run_failure_alert(context)
    [body] = receiver.bodies
    text = body["text"]
    assert body["blocks"][0]["type"] == "section" and body["blocks"][0]["text"]["text"] == text
    assert f"job {run.job_name}, run {result.run_id}" in text
    assert "step failing: RuntimeError: GET https://api.github.com/repos/a/b failed" in text
    assert "check checked:not_empty (ERROR): 0 rows" in text
    assert f"http://dagster.example:3000/runs/{result.run_id}" in text
    # the sensor's log lines (Dagster's console logger; the failed run's own logs are not ours)
    logged = "\n".join(line for line in capfd.readouterr().err.splitlines() if "pulse alert" in line)
    assert "pulse alert: Package Pulse: run of" in logged  # the log line is always there
    everything = receiver.raw[0].decode() + caplog.text + logged
    for secret in (TOKEN, "ghp_second", HOOK_SECRET, "uipass", "sso=abc", "access_token", "x-access-token"):
        assert secret not in everything, secret
    assert "https://api.github.com/repos/a/b" in text  # the URL stays, without its secrets


def test_failed_checks_of_a_successful_run_are_told(receiver, monkeypatch):
    env_with(monkeypatch, f"{receiver.url}/hook")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([checked], instance=instance)
        run = instance.get_run_by_id(result.run_id)
        success = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
        context = dg.build_run_status_sensor_context(
            sensor_name="failed_checks_alert", dagster_instance=instance, dagster_run=run, dagster_event=success)
        failed_checks_alert(context)
    [body] = receiver.bodies
    assert "1 asset check(s) failed" in body["text"] and "checked:not_empty" in body["text"]


def test_a_failing_webhook_is_logged_never_raised(monkeypatch, caplog):
    refused = Receiver(status=500)
    alert = Alert("Package Pulse: run of refresh failed", "run-1", "refresh", ["step crawl: boom"])
    settings = Settings.from_mapping({"PULSE_ALERT_WEBHOOK": f"{refused.url}/hook?secret=s3cr3t"})
    with caplog.at_level(logging.INFO, logger="pulse.alerts"):
        assert notify(alert, settings) is False
    refused.server.shutdown()
    refused.server.server_close()
    unreachable = Settings.from_mapping({"PULSE_ALERT_WEBHOOK": f"{refused.url}/hook?secret=s3cr3t"})
    with caplog.at_level(logging.INFO, logger="pulse.alerts"):
        assert notify(alert, unreachable) is False  # connection refused
    assert "answered HTTP 500" in caplog.text and "failed: ConnectError" in caplog.text
    assert "s3cr3t" not in caplog.text and "step crawl: boom" in caplog.text
    assert notify(alert, Settings.from_mapping({})) is False  # no webhook: the log line only


def test_redaction():
    assert redact_url("https://user:pw@hooks.slack.com:8443/services/x?token=1#f") == \
        "https://hooks.slack.com:8443/services/x"
    assert redact("see http://a:b@h/p?q=1 and s3cr3t", ["s3cr3t"]) == "see http://h/p and ***"
