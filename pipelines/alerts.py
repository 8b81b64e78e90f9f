"""Telling people a run failed, a check failed or the published data went stale (and fresh again): a
log line always, a Slack-compatible POST when asked.

`PULSE_ALERT_WEBHOOK` (a Slack incoming webhook, or anything that accepts Slack's `{"text": ...}`
JSON: Mattermost, Rocket.Chat, Discord's `/slack` endpoint...) receives `{"text": ..., "blocks": [...]}`
with the run id, the job, what failed and, when `PULSE_UI_URL` is set, a link to the run (or, for
staleness, to the published asset) in the Dagster UI. The sensors of pipelines/sensors.py build the `Alert`s.

Nothing secret leaves: every URL in the text loses its userinfo, query and fragment (where tokens
hide), the configured secrets (GitHub tokens, the webhook URL itself: a Slack webhook URL is a
credential) are replaced by `***`, and the webhook is named in logs only by its host. A webhook that
fails (refused, timed out, non-2xx) is logged and never raises: an alert must not fail a sensor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from pipelines.settings import Settings

LOG = logging.getLogger("pulse.alerts")
TIMEOUT_S = 10.0
MAX_LINES = 20  # failures listed in one alert; more are counted
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>|]+")


def redact_url(url: str) -> str:
    """`url` without userinfo, query and fragment (`https://user:pw@h/p?token=x` -> `https://h/p`)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<url>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each URL redacted (`redact_url`) and each secret replaced by `***`."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


@dataclass(frozen=True)
class Alert:
    """One thing to tell: `title` (one line), the run, and the failures (step/asset/check: message)."""

    title: str
    run_id: str | None = None
    job: str | None = None
    failures: Sequence[str] = field(default_factory=tuple)
    ui_path: str | None = None  # the page of the UI to link (default: the run's, `/runs/<run_id>`)

    def lines(self, ui_url: str | None = None) -> list[str]:
        lines = [self.title]
        if self.job or self.run_id:
            lines.append(f"job {self.job or '?'}, run {self.run_id or '?'}")
        lines += [f"- {failure}" for failure in self.failures[:MAX_LINES]]
        if len(self.failures) > MAX_LINES:
            lines.append(f"- ... and {len(self.failures) - MAX_LINES} more")
        path = self.ui_path or (f"/runs/{self.run_id}" if self.run_id else None)
        if ui_url and path:
            lines.append(f"{redact_url(ui_url).rstrip('/')}{path}")
        return lines


def payload(alert: Alert, ui_url: str | None = None, secrets: Iterable[str] = ()) -> dict:
    """Slack's incoming-webhook JSON: `text` (the fallback every client shows) and one mrkdwn section."""
    secrets = list(secrets)
    text = redact("\n".join(alert.lines(ui_url)), secrets)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}


def secrets_of(settings: Settings | None) -> list[str]:
    if settings is None:
        return []
    values = [t.get_secret_value() for t in settings.github_tokens]
    if settings.alert_webhook is not None:
        values.append(settings.alert_webhook.get_secret_value())
    return values


def notify(alert: Alert, settings: Settings | None, log: logging.Logger | None = None,
           client: httpx.Client | None = None, level: int = logging.ERROR) -> bool:
    """Log the alert (at `level`: a recovery is not an error); POST it to PULSE_ALERT_WEBHOOK when set.
    True when the webhook took it (2xx). Never raises."""
    log = log or LOG
    ui_url = settings.ui_url if settings is not None else None
    secrets = secrets_of(settings)
    body = payload(alert, ui_url, secrets)
    log.log(level, "pulse alert: %s", body["text"].replace("\n", " | "))
    hook = settings.alert_webhook if settings is not None else None
    if hook is None:
        return False
    url = hook.get_secret_value()
    shown = urlsplit(url).hostname or "the webhook"
    # httpx logs each request's URL at INFO (httpcore its details at DEBUG): the webhook's URL is a secret
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        if client is None:
            with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as own:
                response = own.post(url, json=body)
        else:
            response = client.post(url, json=body)
    except Exception as exc:  # an alert never fails its sensor
        log.warning("pulse alert: webhook %s failed: %s", shown, redact(type(exc).__name__ + ": " + str(exc),
                                                                         secrets))
        return False
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    if not response.is_success:
        log.warning("pulse alert: webhook %s answered HTTP %s", shown, response.status_code)
        return False
    return True
