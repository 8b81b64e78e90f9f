"""Pulse health: archetypes with expected ranges, the inputs built from core-shaped frames, the
configuration, grid ranking, and properties (bounded, components add up, monotone, deterministic)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.health.health import (
    COMPONENTS,
    INPUT_SCHEMA,
    health_inputs,
    load_config,
    load_eol,
    score_health,
)
from assets.marts.grids import grid_health

NOW = datetime(2026, 8, 18, 12, 0, tzinfo=UTC)


def days(n: float) -> datetime:
    return NOW - timedelta(days=n)


HEALTHY = {
    "package_id": 1, "stars": 400, "downloads_last_month": 40_000, "active_weeks": 20, "observed_weeks": None,
    "last_commit_at": days(10), "last_human_commit_at": days(10), "human_contributors": 12,
    "bot_contributors": 1, "bus_factor": 2, "on_pypi": True, "latest_version": "2.0",
    "latest_release_at": days(60), "releases_2y": 4, "latest_yanked": False, "yanked_version": None,
    "requires_python": ">=3.10", "python_versions": ["3.10", "3.11", "3.12", "3.13"],
    "django_versions": ["4.2", "5.2"], "latest_vulnerabilities": 0, "repo_archived": False,
    "pypi_status": "active", "pypi_status_reason": None, "pypi_inactive": False,
    "catalogue_deprecated": False, "upstream_gone": False, "downloads_trend": None,
}


def pkg(**kw) -> dict:
    return {**HEALTHY, **kw}


ARCHETYPES = {
    "active popular framework": (pkg(stars=30_000, downloads_last_month=3_000_000, active_weeks=50,
                                     last_commit_at=days(1), last_human_commit_at=days(1), human_contributors=400,
                                     bus_factor=6, releases_2y=12, latest_release_at=days(20)), 90, 100),
    "done small utility": (pkg(stars=150, downloads_last_month=5_000, active_weeks=3, last_commit_at=days(240),
                               last_human_commit_at=days(240), human_contributors=3, bus_factor=1,
                               latest_release_at=days(150), releases_2y=2), 55, 80),
    "archived repository": (pkg(repo_archived=True), 0, 25),
    "deprecated PyPI project": (pkg(pypi_status="deprecated", pypi_status_reason="use new-thing"), 0, 25),
    "brand-new active repository": (pkg(stars=30, downloads_last_month=200, active_weeks=6, observed_weeks=6,
                                        last_commit_at=days(2), last_human_commit_at=days(2), human_contributors=2,
                                        bus_factor=1, latest_release_at=days(10), releases_2y=1,
                                        python_versions=[], django_versions=[]), 45, 85),
    "popular, abandoned for three years": (pkg(stars=5_000, downloads_last_month=200_000, active_weeks=0,
                                               last_commit_at=days(1100), last_human_commit_at=days(1100),
                                               latest_release_at=days(1100), releases_2y=0, human_contributors=40,
                                               bus_factor=3, requires_python=None, python_versions=["3.6", "3.7"],
                                               django_versions=["2.2", "3.2"]), 10, 40),
    "only bots commit lately": (pkg(active_weeks=0, last_commit_at=days(3), last_human_commit_at=days(900),
                                    latest_release_at=days(800), releases_2y=0), 10, 40),
    "latest release has a known vulnerability": (pkg(latest_vulnerabilities=2), 40, 60),
    "yanked latest release": (pkg(latest_yanked=True, yanked_version="2.1"), 60, 90),
    "not on PyPI": (pkg(on_pypi=False, downloads_last_month=None, latest_version=None, latest_release_at=None,
                        releases_2y=0, requires_python=None, python_versions=None, django_versions=None,
                        latest_vulnerabilities=None, pypi_status=None), 30, 65),
    "upstream vanished": (pkg(upstream_gone=True), 0, 10),
}


def score(*rows: dict, **kw) -> pl.DataFrame:
    return score_health(pl.DataFrame(list(rows), schema=INPUT_SCHEMA), now=NOW, **kw)


@pytest.mark.parametrize("name", list(ARCHETYPES))
def test_archetype_ranges(name):
    row, low, high = ARCHETYPES[name]
    result = score(row).row(0, named=True)
    assert low <= result["health_score"] <= high, (name, result["health_score"], result["explanation"])


def test_archetype_reasons_and_fairness():
    names = list(ARCHETYPES)
    result = score(*(dict(ARCHETYPES[n][0], package_id=i) for i, n in enumerate(names)))
    by = {n: result.row(i, named=True) for i, n in enumerate(names)}
    lines = {n: r["explanation"].split("\n") for n, r in by.items()}
    assert lines["archived repository"][0] == "capped at 25: the repository is archived"
    assert lines["deprecated PyPI project"][0] == "capped at 25: the PyPI project is deprecated (use new-thing)"
    assert lines["upstream vanished"][0].startswith("capped at 10: the upstream vanished")
    assert lines["latest release has a known vulnerability"][0] == (
        "capped at 60: the latest release 2.0 has 2 known vulnerabilities")
    assert by["latest release has a known vulnerability"]["security"] == 0
    assert lines["popular, abandoned for three years"][0].startswith("capped at 40: no human commit and no release")
    assert "bots'" in by["only bots commit lately"]["explanation"]
    assert "not on PyPI" in by["not on PyPI"]["explanation"]
    assert "the newest upload 2.1 is yanked (-5)" in by["yanked latest release"]["explanation"]
    assert by["yanked latest release"]["releases"] == by["yanked latest release"]["releases_max"] - 5
    # fair: a done utility keeps the activity floor; a new repository is not zeroed
    assert by["done small utility"]["activity"] == 15.0
    assert "'done' package" in by["done small utility"]["explanation"]
    assert by["brand-new active repository"]["activity"] == 25.0
    # every explanation: optional cap line, then one line per component in order
    for n, r in by.items():
        body = lines[n][1:] if r["cap"] is not None else lines[n]
        assert [line.split(" ", 1)[0] for line in body] == list(COMPONENTS), n
        assert (r["cap"] is None) == (r["cap_reason"] is None)
    # ordering sanity
    assert by["active popular framework"]["health_score"] > by["done small utility"]["health_score"] \
        > by["popular, abandoned for three years"]["health_score"] > by["upstream vanished"]["health_score"]


def test_version_and_maxima():
    config = load_config()
    result = score(HEALTHY)
    assert result["health_version"][0] == f"{config.version}+eol.{load_eol().version}"
    assert sum(result[f"{c}_max"][0] for c in COMPONENTS) == 100


def test_config_is_checked(tmp_path):
    text = (load_config.__globals__["CONFIG_PATH"]).read_text()
    bad = tmp_path / "health.toml"
    bad.write_text(text.replace("[activity]              # regularity", "[activity]  #").replace(
        "max = 25", "max = 30", 1))
    with pytest.raises(ValueError, match="add up"):
        load_config(bad)


def test_eol_table_dates():
    eol = load_eol()
    assert eol.python["3.8"] == date(2024, 10, 7)
    assert eol.python["3.9"] == date(2025, 10, 31)
    assert eol.django["4.2"] == date(2026, 4, 30)
    assert eol.django["5.2"] == date(2028, 4, 30)
    assert eol.maintained("python", NOW) == ["3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]
    assert eol.maintained("django", NOW) == ["5.2", "6.0"]


def test_currency_rules():
    rows = [pkg(package_id=1, python_versions=["3.8", "3.9"], django_versions=["4.2"]),
            pkg(package_id=2, python_versions=[], requires_python=">=3.8", django_versions=["5"]),
            pkg(package_id=3, python_versions=[], requires_python="<3.9", django_versions=[]),
            pkg(package_id=4, python_versions=None, requires_python=None, django_versions=None),
            pkg(package_id=5, python_versions=[], requires_python="garbage", django_versions=["6.0"])]
    r = score(*rows)
    assert r["currency"].to_list() == [0.0, 10.0, 2.5, 5.0, 7.5]
    text = r["explanation"].to_list()
    assert "only end-of-life Python (3.8, 3.9); only end-of-life Django (4.2)" in text[0]
    assert "requires-python >=3.8" in text[1]
    assert "no maintained Python in requires-python <3.9" in text[2]


# --- inputs from core-shaped frames ---------------------------------------------------------------

def core_frames():
    packages = pl.DataFrame({
        "id": [1, 2, 3], "repo_key": ["github:a/one", "github:a/two", None], "repo_watchers": [10, 20, 0],
        "last_updated": [days(3), days(5), None], "pypi_version": ["1.1", None, "0.1"],
        "pypi_status": ["active", None, "active"], "pypi_requires_python": [">=3.10", None, None],
        "python_versions": [["3.12"], None, []], "django_versions": [["5.2"], None, []],
        "is_archived": [False, False, False], "pypi_inactive": [False, False, False],
        "pypi_downloads": [1234, None, None], "latest_vulnerabilities": [0, None, 1]})
    week_start = [NOW.date() - timedelta(days=7 * (51 - i)) for i in range(52)]
    commits = [1 if i % 2 == 0 else 0 for i in range(52)]
    commit_weeks = pl.DataFrame({"package_id": [1] * 52 + [2] * 52, "week_index": list(range(52)) * 2,
                                 "week_start": week_start * 2, "commits": commits * 2})
    participants = pl.DataFrame({
        "package_id": [1, 1, 1, 1, 2], "position": [0, 1, 2, 3, 0],
        "login": ["alice", "dependabot[bot]", "bob", "carol", "x"], "contributions": [50, 500, 30, 20, 5],
        "is_bot": [False, True, False, False, False]})
    releases = pl.DataFrame({
        "package_id": [1, 1, 1, 3], "version": ["1.0", "1.1", "1.2", "0.1"],
        "upload_time": [days(400), days(100), days(50), days(2000)], "yanked": [False, False, True, False],
        "is_prerelease": [False, False, False, False]})
    errors = pl.DataFrame({"package_id": [2, 3], "kind": ["gone", "transient"], "severity": ["error", "error"]})
    return packages, commit_weeks, participants, releases, errors


def test_health_inputs_from_core():
    packages, weeks, people, releases, errors = core_frames()
    last_human = pl.DataFrame({"package_id": [1], "last_human_commit_at": [days(60)]})
    daily = pl.DataFrame({"package_id": [3] * 180, "date": [NOW.date() - timedelta(days=i) for i in range(1, 181)],
                          "downloads": [10] * 180})
    inputs = health_inputs(packages, now=NOW, commit_weeks=weeks, participants=people, releases=releases,
                           crawl_errors=errors, last_human_commits=last_human, daily_downloads=daily)
    rows = {r["package_id"]: r for r in inputs.to_dicts()}
    one, two, three = rows[1], rows[2], rows[3]
    # weeks after the last human commit (60 days ago) are bots' and do not count
    assert one["active_weeks"] == sum(1 for i in range(52) if i % 2 == 0
                                      and NOW.date() - timedelta(days=7 * (51 - i)) <= days(60).date())
    # no human-commit knowledge: the newest commit counts as human
    assert two["active_weeks"] == 26 and two["last_human_commit_at"] == days(5)
    assert (one["human_contributors"], one["bot_contributors"], one["bus_factor"]) == (3, 1, 1)
    assert (one["latest_version"], one["releases_2y"], one["latest_yanked"], one["yanked_version"]) == \
        ("1.1", 2, True, "1.2")
    assert one["downloads_last_month"] == 1234
    assert two["upstream_gone"] and not three["upstream_gone"]
    assert not two["on_pypi"] and three["on_pypi"]
    assert three["downloads_last_month"] == 300 and three["downloads_trend"] == pytest.approx(1.0)
    assert inputs.schema == pl.Schema(INPUT_SCHEMA)
    scored = score_health(inputs, now=NOW)
    assert scored.height == 3 and scored["health_score"].is_not_null().all()


def test_bus_factor_counts_humans_to_half():
    packages, weeks, _, releases, _ = core_frames()
    people = pl.DataFrame({"package_id": [1] * 5, "position": list(range(5)), "login": list("abcde"),
                           "contributions": [40, 30, 20, 10, 1000], "is_bot": [False] * 4 + [True]})
    inputs = health_inputs(packages.head(1), now=NOW, commit_weeks=weeks, participants=people, releases=releases)
    assert inputs["bus_factor"][0] == 2  # 40 + 30 >= 50% of 100; the bot's 1000 are ignored


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=8), st.integers(1, 500))
def test_a_new_small_contributor_never_lowers(contribs, extra):
    packages, weeks, _, releases, _ = core_frames()
    newcomer = min(extra, min(contribs))

    def health(cs):
        people = pl.DataFrame({"package_id": [1] * len(cs), "position": list(range(len(cs))),
                               "login": [f"u{i}" for i in range(len(cs))], "contributions": cs,
                               "is_bot": [False] * len(cs)})
        inputs = health_inputs(packages.head(1), now=NOW, commit_weeks=weeks, participants=people,
                               releases=releases)
        return score_health(inputs, now=NOW)["health_score"][0]

    assert health([*contribs, newcomer]) >= health(contribs)


# --- grids ----------------------------------------------------------------------------------------

def test_grid_health_rank_percentile_median():
    health = pl.DataFrame({"package_id": [1, 2, 3, 4, 5], "health_score": [80.0, 60.0, 80.0, 20.0, None]})
    members = pl.DataFrame({"grid_id": [7, 7, 7, 7, 7, 9], "package_id": [1, 2, 3, 4, 5, 2]})
    g = grid_health(health, members)
    seven = g.filter(pl.col("grid_id") == 7)
    assert seven["package_id"].to_list() == [1, 3, 2, 4]
    assert seven["rank"].to_list() == [1, 1, 3, 4]
    assert seven["percentile"].to_list() == [66.7, 66.7, 33.3, 0.0]
    assert seven["grid_median"].to_list() == [70.0] * 4
    assert g.filter(pl.col("grid_id") == 9).select("rank", "percentile", "grid_size").row(0) == (1, 100.0, 1)


# --- properties -----------------------------------------------------------------------------------

maybe_dt = st.none() | st.floats(0, 3000).map(days)
inputs_strategy = st.fixed_dictionaries({
    "package_id": st.just(1),
    "stars": st.integers(0, 500_000), "downloads_last_month": st.none() | st.integers(0, 50_000_000),
    "active_weeks": st.integers(0, 52), "observed_weeks": st.none() | st.integers(1, 52),
    "last_commit_at": maybe_dt, "last_human_commit_at": maybe_dt,
    "human_contributors": st.integers(0, 500), "bot_contributors": st.integers(0, 5),
    "bus_factor": st.integers(0, 10), "on_pypi": st.booleans(), "latest_version": st.just("1.0"),
    "latest_release_at": maybe_dt, "releases_2y": st.integers(0, 30), "latest_yanked": st.booleans(),
    "yanked_version": st.just("1.1"),
    "requires_python": st.sampled_from([None, ">=3.8", "<3", "junk", ">=3.12"]),
    "python_versions": st.sampled_from([None, [], ["3.7"], ["3.12", "3.13"]]),
    "django_versions": st.sampled_from([None, [], ["3.2"], ["5.2"], ["5"]]),
    "latest_vulnerabilities": st.none() | st.integers(0, 3), "repo_archived": st.booleans(),
    "pypi_status": st.sampled_from([None, "active", "archived", "deprecated", "quarantined"]),
    "pypi_status_reason": st.none() | st.just("moved"), "pypi_inactive": st.booleans(),
    "catalogue_deprecated": st.booleans(), "upstream_gone": st.booleans(),
    "downloads_trend": st.none() | st.floats(0, 5),
})


def one(row: dict) -> dict:
    return score(row).row(0, named=True)


@settings(max_examples=200, deadline=None)
@given(inputs_strategy)
def test_bounded_components_add_up_deterministic(row):
    r = one(row)
    assert 0 <= r["health_score"] <= 100
    for c in COMPONENTS:
        assert 0 <= r[c] <= r[f"{c}_max"]
    assert abs(sum(r[c] for c in COMPONENTS) - r["health_uncapped"]) < 1e-6
    expected = min(r["health_uncapped"], r["cap"]) if r["cap"] is not None else r["health_uncapped"]
    assert r["health_score"] == pytest.approx(expected)
    assert one(row) == r
    assert r["explanation"].split("\n")[0].startswith("capped at") == (r["cap"] is not None)


@settings(max_examples=150, deadline=None)
@given(inputs_strategy, st.integers(1, 100_000), st.integers(1, 10_000_000), st.integers(1, 50))
def test_monotone(row, more_stars, more_downloads, more_humans):
    base = one(row)["health_score"]
    assert one({**row, "stars": row["stars"] + more_stars})["health_score"] >= base
    more_dl = (row["downloads_last_month"] or 0) + more_downloads
    assert one({**row, "downloads_last_month": more_dl})["health_score"] >= base
    assert one({**row, "human_contributors": row["human_contributors"] + more_humans})["health_score"] >= base


@settings(max_examples=150, deadline=None)
@given(inputs_strategy, st.floats(0, 3000))
def test_a_recent_release_never_lowers(row, age):
    """A new final, non-yanked release: the latest release is newer, one more in the window, and the
    newest upload is no longer the yanked one."""
    base = one(row)["health_score"]
    when = days(age)
    latest = row["latest_release_at"]
    newer = when if latest is None or when > latest else latest
    in_window = 1 if age <= load_config()["releases"]["cadence_window_days"] else 0
    released = {**row, "latest_release_at": newer, "releases_2y": row["releases_2y"] + in_window,
                "latest_yanked": row["latest_yanked"] and newer == latest}
    assert one(released)["health_score"] >= base


def test_row_order_does_not_change_scores():
    rows = [dict(ARCHETYPES[n][0], package_id=i) for i, n in enumerate(ARCHETYPES)]
    a = score(*rows).sort("package_id")
    b = score(*reversed(rows)).sort("package_id")
    assert a.equals(b)
