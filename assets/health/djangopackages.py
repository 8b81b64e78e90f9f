"""djangopackages.org's own two numbers, reproduced exactly and vectorised over a polars frame.

Read from djangopackages/djangopackages (snapshot of 2026-08-18, commit 6d748cb4):

- ``score`` (``package/scores.py`` ``_calculate_score``): stars minus 10% of the stars per whole
  quarter (calendar months, ``dateutil.relativedelta``) since the last commit, minus 30% (at most
  1000) when the package does not support Python 3; ``int()``; never below -500.
- ``weight`` (``searchv3/rules.py`` ``calc_package_weight``): the "Package Score" 0-100 with the
  per-rule breakdown shown on ``/packages/p/<slug>/rules/`` (``package/views.py``
  ``PackageRulesView``); the search index (``searchv3/builders.py`` ``_PACKAGE_RULES``) uses the same
  rules as a flat list, which gives the same total because the "Activity Rules" group's maximum (40)
  equals the sum of its two rules' maximums.
- grid search weight (``searchv3/builders.py`` ``calc_grid_weight``), relative to the highest package
  weight in the index.

Everything here is pure polars + ``packaging`` (what the site itself uses to read
``requires_python``); ``now`` is always injected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import polars as pl
from packaging.specifiers import InvalidSpecifier, SpecifierSet

# settings.py: ``DOCS_URL = "https://docs.djangopackages.org/en/latest"`` (when not DEBUG)
DOCS_URL = "https://docs.djangopackages.org/en/latest"
# settings.py: ``TIME_ZONE = "America/New_York"``, ``USE_TZ = True``
SITE_TIME_ZONE = "America/New_York"

# package/pypi.py ``_PY3_PROBE_VERSIONS``: "used only to answer 'does it support *any* Python 3'"
PY3_PROBE_VERSIONS = ("3.14", "3.13", "3.12", "3.11", "3.10", "3.9", "3.8", "3.7", "3.6", "3.5", "3.4",
                      "3.3", "3.2", "3.1", "3.0")
PY3_CLASSIFIER_PREFIX = "Programming Language :: Python :: 3"
# what Python's str.strip() removes (str.isspace), for DescriptionRule's ``.strip()``
PY_WHITESPACE = "".join(chr(i) for i in range(0x110000) if chr(i).isspace())

# Input columns (names follow core.packages where it has them).
INPUT_SCHEMA: dict[str, pl.DataType] = {
    "repo_watchers": pl.Int64,             # stars
    "repo_forks": pl.Int64,
    "repo_description": pl.String,
    "usage": pl.Int64,                     # "I use this" count
    "pypi_downloads": pl.Int64,            # pypistats data.last_month
    "last_updated": pl.Datetime("us", "UTC"),    # last commit (committer date)
    "last_released": pl.Datetime("us", "UTC"),   # latest version's first file upload (true UTC instant)
    "deprecated": pl.Boolean,              # the site's is_deprecated: date_deprecated is set
    "pypi_requires_python": pl.String,
    "pypi_classifiers": pl.List(pl.String),
}


# --------------------------------------------------------------------------------------------------
# "supports Python 3" (package/pypi.py PyPIPackage.supports_python3)
# --------------------------------------------------------------------------------------------------

def _requires_python_says_py3(spec: str) -> bool | None:
    """``any(spec.contains(v, prereleases=True) for v in _PY3_PROBE_VERSIONS)``; None when invalid.

    Invalid: ``except InvalidSpecifier: ... return True if classifier_says_py3 else None``.
    """
    try:
        specifiers = SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    return any(specifiers.contains(v, prereleases=True) for v in PY3_PROBE_VERSIONS)


def supports_python3(frame: pl.DataFrame) -> pl.Series:
    """The site's ``supports_python3`` (True, False or null) from ``pypi_requires_python`` and
    ``pypi_classifiers``.

    ``classifier_says_py3 = any(c.startswith("Programming Language :: Python :: 3") ...)``;
    ``if self.requires_python:`` (non-empty) the specifier decides, even against the classifiers;
    otherwise ``return True if classifier_says_py3 else None``. Null counts as "no" in the score
    (``0 if supports_python3 else ...``), so a package without PyPI metadata is penalised there.
    The specifier is evaluated once per distinct string (a directory has a few hundred).
    """
    specs = frame.select(pl.col("pypi_requires_python").unique()).drop_nulls()
    lookup = specs.with_columns(
        pl.col("pypi_requires_python").map_elements(_requires_python_says_py3, return_dtype=pl.Boolean,
                                                    skip_nulls=True).alias("_spec_says"))
    joined = frame.select("pypi_requires_python", "pypi_classifiers").join(
        lookup, on="pypi_requires_python", how="left", maintain_order="left")
    classifier_says = (pl.col("pypi_classifiers").list.eval(pl.element().str.starts_with(PY3_CLASSIFIER_PREFIX))
                       .list.any().fill_null(False))
    from_classifiers = pl.when(classifier_says).then(pl.lit(True)).otherwise(pl.lit(None, pl.Boolean))
    has_spec = pl.col("pypi_requires_python").is_not_null() & (pl.col("pypi_requires_python") != "")
    return joined.select(
        pl.when(has_spec & pl.col("_spec_says").is_not_null()).then(pl.col("_spec_says"))
        .otherwise(from_classifiers).alias("supports_python3")).to_series()


# --------------------------------------------------------------------------------------------------
# score (package/scores.py)
# --------------------------------------------------------------------------------------------------

def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def months_since(column: pl.Expr, now: datetime) -> pl.Expr:
    """``relativedelta(timezone.now(), last_commit_date)``: ``delta.years * 12 + delta.months``.

    dateutil takes the year/month difference of the two wall clocks (both UTC: Django hands back
    UTC datetimes with USE_TZ) and steps one month back when ``last + months`` (day clipped to the
    month's length) overshoots ``now``; for a date in the future it steps the other way.
    """
    now = _utc(now)
    ts = column.dt.convert_time_zone("UTC")
    base = (now.year - ts.dt.year().cast(pl.Int64)) * 12 + (now.month - ts.dt.month().cast(pl.Int64))
    days_in_now_month = (datetime(now.year + (now.month == 12), now.month % 12 + 1, 1)
                         - datetime(now.year, now.month, 1)).days
    shifted_day = pl.min_horizontal(ts.dt.day().cast(pl.Int64), pl.lit(days_in_now_month))
    now_tod = ((now.hour * 60 + now.minute) * 60 + now.second) * 1_000_000 + now.microsecond
    ts_tod = ((ts.dt.hour().cast(pl.Int64) * 60 + ts.dt.minute()) * 60 + ts.dt.second()) * 1_000_000 \
        + ts.dt.microsecond()
    # (day, time of day) of `last + base months` against now's, both in now's month
    shifted_after_now = (shifted_day > now.day) | ((shifted_day == now.day) & (ts_tod > now_tod))
    shifted_before_now = (shifted_day < now.day) | ((shifted_day == now.day) & (ts_tod < now_tod))
    in_past = ts <= pl.lit(now)
    return (pl.when(in_past & shifted_after_now).then(base - 1)
            .when(~in_past & shifted_before_now).then(base + 1)
            .otherwise(base))


def score_expr(stars: pl.Expr, last_commit: pl.Expr, py3: pl.Expr, now: datetime) -> pl.Expr:
    """``max(-500, int(repo_watchers - last_commit_date_penalty - python_3_penalty))``.

    - ``math.modf(delta_months / 3)[1] * repo_watchers / 10`` (whole quarters, truncated toward
      zero, so a commit date in the future *raises* the score); no date: ``repo_watchers / 10``;
    - ``0 if supports_python3 else min(repo_watchers * 30 / 100, 1000)`` (null -> penalty);
    - the same float operations in the same order, then ``int()`` (truncation toward zero).
    """
    # polars reorders float products (`q * w / 10` came out as `q * (w / 10)`: 559.3000000000001,
    # not 559.3), and one ulp decides `int()`: the arithmetic runs in numpy, in the site's order
    parts = pl.struct(stars.fill_null(0).cast(pl.Float64).alias("w"),
                      months_since(last_commit, now).cast(pl.Float64).alias("months"),
                      last_commit.is_null().alias("no_commit"), py3.fill_null(False).alias("py3"))
    return parts.map_batches(_site_score, return_dtype=pl.Int64)


def _site_score(parts: pl.Series) -> pl.Series:
    """package/scores.py line by line over arrays: IEEE doubles, left to right, `int()` truncates."""
    w, months, no_commit, py3 = (parts.struct.field(n).to_numpy() for n in ("w", "months", "no_commit", "py3"))
    quarters = np.trunc(np.nan_to_num(months) / 3)  # math.modf(delta_months / 3)[1]
    date_penalty = np.where(no_commit, w / 10, (quarters * w) / 10)
    py3_penalty = np.where(py3, 0.0, np.minimum((w * 30) / 100, 1000.0))
    return pl.Series(np.maximum(np.trunc((w - date_penalty) - py3_penalty), -500).astype(np.int64))


# --------------------------------------------------------------------------------------------------
# weight (searchv3/rules.py)
# --------------------------------------------------------------------------------------------------

def _doc(name: str) -> str:
    return f"{DOCS_URL}/rules/#searchv3.rules.{name}"


# (breakdown "rule", "description", max_score, documentation_url) exactly as the rule classes
RULES = {
    "deprecated": ("Deprecated Rule", "Check if the package is deprecated", 20, _doc("DeprecatedRule")),
    "description": ("Description Rule", "Check if the package has a description", 20, _doc("DescriptionRule")),
    "downloads": ("Downloads Rule", "Score based on the number of PyPi downloads", 20, _doc("DownloadsRule")),
    "forks": ("Fork Rule", "Score based on the number of forks", 20, _doc("ForkRule")),
    "usage": ("Usage Count Rule", "Score based on the usage count", 20, _doc("UsageCountRule")),
    "watchers": ("Watchers Rule", "Score based on the number of watchers", 20, _doc("WatchersRule")),
    "last_updated": ("Last Updated Rule", "Score based on how recently the package was last updated", 20,
                     _doc("LastUpdatedRule")),
    "recent_release": ("Recent Release Rule", "Score if the last release is less than a year old", 20,
                       _doc("RecentReleaseRule")),
}
# package/views.py PackageRulesView: ScoreRuleGroup(name="Activity Rules", ..., max_score=40,
#     rules=[LastUpdatedRule(), RecentReleaseRule()])
ACTIVITY_GROUP = ("Activity Rules", "Rules related to the package's recent activity", 40, _doc("ScoreRuleGroup"))
# PackageRulesView order; the search index's flat order (_PACKAGE_RULES) gives the same total
PAGE_ORDER = ("deprecated", "description", "downloads", "forks", "usage", "watchers", "activity")
MAX_POSSIBLE = 160  # 6 x 20 + 40 (flat: 8 x 20)


def site_release_time(upload: pl.Expr, time_zone: str | None = SITE_TIME_ZONE) -> pl.Expr:
    """The instant the site stores for ``Version.upload_time``.

    package/pypi.py reads ``urls[0]["upload_time"]`` (PyPI's naive UTC string, whole seconds) and
    ``_parse_upload_time`` does ``timezone.make_aware(dt, timezone.get_current_timezone())``, i.e.
    reads the UTC wall clock as America/New_York: stored 4-5 hours *later* than the true upload.
    ``make_aware`` is ``value.replace(tzinfo=tz)`` (fold=0): an ambiguous hour takes the first
    (daylight) offset, a non-existent one the offset before the gap (EST, UTC-5).
    ``time_zone=None`` keeps the true instant.
    """
    if time_zone is None:
        return upload.dt.convert_time_zone("UTC")
    naive = upload.dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.truncate("1s")
    aware = naive.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
    # inside a gap (fold=0) zoneinfo uses the offset before the transition: the offset an hour earlier
    hour_before = naive - pl.duration(hours=1)
    offset_before = (hour_before.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
                     .dt.convert_time_zone("UTC") - hour_before.dt.replace_time_zone("UTC"))
    in_gap = aware.is_null() & naive.is_not_null()
    return (pl.when(in_gap).then(naive.dt.replace_time_zone("UTC") + offset_before)
            .otherwise(aware.dt.convert_time_zone("UTC")))


def _age(column: pl.Expr, now: datetime) -> pl.Expr:
    return pl.lit(_utc(now)) - column.dt.convert_time_zone("UTC")


def _rule_columns(now: datetime) -> list[pl.Expr]:
    """One (score, message) pair of columns per rule, with the site's texts."""
    stars = pl.col("repo_watchers")
    forks = pl.col("repo_forks")
    usage = pl.col("usage")
    downloads = pl.col("pypi_downloads")
    desc = pl.col("repo_description")
    has_description = desc.is_not_null() & (desc.str.strip_chars(PY_WHITESPACE) != "")
    truthy = lambda c: c.is_not_null() & (c != 0)  # noqa: E731  (``if package.x:``)
    age_commit = _age(pl.col("last_updated"), now)
    age_release = _age(pl.col("_site_released"), now)
    return [
        # DeprecatedRule: ``if not package.is_deprecated: max_score, "Package is not deprecated."``
        pl.when(pl.col("deprecated").fill_null(False)).then(0).otherwise(20).alias("deprecated_score"),
        pl.when(pl.col("deprecated").fill_null(False)).then(pl.lit("Package is deprecated."))
        .otherwise(pl.lit("Package is not deprecated.")).alias("deprecated_message"),
        # DescriptionRule: ``if package.repo_description and package.repo_description.strip():``
            pl.when(has_description).then(20).otherwise(0).alias("description_score"),
        pl.when(has_description).then(pl.lit("Package has a description."))
        .otherwise(pl.lit("Package has no description.")).alias("description_message"),
        # DownloadsRule: ``min(int(package.pypi_downloads / 1_000), self.max_score)``
        pl.when(truthy(downloads)).then(pl.min_horizontal((downloads / 1_000).cast(pl.Int64), pl.lit(20)))
        .otherwise(0).alias("downloads_score"),
        pl.when(truthy(downloads)).then(pl.format("Package has {} PyPi downloads.", downloads))
        .otherwise(pl.lit("No PyPi downloads data for the package.")).alias("downloads_message"),
        # ForkRule: ``min(package.repo_forks, self.max_score)``
        pl.when(truthy(forks)).then(pl.min_horizontal(forks, pl.lit(20))).otherwise(0).alias("forks_score"),
        pl.when(truthy(forks)).then(pl.format("Package repository has {} forks.", forks))
        .otherwise(pl.lit("No forks data for the package repository.")).alias("forks_message"),
        # UsageCountRule: ``usage_count = package.usage.count()``
        pl.when(truthy(usage)).then(pl.min_horizontal(usage, pl.lit(20))).otherwise(0).alias("usage_score"),
        pl.when(truthy(usage)).then(pl.format("Package has a usage count of {}.", usage))
        .otherwise(pl.lit("No usage data found for the package.")).alias("usage_message"),
        # WatchersRule: ``min(package.repo_watchers, self.max_score)``
        pl.when(truthy(stars)).then(pl.min_horizontal(stars, pl.lit(20))).otherwise(0).alias("watchers_score"),
        pl.when(truthy(stars)).then(pl.format("Package repository has {} watchers.", stars))
        .otherwise(pl.lit("No watchers data for the package repository.")).alias("watchers_message"),
        # LastUpdatedRule: ``(now - last_updated) < timedelta(90)`` -> 20, ``< timedelta(182)`` ->
        # ``int(self.max_score / 2)``, ``< timedelta(365)`` -> ``int(self.max_score / 4)``, else 0
        pl.when(pl.col("last_updated").is_null()).then(0)
        .when(age_commit < pl.duration(days=90)).then(20)
        .when(age_commit < pl.duration(days=182)).then(10)
        .when(age_commit < pl.duration(days=365)).then(5)
        .otherwise(0).alias("last_updated_score"),
        pl.when(pl.col("last_updated").is_null()).then(pl.lit("No update data found for the package."))
        .when(age_commit < pl.duration(days=90)).then(pl.lit("Package was updated less than 3 months ago."))
        .when(age_commit < pl.duration(days=182)).then(pl.lit("Package was updated less than 6 months ago."))
        .when(age_commit < pl.duration(days=365)).then(pl.lit("Package was updated less than 1 year ago."))
        .otherwise(pl.lit("Package was updated more than 1 year ago.")).alias("last_updated_message"),
        # RecentReleaseRule: ``if now - last_released.upload_time < timedelta(365):`` -> 20
        pl.when(pl.col("_site_released").is_null()).then(0)
        .when(age_release < pl.duration(days=365)).then(20).otherwise(0).alias("recent_release_score"),
        pl.when(pl.col("_site_released").is_null()).then(pl.lit("No release data found for the package."))
        .when(age_release < pl.duration(days=365)).then(pl.lit("Last release is less than a year old."))
        .otherwise(pl.lit("Last release is more than a year old.")).alias("recent_release_message"),
    ]


def _entry_json(rule: str, description: str, score: pl.Expr, max_score: int, message: pl.Expr,
                url: str) -> pl.Expr:
    """One breakdown entry as compact JSON text. The only variable parts are integers and the rule
    messages, whose texts are fixed apart from integers, so nothing dynamic needs escaping."""
    return pl.concat_str(
        pl.lit('{"rule":' + json.dumps(rule) + ',"description":' + json.dumps(description) + ',"score":'),
        score.cast(pl.Int64).cast(pl.String),
        pl.lit(f',"max_score":{max_score},"message":"'), message,
        pl.lit('","documentation_url":' + json.dumps(url) + "}"))


def _entry(key: str) -> pl.Expr:
    rule, description, max_score, url = RULES[key]
    return _entry_json(rule, description, pl.col(f"{key}_score"), max_score, pl.col(f"{key}_message"), url)


def _activity_entry() -> pl.Expr:
    """ScoreRuleGroup.check: ``int((total_score / max_possible_score) * self.max_score)``, messages
    joined with a space."""
    rule, description, max_score, url = ACTIVITY_GROUP
    total = (pl.col("last_updated_score") + pl.col("recent_release_score")).cast(pl.Float64)
    message = pl.concat_str(pl.col("last_updated_message"), pl.col("recent_release_message"), separator=" ")
    return _entry_json(rule, description, ((total / 40) * max_score).cast(pl.Int64), max_score, message, url)


def _normalise(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in INPUT_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"djangopackages scores: missing input columns {missing}")
    return frame.with_columns(
        *(pl.col(c).cast(INPUT_SCHEMA[c]) if not isinstance(INPUT_SCHEMA[c], pl.Datetime)
          else pl.col(c).dt.convert_time_zone("UTC").cast(INPUT_SCHEMA[c]) for c in INPUT_SCHEMA))


def djangopackages_scores(frame: pl.DataFrame, *, now: datetime,
                          release_time_zone: str | None = SITE_TIME_ZONE) -> pl.DataFrame:
    """Add ``supports_python3``, ``score``, ``weight`` and ``weight_json`` (the breakdown JSON, as the
    rules page builds it) to a frame of packages.

    ``calc_package_weight``: ``int((total_score / max_possible_score) * max_score)`` with
    ``max_score=100``; ``"message": " ".join(messages)``. Other columns pass through.
    ``release_time_zone``: the site's naive-upload-time quirk (see ``site_release_time``); None
    compares the true upload instant.
    """
    now = _utc(now)
    out = _normalise(frame)
    out = out.with_columns(supports_python3(out),
                           site_release_time(pl.col("last_released"), release_time_zone).alias("_site_released"))
    out = out.with_columns(_rule_columns(now))
    entries = [_entry(k) if k != "activity" else _activity_entry() for k in PAGE_ORDER]
    total = pl.sum_horizontal(*(pl.col(f"{k}_score") for k in RULES)).cast(pl.Float64)
    message = pl.concat_str(*(pl.col(f"{k}_message") for k in
                              ("deprecated", "description", "downloads", "forks", "usage", "watchers",
                               "last_updated", "recent_release")), separator=" ")
    out = out.with_columns(
        score_expr(pl.col("repo_watchers"), pl.col("last_updated"), pl.col("supports_python3"), now).alias("score"),
        ((total / MAX_POSSIBLE) * 100).cast(pl.Int64).alias("weight"),
        message.alias("weight_message"),
    )
    # {"total_score", "message", "breakdown": [{"rule", "description", "score", "max_score", "message",
    #  "documentation_url"}]}: calc_package_weight's dict, as compact JSON
    out = out.with_columns(pl.concat_str(
        pl.lit('{"total_score":'), pl.col("weight").cast(pl.String), pl.lit(',"message":"'),
        pl.col("weight_message"), pl.lit('","breakdown":['), pl.concat_str(entries, separator=","),
        pl.lit("]}")).alias("weight_json"))
    scratch = [f"{k}_{s}" for k in RULES for s in ("score", "message")] + ["_site_released", "weight_message"]
    return out.drop(scratch)


# --------------------------------------------------------------------------------------------------
# grids (searchv3/builders.py)
# --------------------------------------------------------------------------------------------------

def max_package_weight(weights: Iterable[int] | pl.Series) -> int:
    """``build_search_index``: the highest package weight in the index, else ``package_score_max``
    (100) when no package is indexed."""
    values = [int(w) for w in weights if w is not None]
    return max(values) if values else 100


def grid_weight(grids: pl.DataFrame, *, max_weight: int) -> pl.DataFrame:
    """Add ``weight`` to grids (columns ``is_locked``, ``header``, ``package_count``).

    ``calc_grid_weight``: ``increment = max_weight / 6``; ``weight = max_weight - increment``; minus
    an increment when ``not grid.is_locked``, when ``not grid.header``, when it has no packages;
    ``int(weight)``. The float steps are kept: with max 100 an unlocked, header-less grid with
    packages gets ``int(49.999999999999986) == 49``.
    """
    inc = max_weight / 6
    w = pl.lit(max_weight - inc, pl.Float64)
    w = pl.when(pl.col("is_locked").fill_null(False)).then(w).otherwise(w - inc)
    w = pl.when(pl.col("header").fill_null(False)).then(w).otherwise(w - inc)
    w = pl.when(pl.col("package_count").fill_null(0) > 0).then(w).otherwise(w - inc)
    return grids.with_columns(w.cast(pl.Int64).alias("weight"))
