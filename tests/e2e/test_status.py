"""`pulse status` through the real CLI on the session's refreshed home (the real refresh against the
simulator), and its parts in-process on a home where nothing ran yet. The quota comes from the simulator's GitHub
`/rate_limit` (shaped as GitHub documents it), per account (the login the crawl learned), and never
shows a token."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pipelines.settings import Settings
from pipelines.status import collect, lines, schedule
from simulator.github import login_for
from tests.e2e.conftest import SIM_TOKENS, run_pulse

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def test_status_of_a_refreshed_home(refreshed):
    result = run_pulse("status", "--json", env=refreshed.env)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    run = status["last_run"]
    assert run["job"] == "refresh" and run["status"] == "SUCCESS" and run["trigger"] == "pulse refresh"
    assert run["seconds"] > 0 and {"catalogue", "raw", "core", "exports"} <= set(run["materialized"])
    crawl = status["last_crawl"]
    assert crawl["run_id"] == run["run_id"] and crawl["requests"] > 0
    for name in ("exports/published_warehouse", "exports/api_v4"):
        assert status["freshness"][name]["state"] == "fresh" and status["freshness"][name]["from"] == "dagster"
    assert status["core"]["version"] >= 1
    # named by the login the crawl learned (GET /user): the simulator's two tokens are two accounts
    logins = [login_for(token) for token in SIM_TOKENS.split(",")]
    assert [row["account"] for row in status["quota"]] == logins
    assert [(a["account"], a["tokens"]) for a in status["accounts"]] == [(login, 1) for login in logins]
    assert all(row["core"]["limit"] > 0 and row["core"]["remaining"] >= 0 for row in status["quota"])
    schedule = status["schedule"]
    assert schedule["cron"] == "0 4 * * *" and schedule["on"] is False and schedule["next"] is None
    assert datetime.fromisoformat(schedule["next_if_on"]).hour == 4

    human = "\n".join(lines(status))  # what `pulse status` prints without --json
    assert "last run: refresh SUCCESS" in human and f"quota {logins[0]}: core " in human
    assert "schedule daily_refresh: 0 4 * * * UTC, off (PULSE_SCHEDULE); would run next at " in human
    for token in SIM_TOKENS.split(","):
        assert token not in result.stdout + result.stderr


def test_the_schedule_is_on_when_asked(tmp_path):
    on = schedule(Settings.from_mapping({"PULSE_HOME": str(tmp_path), "PULSE_SCHEDULE": "on"}), None, NOW)
    assert on["on"] is True and on["next"] == "2026-12-03T04:00:00+00:00"
    off = schedule(Settings.from_mapping({"PULSE_HOME": str(tmp_path)}), None, NOW)
    assert off["on"] is False and off["next"] is None and off["next_if_on"] == on["next"]


def test_status_of_a_home_with_no_runs(tmp_path):
    # in-process (the CLI's exit code and JSON are shown above): the same `collect` and `lines`
    settings = Settings.from_mapping({"PULSE_HOME": str(tmp_path / "new")})
    status = collect(settings, now=NOW, online=False)
    assert status["last_run"] is None and status["last_crawl"] is None and status["core"] is None
    human = "\n".join(lines(status))
    assert "last run: none yet" in human and "quota: not asked (--offline)" in human
    assert "freshness exports/api_v4: unknown: never materialized" in human
    assert not (tmp_path / "new").exists()  # a status changes nothing
