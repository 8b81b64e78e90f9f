"""djangopackages' score, weight and grid weight: boundaries, texts, and equality with a line-by-line
port of the site's code (package/scores.py, searchv3/rules.py, searchv3/builders.py) over random
inputs."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from dateutil import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from assets.health.djangopackages import (
    INPUT_SCHEMA,
    PY3_PROBE_VERSIONS,
    djangopackages_scores,
    grid_weight,
    max_package_weight,
)

NOW = datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)


def row(**kw) -> dict:
    base = {"repo_watchers": 100, "repo_forks": 10, "repo_description": "A package", "usage": 3,
            "pypi_downloads": 5000, "last_updated": NOW - timedelta(days=10),
            "last_released": NOW - timedelta(days=10), "deprecated": False,
            "pypi_requires_python": ">=3.10", "pypi_classifiers": []}
    base.update(kw)
    return base


def run(*rows: dict, now: datetime = NOW, **kw) -> pl.DataFrame:
    frame = pl.DataFrame(list(rows), schema=INPUT_SCHEMA)
    return djangopackages_scores(frame, now=now, **kw)


def breakdown(result: pl.DataFrame, i: int = 0) -> dict:
    return json.loads(result["weight_json"][i])


def rule(result: pl.DataFrame, name: str, i: int = 0) -> dict:
    return next(r for r in breakdown(result, i)["breakdown"] if r["rule"] == name)


# --- reference: the site's code, ported line by line ----------------------------------------------

def ref_supports_python3(requires_python, classifiers):
    classifier_says_py3 = any(c.startswith("Programming Language :: Python :: 3") for c in classifiers or [])
    if requires_python:
        try:
            spec = SpecifierSet(requires_python)
        except InvalidSpecifier:
            return True if classifier_says_py3 else None
        return any(spec.contains(v, prereleases=True) for v in PY3_PROBE_VERSIONS)
    return True if classifier_says_py3 else None


def ref_score(repo_watchers, last_commit_date, supports_python3, now):
    if last_commit_date:
        delta = relativedelta.relativedelta(now, last_commit_date)
        delta_months = (delta.years * 12) + delta.months
        last_commit_date_penalty = math.modf(delta_months / 3)[1] * repo_watchers / 10
    else:
        last_commit_date_penalty = repo_watchers / 10
    python_3_penalty = 0 if supports_python3 else min(repo_watchers * 30 / 100, 1000)
    return max(-500, int(repo_watchers - last_commit_date_penalty - python_3_penalty))


def ref_upload_time(true_instant):
    """urls[0]["upload_time"] (naive UTC, whole seconds) made aware in America/New_York."""
    if true_instant is None:
        return None
    naive = true_instant.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return naive.replace(tzinfo=ZoneInfo("America/New_York"))


def ref_weight(p, now):
    score = 0
    score += 20 if not p["deprecated"] else 0
    d = p["repo_description"]
    score += 20 if d and d.strip() else 0
    score += min(int(p["pypi_downloads"] / 1_000), 20) if p["pypi_downloads"] else 0
    score += min(p["repo_forks"], 20) if p["repo_forks"] else 0
    lu = p["last_updated"]
    if lu:
        score += 20 if (now - lu) < timedelta(90) else 10 if (now - lu) < timedelta(182) else \
            5 if (now - lu) < timedelta(365) else 0
    rel = ref_upload_time(p["last_released"])
    if rel and now - rel < timedelta(365):
        score += 20
    score += min(p["usage"], 20) if p["usage"] else 0
    score += min(p["repo_watchers"], 20) if p["repo_watchers"] else 0
    return int((score / 160) * 100)


# --- score (package/scores.py) --------------------------------------------------------------------

def test_score_recent_python3_is_stars():
    assert run(row(repo_watchers=100))["score"][0] == 100


def test_score_no_commit_no_python3_site_example():
    # package/tests/test_scores.py: 100 stars, no date, no Python 3 -> 60
    r = run(row(repo_watchers=100, last_updated=None, pypi_requires_python=None, pypi_classifiers=[]))
    assert r["supports_python3"][0] is None
    assert r["score"][0] == 60


def test_score_quarter_steps_in_calendar_months():
    # 1000 stars: each whole quarter of calendar months costs 100
    expected = {2: 1000, 3: 900, 5: 900, 6: 800, 24: 200}
    for months, value in expected.items():
        last = NOW - relativedelta.relativedelta(months=months)
        assert run(row(repo_watchers=1000, last_updated=last))["score"][0] == value, months
    # one second short of 3 calendar months is still 2 months
    just_short = NOW - relativedelta.relativedelta(months=3) + timedelta(seconds=1)
    assert run(row(repo_watchers=1000, last_updated=just_short))["score"][0] == 1000
    # day clipping: 2025-11-30 + 3 months = 2026-02-28 (clipped) <= 2026-03-01 -> 3 months
    r = run(row(repo_watchers=1000, last_updated=datetime(2025, 11, 30, tzinfo=UTC)),
            now=datetime(2026, 3, 1, tzinfo=UTC))
    assert r["score"][0] == 900


def test_score_floor_and_python3_penalty():
    # package/tests/test_models_v2.py: 1000 stars, 2 years without commits, no Python 3 -> -100
    last = NOW - relativedelta.relativedelta(years=2, days=1)
    assert run(row(repo_watchers=1000, last_updated=last, pypi_requires_python="<3"))["score"][0] == -100
    # ten years: 1000 - 4000 - 300 -> floored at -500
    last = NOW - relativedelta.relativedelta(years=10)
    assert run(row(repo_watchers=1000, last_updated=last, pypi_requires_python="<3"))["score"][0] == -500
    # the Python-3 penalty is capped at 1000
    r = run(row(repo_watchers=10_000, pypi_requires_python="==2.7"))
    assert r["score"][0] == 9000


def test_score_truncates_toward_zero():
    # 15 stars, one quarter: 15 - 1.5 = 13.5 -> 13
    last = NOW - relativedelta.relativedelta(months=4)
    assert run(row(repo_watchers=15, last_updated=last))["score"][0] == 13
    # 5 stars, 2 years, no Python 3: 5 - 4.0 - 1.5 = -0.5 -> 0
    last = NOW - relativedelta.relativedelta(years=2, days=1)
    assert run(row(repo_watchers=5, last_updated=last, pypi_requires_python="<3"))["score"][0] == 0


def test_supports_python3_rules():
    cases = [
        (">=3.8", [], True),
        ("<3", ["Programming Language :: Python :: 3"], False),      # the specifier wins
        ("not a spec", ["Programming Language :: Python :: 3.12"], True),  # invalid -> classifiers
        ("not a spec", [], None),
        (None, ["Programming Language :: Python :: 3 :: Only"], True),
        (None, ["Programming Language :: Python :: 2.7"], None),
        ("", ["Programming Language :: Python :: 3"], True),          # empty is falsy
        (">=3.15", [], False),                                       # no probe version matches
        (">=3.14.0rc1", [], True),                                   # prereleases=True
    ]
    result = run(*(row(pypi_requires_python=s, pypi_classifiers=c) for s, c, _ in cases))
    for (spec, classifiers, expected), got in zip(cases, result["supports_python3"], strict=True):
        assert got is expected, (spec, classifiers)
        assert ref_supports_python3(spec, classifiers) is expected


# --- weight (searchv3/rules.py) -------------------------------------------------------------------

def test_last_updated_boundaries():
    cases = {89: (20, "Package was updated less than 3 months ago."),
             90: (10, "Package was updated less than 6 months ago."),
             181: (10, "Package was updated less than 6 months ago."),
             182: (5, "Package was updated less than 1 year ago."),
             364: (5, "Package was updated less than 1 year ago."),
             365: (0, "Package was updated more than 1 year ago.")}
    result = run(*(row(last_updated=NOW - timedelta(days=d)) for d in cases))
    for i, (days, (points, message)) in enumerate(cases.items()):
        group = rule(result, "Activity Rules", i)
        assert group["message"].startswith(message), days
        assert group["score"] - 20 == points, days  # release 10 days ago gives the other 20
    # just inside the boundary
    r = run(row(last_updated=NOW - timedelta(days=90) + timedelta(microseconds=1)))
    assert rule(r, "Activity Rules")["message"].startswith("Package was updated less than 3 months ago.")
    r = run(row(last_updated=None))
    assert rule(r, "Activity Rules")["message"].startswith("No update data found for the package.")


def test_recent_release_boundary_and_site_time_zone():
    # 364 days: recent; 365: not. The site reads PyPI's naive UTC upload time as New York time,
    # so a release exactly 365 days ago (true instant) is stored 4-5 h later: still "recent".
    r = run(row(last_released=NOW - timedelta(days=364)), row(last_released=NOW - timedelta(days=366)),
            row(last_released=NOW - timedelta(days=365)), row(last_released=None))
    texts = [rule(r, "Activity Rules", i)["message"].split(". ", 1)[1] for i in range(4)]
    assert texts == ["Last release is less than a year old.", "Last release is more than a year old.",
                     "Last release is less than a year old.", "No release data found for the package."]
    r = run(row(last_released=NOW - timedelta(days=365)), release_time_zone=None)
    assert rule(r, "Activity Rules")["message"].endswith("Last release is more than a year old.")
    # 365 days + 4h59 (EDT then: UTC-4): still counted as recent by the site; + 5h01 not
    r = run(row(last_released=NOW - timedelta(days=365, hours=3, minutes=59)),
            row(last_released=NOW - timedelta(days=365, hours=4, minutes=1)))
    assert rule(r, "Activity Rules", 0)["score"] == 40
    assert rule(r, "Activity Rules", 1)["score"] == 20


def test_downloads_boundary_and_messages():
    r = run(row(pypi_downloads=999), row(pypi_downloads=1000), row(pypi_downloads=15645),
            row(pypi_downloads=25_000), row(pypi_downloads=0))
    got = [(rule(r, "Downloads Rule", i)["score"], rule(r, "Downloads Rule", i)["message"]) for i in range(5)]
    assert got == [(0, "Package has 999 PyPi downloads."), (1, "Package has 1000 PyPi downloads."),
                   (15, "Package has 15645 PyPi downloads."), (20, "Package has 25000 PyPi downloads."),
                   (0, "No PyPi downloads data for the package.")]


def test_site_examples_and_texts():
    # searchv3/tests/test_score_rules.py baseline uses 5 of the rules; all 8 here:
    full = row(repo_watchers=20, repo_forks=20, usage=20, pypi_downloads=20_000)
    r = run(full, row(repo_watchers=0, repo_forks=0, usage=0, pypi_downloads=0, repo_description="  \n",
                      deprecated=True, last_updated=None, last_released=None))
    assert r["weight"].to_list() == [100, 0]
    doc = breakdown(r, 1)
    assert doc["total_score"] == 0
    assert [b["rule"] for b in doc["breakdown"]] == ["Deprecated Rule", "Description Rule", "Downloads Rule",
                                                     "Fork Rule", "Usage Count Rule", "Watchers Rule",
                                                     "Activity Rules"]
    assert list(doc["breakdown"][0]) == ["rule", "description", "score", "max_score", "message",
                                         "documentation_url"]
    assert doc["message"] == (
        "Package is deprecated. Package has no description. No PyPi downloads data for the package. "
        "No forks data for the package repository. No usage data found for the package. "
        "No watchers data for the package repository. No update data found for the package. "
        "No release data found for the package.")
    assert doc["breakdown"][6] == {
        "rule": "Activity Rules", "description": "Rules related to the package's recent activity", "score": 0,
        "max_score": 40, "message": "No update data found for the package. No release data found for the package.",
        "documentation_url": "https://docs.djangopackages.org/en/latest/rules/#searchv3.rules.ScoreRuleGroup"}
    ok = breakdown(r, 0)["breakdown"]
    assert [b["message"] for b in ok[:6]] == [
        "Package is not deprecated.", "Package has a description.", "Package has 20000 PyPi downloads.",
        "Package repository has 20 forks.", "Package has a usage count of 20.",
        "Package repository has 20 watchers."]
    # int() of the normalised sum: 81/160*100 = 50.625 -> 50
    r = run(row(repo_watchers=20, repo_forks=20, usage=20, pypi_downloads=1000, deprecated=True,
                last_updated=None, last_released=None))
    assert r["weight"][0] == int((1 + 20 + 20 + 20 + 20 + 0) / 160 * 100)


def test_grid_weight_matches_site_examples():
    grids = pl.DataFrame({"is_locked": [True, False, True, True, False, True, False],
                          "header": [True, True, False, True, False, True, False],
                          "package_count": [1, 1, 1, 0, 0, 1, 3]})
    assert grid_weight(grids.head(5), max_weight=120)["weight"].to_list() == [100, 80, 80, 80, 40]
    assert grid_weight(grids.slice(5, 1), max_weight=60)["weight"].to_list() == [50]
    # float steps kept: 100 - 3 * (100 / 6) = 49.999999999999986 -> 49
    assert grid_weight(grids.slice(6, 1), max_weight=100)["weight"].to_list() == [49]
    assert max_package_weight([]) == 100
    assert max_package_weight([3, 87, 12]) == 87


# --- equality with the port over random inputs ----------------------------------------------------

instants = st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2026, 6, 30),
                        timezones=st.just(UTC))
specs = st.sampled_from([None, "", ">=3.8", "<3", ">=2.7, !=3.0.*", "==2.7.*", "junk", ">=3.15", "~=3.9"])
classifier_lists = st.sampled_from([[], ["Programming Language :: Python :: 3"],
                                    ["Programming Language :: Python :: 2.7"], None])
packages = st.fixed_dictionaries({
    "repo_watchers": st.integers(0, 200_000), "repo_forks": st.integers(0, 50), "usage": st.integers(0, 40),
    "repo_description": st.sampled_from(["", " ", "x", "\x1c", None, "A thing"]),
    "pypi_downloads": st.integers(0, 50_000), "last_updated": st.none() | instants,
    "last_released": st.none() | instants, "deprecated": st.booleans(),
    "pypi_requires_python": specs, "pypi_classifiers": classifier_lists})


@settings(max_examples=150, deadline=None)
@given(st.lists(packages, min_size=1, max_size=8), instants)
def test_equal_to_the_site_code(rows, now):
    result = run(*rows, now=now)
    for p, score, weight, py3 in zip(rows, result["score"], result["weight"], result["supports_python3"],
                                     strict=True):
        expected_py3 = ref_supports_python3(p["pypi_requires_python"], p["pypi_classifiers"])
        assert py3 == expected_py3
        assert score == ref_score(p["repo_watchers"], p["last_updated"], expected_py3, now)
        assert weight == ref_weight(p, now)
