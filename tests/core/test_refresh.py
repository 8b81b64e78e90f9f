"""An incremental core refresh gives the same tables as a full rebuild."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import orjson
import pytest

from assets.core.columns import CORE_KEYS
from assets.core.refresh import CoreChanges, core_changes, last_mode, read_core, refresh_core
from assets.core.transform import build_core_from_archive
from assets.history.history import consumed_core_version, history_rows, snapshot_history
from tests.fixtures.sample import rest_repo, sample_catalogue, write_sample
from warehouse.archive import RawResponse, write_batch
from warehouse.db import connect_writer
from warehouse.load import query

NOW = datetime(2026, 11, 28, tzinfo=UTC)
LATER = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
def sample_warehouse(tmp_path):
    """(raw archive folder with the sample written, the sample catalogue, a writer on a new warehouse)."""
    raw = tmp_path / "raw"
    write_sample(raw)
    con = connect_writer(tmp_path / "warehouse.duckdb")
    try:
        yield raw, sample_catalogue(), con
    finally:
        con.close()


def pending(con) -> CoreChanges:
    """What the history asset asks: core's changes since the version history consumed last."""
    return core_changes(con, since=consumed_core_version(con))


def snapshot(con, refresh_id: str, at: datetime) -> int:
    """One history snapshot as the asset takes it (incremental, consuming core's changes)."""
    return snapshot_history(con, refresh_id, at, changes=pending(con))


def _changes(raw):
    gh = [
        RawResponse("github:contributors:acme/alpha", "github", "contributors", "github:acme/alpha", "/c", 200,
                    orjson.dumps([{"login": "carol", "type": "User", "contributions": 9}]).decode(), fetched_at=LATER),
        RawResponse("github:repo:z/zeta", "github", "repo", "github:z/zeta", "/r", 200,
                    orjson.dumps(rest_repo("z/zeta", 77)).decode(), fetched_at=LATER),
    ]
    pypi = [RawResponse("pypi:json:alpha", "pypi", "pypi_json", "pypi:alpha", "/p", 503, None,
                        error_kind="transient", error="503", fetched_at=LATER)]
    write_batch(raw, "github", gh, "later")
    write_batch(raw, "pypi", pypi, "later")


def test_incremental_equals_full(sample_warehouse):
    raw, catalogue, con = sample_warehouse
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "full"
    assert pending(con) == CoreChanges(version=1, full=True)  # a new history recomputes everything
    assert snapshot(con, "r1", NOW) == 9
    assert consumed_core_version(con) == 1
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "unchanged"
    assert pending(con) == CoreChanges(version=2, full=False, package_ids=())
    _changes(raw)
    refresh = refresh_core(con, catalogue, raw, now=NOW)
    assert refresh.mode == "incremental"
    assert refresh.written["core.packages"] == 3  # alpha, beta (same repo), zeta
    assert last_mode(con) == "incremental"
    assert pending(con) == CoreChanges(version=3, full=False, package_ids=(1, 2, 6))
    incremental = read_core(con)
    full = build_core_from_archive(catalogue, raw)
    for name, frame in full.items():
        assert incremental[name].equals(frame.sort(list(CORE_KEYS[name]))), name
    alpha = query(con, "SELECT repo_watchers, is_stale FROM core.packages WHERE id = 1").row(0)
    assert alpha == (120, True)  # PyPI's newest attempt failed: stale, old data kept
    # history: only the changed packages are recomputed, the rest carried over
    assert snapshot(con, "r2", NOW.replace(day=29)) == 9
    assert pending(con).package_ids == () and not pending(con).full
    zeta = query(con, "SELECT refresh_id, stars FROM history.package_metrics WHERE package_id = 6 ORDER BY 1")
    assert zeta.rows() == [("r1", 42), ("r2", 77)]
    # a catalogue change forces a full rebuild
    changed = dict(catalogue)
    changed["packages"] = catalogue["packages"].head(6)
    assert refresh_core(con, changed, raw, now=NOW).mode == "full"


def test_pending_changes_accumulate_until_history_consumes_them(sample_warehouse):
    raw, catalogue, con = sample_warehouse
    refresh_core(con, catalogue, raw, now=NOW)
    snapshot(con, "r1", NOW)
    for subject, repo in (("github:z/zeta", "z/zeta"), ("github:old/gamma", "old/gamma")):
        write_batch(raw, "github", [RawResponse(f"github:repo:{repo}", "github", "repo", subject, "/r", 200,
                                                orjson.dumps(rest_repo(repo, 1)).decode(), fetched_at=LATER)],
                    "later")
        assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    assert pending(con).package_ids == (3, 6)  # two core refreshes, no history in between
    snapshot(con, "r2", NOW.replace(day=29))
    stars = query(con, "SELECT package_id, stars FROM history.package_metrics WHERE refresh_id = 'r2' "
                       "AND package_id IN (3, 6) ORDER BY 1")
    assert stars.rows() == [(3, 1), (6, 1)]


def test_incremental_codeberg_batch_equals_full(sample_warehouse):
    raw, catalogue, con = sample_warehouse
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "full"
    snapshot(con, "r1", NOW)
    commits = [{"sha": "t3", "created": "2026-11-25T10:00:00+02:00",
                "commit": {"committer": {"date": "2026-11-25T10:00:00+02:00"}}}]
    write_batch(raw, "codeberg", [
        RawResponse("codeberg:codeberg_repo:cb/theta", "codeberg", "codeberg_repo", "codeberg:cb/theta", "/r",
                    200, orjson.dumps({"full_name": "cb/theta", "stars_count": 21, "forks_count": 4,
                                       "description": "Theta 2"}).decode(), fetched_at=LATER),
        RawResponse("codeberg:codeberg_commits:cb/theta", "codeberg", "codeberg_commits", "codeberg:cb/theta",
                    "/c", 200, orjson.dumps(commits).decode(), fetched_at=LATER),
    ], "later")
    refresh = refresh_core(con, catalogue, raw, now=NOW)
    assert refresh.mode == "incremental" and refresh.written["core.packages"] == 1
    assert pending(con).package_ids == (8,)
    incremental = read_core(con)
    full = build_core_from_archive(catalogue, raw)
    for name, frame in full.items():
        assert incremental[name].equals(frame.sort(list(CORE_KEYS[name]))), name
    theta = query(con, "SELECT repo_watchers, repo_forks, repo_description, last_updated FROM core.packages "
                       "WHERE id = 8").row(0)
    assert theta[:3] == (21, 4, "Theta 2")
    assert theta[3] == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _same_history(con, a: str, b: str) -> None:
    left, right = history_rows(con, a), history_rows(con, b)
    assert left.height == right.height > 0
    assert left.equals(right), (left, right)


def test_rerunning_a_refresh_id_keeps_its_current_values(sample_warehouse):
    """Re-running the newest refresh (same run id, nothing pending) must not fall back to the
    refresh before it: zeta's stars stay 77 (regression: the re-run copied 42 from r1)."""
    raw, catalogue, con = sample_warehouse
    refresh_core(con, catalogue, raw, now=NOW)
    snapshot(con, "r1", NOW)
    _changes(raw)
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    snapshot(con, "r2", NOW.replace(day=29))
    stars = "SELECT stars FROM history.package_metrics WHERE refresh_id = 'r2' AND package_id = 6"
    assert query(con, stars).item() == 77
    # the same run id again (e.g. a re-executed history step): nothing is pending now
    assert pending(con).package_ids == () and not pending(con).full
    assert snapshot(con, "r2", NOW.replace(day=30)) == 9
    assert query(con, stars).item() == 77
    assert query(con, "SELECT count(*) FROM history.package_metrics WHERE refresh_id = 'r2'").item() == 9
    assert query(con, "SELECT snapshot_at FROM history.refreshes WHERE refresh_id = 'r2'").item() == \
        NOW.replace(day=30)
    # and a re-run with new core changes in between recomputes just those, on its own rows
    write_batch(raw, "github", [RawResponse("github:repo:z/zeta", "github", "repo", "github:z/zeta", "/r", 200,
                                            orjson.dumps(rest_repo("z/zeta", 99)).decode(),
                                            fetched_at=LATER.replace(day=27))], "later2")
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    snapshot(con, "r2", NOW.replace(day=30))
    assert query(con, stars).item() == 99
    snapshot_history(con, "full", NOW.replace(day=30, hour=1))
    _same_history(con, "r2", "full")


def test_incremental_history_equals_a_full_snapshot(sample_warehouse):
    raw, catalogue, con = sample_warehouse
    refresh_core(con, catalogue, raw, now=NOW)
    snapshot(con, "r1", NOW)
    # two incremental core refreshes (new contributors, stars, a failed PyPI fetch, a release
    # yanked) before the next snapshot
    _changes(raw)
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    pypi = orjson.dumps({"info": {"version": "0.4", "classifiers": []},
                         "releases": {"0.4": [{"upload_time_iso_8601": "2026-11-24T00:00:00Z",
                                               "yanked": False}]}}).decode()
    write_batch(raw, "pypi", [RawResponse("pypi:json:delta", "pypi", "pypi_json", "pypi:delta", "/p", 200,
                                          pypi, fetched_at=LATER)], "later2")
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    changed = pending(con)
    assert changed.package_ids == (1, 2, 4, 6)
    snapshot_history(con, "r2", NOW.replace(day=29), changes=changed)
    snapshot_history(con, "r2-full", NOW.replace(day=29, hour=1))  # changes=None: every package computed
    _same_history(con, "r2", "r2-full")
    delta = query(con, "SELECT latest_release, latest_release_at FROM history.package_metrics "
                       "WHERE refresh_id = 'r2' AND package_id = 4").row(0)
    assert delta == ("0.4", datetime(2026, 11, 24, tzinfo=UTC))
    # and the incremental core equals a full rebuild, so history built on either agrees
    full = build_core_from_archive(catalogue, raw)
    incremental = read_core(con)
    for name, frame in full.items():
        assert incremental[name].equals(frame.sort(list(CORE_KEYS[name]))), name


def test_history_catches_up_on_every_core_refresh_after_a_failed_snapshot(sample_warehouse, monkeypatch):
    """A failed snapshot records nothing: the cursor stays, and the next snapshot covers every core
    refresh since the last good one (a full rebuild among them means every package)."""
    import assets.history.history as history

    raw, catalogue, con = sample_warehouse
    refresh_core(con, catalogue, raw, now=NOW)
    snapshot(con, "r1", NOW)
    _changes(raw)
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    with monkeypatch.context() as patch:
        patch.setattr(history, "CARRY_SQL", "SELECT * FROM no_such_table")
        with pytest.raises(duckdb.CatalogException):
            snapshot(con, "r2", NOW.replace(day=29))
    assert consumed_core_version(con) == 1
    assert query(con, "SELECT count(*) FROM history.refreshes").item() == 1
    write_batch(raw, "github", [RawResponse("github:repo:old/gamma", "github", "repo", "github:old/gamma", "/r",
                                            200, orjson.dumps(rest_repo("old/gamma", 5)).decode(),
                                            fetched_at=LATER)], "later2")
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    assert pending(con) == CoreChanges(version=3, full=False, package_ids=(1, 2, 3, 6))
    assert snapshot(con, "r3", NOW.replace(day=29)) == 9
    snapshot_history(con, "r3-full", NOW.replace(day=29, hour=1))
    _same_history(con, "r3", "r3-full")
    assert refresh_core(con, catalogue, raw, now=NOW, full=True).mode == "full"
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "unchanged"
    assert pending(con) == CoreChanges(version=5, full=True)
    assert snapshot(con, "r4", NOW.replace(day=30)) == 9
    assert consumed_core_version(con) == 5


def test_incremental_history_carries_todays_health_scores(sample_warehouse):
    """Health depends on the scoring time, so it changes for every package each day: carried rows
    take the new score from health.package_scores (one join), and the incremental snapshot still
    equals a full one; a re-run of the newest refresh id rescoring in place does too."""
    from assets.health.scoring import score_warehouse

    raw, catalogue, con = sample_warehouse
    refresh_core(con, catalogue, raw, now=NOW)
    score_warehouse(con, now=NOW)
    snapshot(con, "r1", NOW)
    first = query(con, "SELECT package_id, health_score FROM history.package_metrics WHERE refresh_id = 'r1' "
                       "ORDER BY 1")
    assert first["health_score"].null_count() == 0
    _changes(raw)
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
    later = NOW.replace(year=2027, month=6)  # months later: recency ramps move for every package
    score_warehouse(con, now=later)
    changed = pending(con)
    assert changed.package_ids == (1, 2, 6)
    snapshot_history(con, "r2", later, changes=changed)
    snapshot_history(con, "r2-full", later.replace(hour=1))
    _same_history(con, "r2", "r2-full")
    carried = query(con, "SELECT m.package_id, m.health_score, s.health_score AS now_score "
                         "FROM history.package_metrics m JOIN health.package_scores s USING (package_id) "
                         "WHERE m.refresh_id = 'r2' AND m.package_id NOT IN (1, 2, 6) ORDER BY 1")
    assert carried["health_score"].to_list() == carried["now_score"].to_list()
    old = dict(first.rows())
    assert any(old[p] != s for p, s in carried.select("package_id", "health_score").rows())
    # re-running r2 with nothing pending keeps its rows in place and rescores them
    score_warehouse(con, now=later.replace(year=2028))
    snapshot(con, "r2-full", later.replace(year=2028))
    rescored = query(con, "SELECT m.health_score, s.health_score AS now_score FROM history.package_metrics m "
                          "JOIN health.package_scores s USING (package_id) WHERE m.refresh_id = 'r2-full'")
    assert rescored["health_score"].to_list() == rescored["now_score"].to_list()


def test_a_pypistats_batch_is_incremental_and_reaches_history(sample_warehouse):
    """New download counts (delta's first statistics, alpha's newer month) rebuild only their packages,
    core.downloads_daily included, equal a full rebuild, and history keeps pypi_downloads incrementally."""
    raw, catalogue, con = sample_warehouse
    refresh_core(con, catalogue, raw, now=NOW)
    snapshot(con, "r1", NOW)
    recent = {"data": {"last_day": 1, "last_week": 7, "last_month": 31}, "package": "delta", "type": "recent_downloads"}
    days = [{"category": "without_mirrors", "date": f"2026-11-{d:02d}", "downloads": 1} for d in range(1, 26)]
    write_batch(raw, "pypistats", [
        RawResponse("pypistats:recent:delta", "pypistats", "pypistats_recent", "pypistats:delta", "/r", 200,
                    orjson.dumps(recent).decode(), fetched_at=LATER),
        RawResponse("pypistats:overall:delta", "pypistats", "pypistats_overall", "pypistats:delta", "/o", 200,
                    orjson.dumps({"data": days, "package": "delta", "type": "overall_downloads"}).decode(),
                    fetched_at=LATER),
    ], "later")
    refresh = refresh_core(con, catalogue, raw, now=NOW)
    assert refresh.mode == "incremental" and refresh.written["core.packages"] == 1
    assert pending(con).package_ids == (4,)
    full = build_core_from_archive(catalogue, raw)
    incremental = read_core(con)
    for name, frame in full.items():
        assert incremental[name].equals(frame.sort(list(CORE_KEYS[name]))), name
    assert query(con, "SELECT count(*) FROM core.downloads_daily WHERE package_id = 4").item() == 25
    assert query(con, "SELECT count(*) FROM core.crawl_errors WHERE source = 'pypistats'").item() == 0
    snapshot(con, "r2", NOW.replace(day=29))
    snapshot_history(con, "r2-full", NOW.replace(day=29, hour=1))
    _same_history(con, "r2", "r2-full")
    rows = query(con, "SELECT refresh_id, package_id, pypi_downloads FROM history.package_metrics "
                      "WHERE package_id IN (1, 4) AND refresh_id IN ('r1', 'r2') ORDER BY 1, 2").rows()
    assert rows == [("r1", 1, 20535), ("r1", 4, None), ("r2", 1, 20535), ("r2", 4, 31)]


def test_incremental_endpoint_rows_equal_full(sample_warehouse):
    raw, catalogue, con = sample_warehouse
    assert refresh_core(con, catalogue, raw, now=NOW).mode == "full"
    for at, failing in ((LATER, True), (NOW, False)):
        write_batch(raw, "pypi", [RawResponse(
            "pypi:endpoint:pypi_simple", "pypi", "endpoint", "endpoint:pypi:pypi_simple", "/simple/x/",
            404 if failing else 200, None, error_kind="endpoint" if failing else None,
            error="pypi endpoint pypi_simple is not working" if failing else None, fetched_at=at)], "r")
        assert refresh_core(con, catalogue, raw, now=NOW).mode == "incremental"
        incremental = read_core(con)
        assert len(incremental["core.endpoint_errors"]) == (1 if failing else 0)
        full = build_core_from_archive(catalogue, raw)
        for name, frame in full.items():
            assert incremental[name].equals(frame.sort(list(CORE_KEYS[name]))), name
