"""`pulse refresh` exit codes and closing summary, from a run's outcome (the run itself is faked here;
tests/e2e/test_catalogue_guard.py runs the real thing): 0 ok, 3 degraded, 1 fatal."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from pipelines import cli, runner
from pipelines.runner import RefreshOutcome, crawl_errors_summary

ERROR_TABLES = """
CREATE SCHEMA core;
CREATE TABLE core.crawl_errors (package_id BIGINT, source VARCHAR, request_key VARCHAR, kind VARCHAR,
    http_status INTEGER, message VARCHAR, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, attempts INTEGER,
    severity VARCHAR);
CREATE TABLE core.endpoint_errors (source VARCHAR, endpoint VARCHAR, request_key VARCHAR, kind VARCHAR,
    http_status INTEGER, message VARCHAR, requests INTEGER, seen_at TIMESTAMPTZ);
"""


def _published(home, rows: list[tuple]) -> None:
    """Package rows (6 values) go to core.crawl_errors, endpoint rows (source, endpoint, message) to
    core.endpoint_errors, as the crawler's endpoint health writes them."""
    home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(home / "published.duckdb"))
    con.execute(ERROR_TABLES)
    for row in rows:
        if len(row) == 3:
            source, endpoint, message = row
            con.execute("INSERT INTO core.endpoint_errors VALUES (?, ?, ?, 'endpoint', 404, ?, 5, now())",
                        [source, endpoint, f"{source}:endpoint:{endpoint}", message])
        else:
            con.execute("INSERT INTO core.crawl_errors (package_id, source, request_key, kind, message, severity) "
                        "VALUES (?, ?, ?, ?, ?, ?)", row)
    con.close()


PACKAGE_ERROR = (7, "github", "github:repo:o/r", "gone", "HTTP 404", "error")
ENDPOINT_ERROR = ("github", "graphql_repo", "GraphQL endpoint answered HTTP 404 to every query")


def _refresh(monkeypatch, tmp_path, outcome: RefreshOutcome, rows: list[tuple]):
    home = tmp_path / "home"
    _published(home, rows)
    monkeypatch.setenv("PULSE_HOME", str(home))
    monkeypatch.setattr(runner, "run_refresh", lambda settings, **kwargs: outcome)
    return CliRunner().invoke(cli.main, ["refresh"])


def test_package_errors_are_normal(monkeypatch, tmp_path):
    result = _refresh(monkeypatch, tmp_path, RefreshOutcome(success=True, seconds=1.0), [PACKAGE_ERROR])
    assert result.exit_code == cli.EXIT_OK == 0, result.output
    assert "1 packages with errors recorded" in result.output


def test_no_errors(monkeypatch, tmp_path):
    result = _refresh(monkeypatch, tmp_path, RefreshOutcome(success=True, seconds=1.0), [])
    assert result.exit_code == 0 and "no upstream errors recorded" in result.output


def test_an_unavailable_source_endpoint_degrades_the_run(monkeypatch, tmp_path):
    result = _refresh(monkeypatch, tmp_path, RefreshOutcome(success=True, seconds=1.0), [ENDPOINT_ERROR])
    assert result.exit_code == cli.EXIT_DEGRADED == 3, result.output
    assert "no upstream errors" not in result.output
    assert "github unavailable (graphql_repo): GraphQL endpoint answered HTTP 404 to every query" in result.output
    assert result.output.strip().splitlines()[-1].startswith("pulse: refresh degraded: github unavailable;")


def test_endpoint_rows_are_not_package_failures(tmp_path):
    _published(tmp_path, [PACKAGE_ERROR, ENDPOINT_ERROR, ("pypi", "pypi_simple", "x")])
    summary = crawl_errors_summary(tmp_path / "published.duckdb")
    assert summary.failing_packages == 1 and summary.failures == [("github", "gone", 1)]
    assert [e[:2] for e in summary.endpoints] == [("github", "graphql_repo"), ("pypi", "pypi_simple")]


@pytest.mark.parametrize(("kept", "code"), [(240, 3), (0, 1)])
def test_a_refused_catalogue(monkeypatch, tmp_path, kept, code):
    reason = "catalogue refused: 0 packages (an empty catalogue is never applied)"
    outcome = RefreshOutcome(success=False, seconds=1.0, failure=reason, catalogue_refused=reason,
                             catalogue_kept=kept)
    result = _refresh(monkeypatch, tmp_path, outcome, [])
    assert result.exit_code == code, result.output
    assert "no upstream errors" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert reason in last
    assert last.startswith("pulse: refresh degraded: " if kept else "pulse: refresh failed after ")


def test_a_failed_step_is_fatal(monkeypatch, tmp_path):
    outcome = RefreshOutcome(success=False, seconds=1.0, failure="core_tables: boom")
    result = _refresh(monkeypatch, tmp_path, outcome, [])
    assert result.exit_code == cli.EXIT_FATAL == 1
    assert result.output.strip().splitlines()[-1] == "pulse: refresh failed after 1.0s: core_tables: boom"
