"""The automation settings: clear one-line errors naming the variable, and a webhook URL that is never
echoed (a Slack webhook URL is itself a credential)."""

from __future__ import annotations

import pytest

from pipelines.settings import Settings, SettingsError


def test_defaults_and_values():
    default = Settings.from_mapping({})
    assert (default.freshness_hours, default.schedule_on, default.alert_webhook, default.ui_url) == (26, False, None,
                                                                                                      None)
    set_ = Settings.from_mapping({"PULSE_FRESHNESS_HOURS": "30", "PULSE_SCHEDULE": "ON",
                                  "PULSE_ALERT_WEBHOOK": "https://hooks.slack.com/services/T/B/x",
                                  "PULSE_UI_URL": "http://localhost:3000/"})
    assert set_.freshness_hours == 30 and set_.schedule_on and set_.ui_url == "http://localhost:3000"
    assert "hooks.slack.com" not in repr(set_)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("PULSE_FRESHNESS_HOURS", "soon", "PULSE_FRESHNESS_HOURS='soon' is not a number of hours"),
    ("PULSE_FRESHNESS_HOURS", "0", "must be a positive number of hours"),
    ("PULSE_SCHEDULE", "daily", "PULSE_SCHEDULE='daily' is neither on nor off"),
    ("PULSE_ALERT_WEBHOOK", "hooks.slack.com/services/secret", "PULSE_ALERT_WEBHOOK=(hidden: it may hold a secret)"),
])
def test_bad_values_are_named(name, value, message):
    with pytest.raises(SettingsError, match=None) as caught:
        Settings.from_mapping({name: value})
    assert message in str(caught.value)
    if name == "PULSE_ALERT_WEBHOOK":
        assert "secret" not in str(caught.value).replace("may hold a secret", "")
