"""The staleness alert: the real `staleness_alert` sensor, evaluated as the daemon does
(`dg.build_sensor_context` on a real Dagster instance), posts to a real HTTP receiver once when the
published snapshot turns stale and once when it is fresh again, never on the ticks between (its
cursor), with a link to the asset in the UI and no secret anywhere. Time moves by moving the
snapshot's published time (the file's mtime, or the instance's materialization) or the sensor's `now`."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipelines.sensors import PUBLISHED_ASSET, evaluate_staleness, staleness_alert
from pipelines.settings import Settings
from tests.automation.test_alerts import HOOK_SECRET, TOKEN, Receiver

UI_LINK = "http://dagster.example:3000/assets/exports/published_warehouse"


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def home(tmp_path, monkeypatch, receiver):
    monkeypatch.setenv("PULSE_HOME", str(tmp_path))
    monkeypatch.setenv("PULSE_ALERT_WEBHOOK", f"{receiver.url}/services/{HOOK_SECRET}?token=abc")
    monkeypatch.setenv("PULSE_UI_URL", "http://admin:uipass@dagster.example:3000/?sso=abc")
    monkeypatch.setenv("PULSE_FRESHNESS_HOURS", "26")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return tmp_path


def published_at(home, hours_ago: float) -> None:
    path = home / "published.duckdb"
    path.touch()
    stamp = time.time() - hours_ago * 3600
    os.utime(path, (stamp, stamp))


def tick(instance, cursor):
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        result = staleness_alert(context)
    return result, result.cursor if result.cursor is not None else cursor


def no_secret_in(text: str) -> None:
    for secret in (TOKEN, HOOK_SECRET, "token=abc", "uipass", "sso=abc"):
        assert secret not in text


def test_one_post_when_stale_one_when_fresh_again_never_between(home, receiver, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    with dg.DagsterInstance.ephemeral() as instance:
        _, cursor = tick(instance, None)  # nothing published yet: nothing to tell
        assert receiver.bodies == [] and json.loads(cursor)["state"] == "unknown"

        published_at(home, 1)
        _, cursor = tick(instance, cursor)
        _, cursor = tick(instance, cursor)
        assert receiver.bodies == [] and json.loads(cursor)["state"] == "fresh"

        published_at(home, 30)  # the next refresh never came
        result, cursor = tick(instance, cursor)
        assert result.skip_reason.skip_message.endswith("; told")
        [stale] = receiver.bodies
        text = stale["text"]
        assert text.startswith("Package Pulse: the published data is stale")
        assert "exports/published_warehouse: stale: 30.0 h old (stale after 26 h)" in text
        assert text.rstrip().endswith(UI_LINK)
        assert stale["blocks"][0]["text"]["text"] == text
        for _ in range(3):  # later ticks of the same staleness: silent
            _, cursor = tick(instance, cursor)
        assert len(receiver.bodies) == 1 and json.loads(cursor)["state"] == "stale"

        published_at(home, 0)  # a refresh published again
        _, cursor = tick(instance, cursor)
        _, cursor = tick(instance, cursor)
        assert len(receiver.bodies) == 2
        assert receiver.bodies[1]["text"].startswith("Package Pulse: the published data is fresh again")
        assert UI_LINK in receiver.bodies[1]["text"]

    logged = caplog.text + "".join(capfd.readouterr())
    no_secret_in(b"".join(receiver.raw).decode() + logged)
    assert logged.count("pulse alert: Package Pulse: the published data is stale") == 1  # logged too
    assert UI_LINK in logged


def test_the_instance_record_moves_time_and_a_refused_post_is_tried_again(home, receiver):
    settings = Settings.from_env()
    published_at(home, 0)  # the file looks fresh, but the instance's record is what counts
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(list(PUBLISHED_ASSET)))
        now = datetime.now(UTC)
        cursor, said = evaluate_staleness(settings, instance, None, now + timedelta(hours=1))
        assert json.loads(cursor)["state"] == "fresh" and "nothing to tell" in said

        receiver.status = 500  # the webhook refuses: the cursor stays, the next tick tries again
        kept, said = evaluate_staleness(settings, instance, cursor, now + timedelta(hours=27))
        assert kept == cursor and "tries again" in said and len(receiver.bodies) == 1
        receiver.status = 200
        cursor, said = evaluate_staleness(settings, instance, kept, now + timedelta(hours=27, minutes=10))
        assert json.loads(cursor)["state"] == "stale" and len(receiver.bodies) == 2
        assert "27.2 h old" in receiver.bodies[1]["text"]
        cursor, _ = evaluate_staleness(settings, instance, cursor, now + timedelta(hours=28))
        assert len(receiver.bodies) == 2

        instance.report_runless_asset_event(dg.AssetMaterialization(list(PUBLISHED_ASSET)))
        cursor, _ = evaluate_staleness(settings, instance, cursor, now + timedelta(hours=2))
        assert json.loads(cursor)["state"] == "fresh" and "fresh again" in receiver.bodies[2]["text"]


def test_a_first_tick_on_stale_data_tells_once_even_without_a_webhook(home, monkeypatch, capfd, receiver):
    monkeypatch.delenv("PULSE_ALERT_WEBHOOK")
    published_at(home, 48)
    with dg.DagsterInstance.ephemeral() as instance:
        _, cursor = tick(instance, None)
        _, cursor = tick(instance, cursor)
    assert receiver.bodies == [] and json.loads(cursor)["state"] == "stale"
    assert "".join(capfd.readouterr()).count("the published data is stale") == 1
