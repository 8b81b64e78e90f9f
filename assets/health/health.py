"""The Pulse health score: 0-100, the sum of six bounded components, capped with a reason.

Two steps, both pure polars:

- ``health_inputs(...)`` turns core-shaped frames (core.packages, core.repositories,
  core.commit_weeks, core.participants, core.releases, core.crawl_errors, plus downloads and
  vulnerabilities) into one row per package with the columns of ``INPUT_SCHEMA``;
- ``score_health(inputs, now=...)`` scores them with ``health.toml`` (weights and thresholds,
  versioned) and ``eol.toml`` (end-of-life dates of Python and Django series).

docs/HEALTH.md is the definition; this module implements it. Nothing here reads the clock.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import polars as pl
from packaging.specifiers import InvalidSpecifier, SpecifierSet

HERE = Path(__file__).parent
CONFIG_PATH = HERE / "health.toml"
EOL_PATH = HERE / "eol.toml"

COMPONENTS = ("activity", "releases", "popularity", "community", "currency", "security")
# parts of each component that must add up to its max
PARTS = {
    "activity": ("regularity_points", "recency_points"),
    "releases": ("recency_points", "cadence_points"),
    "popularity": ("stars_points", "downloads_points"),
    "community": ("contributors_points", "bus_factor_points"),
    "currency": ("python_points", "django_points"),
    "security": ("max",),
}
CAP_ORDER = ("upstream_gone", "pypi_quarantined", "repo_archived", "pypi_archived", "pypi_deprecated",
             "pypi_inactive", "catalogue_deprecated", "dormant", "vulnerable")

INPUT_SCHEMA: dict[str, pl.DataType] = {
    "package_id": pl.Int64,
    "stars": pl.Int64,
    "downloads_last_month": pl.Int64,         # null: no download data
    "downloads_trend": pl.Float64,            # last 30 days / previous 150 days' 30-day mean (explained only)
    "active_weeks": pl.Int32,                 # weeks with commits of the last 52, up to the last human commit
    "observed_weeks": pl.Int32,               # weeks the repository existed in the window (null: 52)
    "last_commit_at": pl.Datetime("us", "UTC"),
    "last_human_commit_at": pl.Datetime("us", "UTC"),
    "human_contributors": pl.Int32,
    "bot_contributors": pl.Int32,
    "bus_factor": pl.Int32,
    "on_pypi": pl.Boolean,
    "latest_version": pl.String,              # newest final, non-yanked release with files
    "latest_release_at": pl.Datetime("us", "UTC"),
    "releases_2y": pl.Int32,                  # final, non-yanked releases in the cadence window
    "latest_yanked": pl.Boolean,              # the newest final upload is yanked
    "yanked_version": pl.String,
    "requires_python": pl.String,
    "python_versions": pl.List(pl.String),    # X.Y classifiers
    "django_versions": pl.List(pl.String),    # X[.Y] classifiers
    "latest_vulnerabilities": pl.Int32,       # null: unknown
    "repo_archived": pl.Boolean,
    "pypi_status": pl.String,                 # PEP 792: active, archived, quarantined, deprecated
    "pypi_status_reason": pl.String,
    "pypi_inactive": pl.Boolean,
    "catalogue_deprecated": pl.Boolean,
    "upstream_gone": pl.Boolean,
}


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthConfig:
    version: str
    sections: dict = field(repr=False)

    def __getitem__(self, key: str) -> dict:
        return self.sections[key]


def load_config(path: Path | str | None = None) -> HealthConfig:
    """Read and check health.toml: maxima add up to 100, each component's parts to its max."""
    data = tomllib.loads(Path(path or CONFIG_PATH).read_text())
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ValueError("health config: a non-empty string `version` is required")
    total = sum(data[c]["max"] for c in COMPONENTS)
    if total != 100:
        raise ValueError(f"health config: component maxima add up to {total}, not 100")
    for c in COMPONENTS:
        if c != "security" and sum(data[c][p] for p in PARTS[c]) != data[c]["max"]:
            raise ValueError(f"health config: the parts of {c} do not add up to its max")
    missing = [k for k in CAP_ORDER if k not in data.get("caps", {})]
    if missing:
        raise ValueError(f"health config: caps missing {missing}")
    return HealthConfig(version=version, sections=data)


@dataclass(frozen=True)
class EolTable:
    version: str
    python: dict[str, date]
    django: dict[str, date]

    def maintained(self, kind: str, now: datetime) -> list[str]:
        """Series whose end of life is after ``now`` (a series in its last day still counts)."""
        table = self.python if kind == "python" else self.django
        return sorted((v for v, eol in table.items() if eol >= now.date()), key=_version_key)


def load_eol(path: Path | str | None = None) -> EolTable:
    data = tomllib.loads(Path(path or EOL_PATH).read_text())
    return EolTable(version=str(data["eol_version"]), python=dict(data["python"]), django=dict(data["django"]))


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


@cache
def _default_config() -> HealthConfig:
    return load_config()


@cache
def _default_eol() -> EolTable:
    return load_eol()


# --------------------------------------------------------------------------------------------------
# inputs from core-shaped frames
# --------------------------------------------------------------------------------------------------

def _empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def health_inputs(packages: pl.DataFrame, *, now: datetime,
                  commit_weeks: pl.DataFrame | None = None,
                  participants: pl.DataFrame | None = None,
                  releases: pl.DataFrame | None = None,
                  repositories: pl.DataFrame | None = None,
                  crawl_errors: pl.DataFrame | None = None,
                  downloads: pl.DataFrame | None = None,
                  daily_downloads: pl.DataFrame | None = None,
                  last_human_commits: pl.DataFrame | None = None,
                  config: HealthConfig | None = None) -> pl.DataFrame:
    """One row per package (``INPUT_SCHEMA``) from frames with the core tables' columns.

    ``packages``: core.packages (``id``, ``last_updated``, ``repo_watchers``, ``pypi_version``,
    ``pypi_status``, ...), optionally with ``pypi_downloads``, ``latest_vulnerabilities`` and
    ``catalogue_deprecated`` columns. ``repositories``: core.repositories; a ``created_at`` column,
    when present, tells a young repository's age. ``downloads``: (package_id, downloads_last_month)
    when ``packages`` has no ``pypi_downloads``. ``daily_downloads``: (package_id, date, downloads),
    pypistats' overall series: fills a missing last month and gives the trend.
    ``last_human_commits``: (package_id, last_human_commit_at) when the crawl knows the newest commit
    by a human; otherwise the newest commit is taken as human.
    """
    config = config or _default_config()
    now = now.astimezone(UTC)
    ids = packages.select(pl.col("id").cast(pl.Int64).alias("package_id"))
    p = packages.rename({"id": "package_id"}).with_columns(pl.col("package_id").cast(pl.Int64))

    def col(name: str, dtype: pl.DataType, default=None) -> pl.Expr:
        return (pl.col(name) if name in p.columns else pl.lit(default)).cast(dtype).alias(name)

    base = p.select("package_id",
                    col("repo_watchers", pl.Int64, 0), col("last_updated", pl.Datetime("us", "UTC")),
                    col("pypi_version", pl.String), col("pypi_name", pl.String),
                    col("pypi_requires_python", pl.String),
                    col("python_versions", pl.List(pl.String)), col("django_versions", pl.List(pl.String)),
                    col("is_archived", pl.Boolean, False), col("pypi_status", pl.String),
                    col("pypi_status_reason", pl.String), col("pypi_inactive", pl.Boolean, False),
                    col("catalogue_deprecated", pl.Boolean, False), col("pypi_downloads", pl.Int64),
                    col("latest_vulnerabilities", pl.Int32), col("repo_key", pl.String))

    # last human commit: given, else the newest commit
    if last_human_commits is not None:
        base = base.join(last_human_commits.select(pl.col("package_id").cast(pl.Int64),
                                                   pl.col("last_human_commit_at").dt.convert_time_zone("UTC")),
                         on="package_id", how="left").with_columns(
            pl.coalesce("last_human_commit_at", "last_updated").alias("last_human_commit_at"))
    else:
        base = base.with_columns(pl.col("last_updated").alias("last_human_commit_at"))

    # activity: weeks with commits, not counting weeks after the last human commit (bots only)
    weeks = commit_weeks if commit_weeks is not None else _empty(
        {"package_id": pl.Int64, "week_index": pl.Int16, "week_start": pl.Date, "commits": pl.Int32})
    cutoff = base.select("package_id", pl.col("last_human_commit_at").dt.date().alias("_cutoff"),
                         pl.col("last_human_commit_at").is_not_null().alias("_known"))
    active = (weeks.select(pl.col("package_id").cast(pl.Int64), "week_start", "commits")
              .join(cutoff, on="package_id", how="left")
              .filter((pl.col("commits") > 0)
                      & (pl.col("_cutoff").is_null() | (pl.col("week_start") <= pl.col("_cutoff"))))
              .group_by("package_id").agg(pl.len().cast(pl.Int32).alias("active_weeks")))

    # community: humans, bots, bus factor over human contributions
    people = participants if participants is not None else _empty(
        {"package_id": pl.Int64, "position": pl.Int32, "login": pl.String, "contributions": pl.Int64,
         "is_bot": pl.Boolean})
    people = people.select(pl.col("package_id").cast(pl.Int64), pl.col("contributions").fill_null(0),
                           pl.col("is_bot").fill_null(False))
    counts = people.group_by("package_id").agg(
        (~pl.col("is_bot")).sum().cast(pl.Int32).alias("human_contributors"),
        pl.col("is_bot").sum().cast(pl.Int32).alias("bot_contributors"))
    share = config["community"]["bus_factor_share"]
    bus = (people.filter(~pl.col("is_bot") & (pl.col("contributions") > 0))
           .sort(["package_id", "contributions"], descending=[False, True])
           .with_columns(pl.col("contributions").cum_sum().over("package_id").alias("_cum"),
                         pl.col("contributions").sum().over("package_id").alias("_total"))
           .with_columns((pl.col("_cum") - pl.col("contributions")).alias("_before"))
           .group_by("package_id")
           .agg((pl.col("_before") < share * pl.col("_total")).sum().cast(pl.Int32).alias("bus_factor")))

    # releases: newest final non-yanked release with files, cadence, yanked newest upload
    rel = releases if releases is not None else _empty(
        {"package_id": pl.Int64, "version": pl.String, "upload_time": pl.Datetime("us", "UTC"),
         "yanked": pl.Boolean, "requires_python": pl.String, "is_prerelease": pl.Boolean})
    final = rel.select(pl.col("package_id").cast(pl.Int64), "version",
                       pl.col("upload_time").dt.convert_time_zone("UTC"), pl.col("yanked").fill_null(False),
                       pl.col("is_prerelease").fill_null(False)).filter(
        ~pl.col("is_prerelease") & pl.col("upload_time").is_not_null())
    window = now - timedelta(days=config["releases"]["cadence_window_days"])
    good = (final.filter(~pl.col("yanked")).group_by("package_id").agg(
        pl.col("version").sort_by("upload_time").last().alias("latest_version"),
        pl.col("upload_time").max().alias("latest_release_at"),
        (pl.col("upload_time") >= window).sum().cast(pl.Int32).alias("releases_2y")))
    newest = final.group_by("package_id").agg(
        pl.col("yanked").sort_by("upload_time").last().alias("latest_yanked"),
        pl.col("version").sort_by("upload_time").last().alias("_newest_version"))

    # vanished upstream: a 404/410 classified `gone` on the newest attempt
    errors = crawl_errors if crawl_errors is not None else _empty(
        {"package_id": pl.Int64, "kind": pl.String, "severity": pl.String})
    gone = (errors.filter((pl.col("kind") == "gone") & (pl.col("severity") == "error"))
            .select(pl.col("package_id").cast(pl.Int64)).unique().with_columns(pl.lit(True).alias("upstream_gone")))

    # young repositories: weeks of the window they existed
    if repositories is not None and "created_at" in repositories.columns:
        age = (base.select("package_id", "repo_key")
               .join(repositories.select("repo_key", pl.col("created_at").dt.convert_time_zone("UTC")),
                     on="repo_key", how="left")
               .select("package_id", ((pl.lit(now) - pl.col("created_at")).dt.total_days() // 7 + 1)
                       .clip(1, 52).cast(pl.Int32).alias("observed_weeks")))
    else:
        age = ids.with_columns(pl.lit(None, pl.Int32).alias("observed_weeks"))

    # downloads: last month (pypistats `recent`), else the last 30 days of the daily series; trend
    dl = base.select("package_id", pl.col("pypi_downloads").alias("downloads_last_month"))
    if downloads is not None:
        dl = dl.drop("downloads_last_month").join(
            downloads.select(pl.col("package_id").cast(pl.Int64), pl.col("downloads_last_month").cast(pl.Int64)),
            on="package_id", how="left")
    trend = ids.with_columns(pl.lit(None, pl.Int64).alias("_last30"), pl.lit(None, pl.Float64).alias("downloads_trend"))
    if daily_downloads is not None:
        today = now.date()
        d = daily_downloads.select(pl.col("package_id").cast(pl.Int64), pl.col("date").cast(pl.Date),
                                   pl.col("downloads").cast(pl.Int64))
        age_days = (pl.lit(today) - pl.col("date")).dt.total_days()
        trend = d.group_by("package_id").agg(
            pl.col("downloads").filter(age_days.is_between(1, 30)).sum().alias("_last30"),
            pl.col("downloads").filter(age_days.is_between(31, 180)).sum().alias("_prev150"),
        ).select("package_id", "_last30",
                 pl.when(pl.col("_prev150") > 0).then(pl.col("_last30") / (pl.col("_prev150") / 5))
                 .otherwise(None).alias("downloads_trend"))
    dl = dl.join(trend, on="package_id", how="left").with_columns(
        pl.coalesce("downloads_last_month", "_last30").alias("downloads_last_month")).drop("_last30")

    out = (base.join(active, on="package_id", how="left").join(counts, on="package_id", how="left")
           .join(bus, on="package_id", how="left").join(good, on="package_id", how="left")
           .join(newest, on="package_id", how="left").join(gone, on="package_id", how="left")
           .join(age, on="package_id", how="left").join(dl, on="package_id", how="left"))
    out = out.select(
        "package_id",
        pl.col("repo_watchers").fill_null(0).alias("stars"),
        "downloads_last_month", "downloads_trend",
        pl.col("active_weeks").fill_null(0), "observed_weeks",
        pl.col("last_updated").alias("last_commit_at"), "last_human_commit_at",
        pl.col("human_contributors").fill_null(0), pl.col("bot_contributors").fill_null(0),
        pl.col("bus_factor").fill_null(0),
        (pl.col("pypi_version").is_not_null() | pl.col("pypi_status").is_not_null()).alias("on_pypi"),
        "latest_version", "latest_release_at", pl.col("releases_2y").fill_null(0),
        pl.col("latest_yanked").fill_null(False),
        pl.when(pl.col("latest_yanked")).then(pl.col("_newest_version")).alias("yanked_version"),
        pl.col("pypi_requires_python").alias("requires_python"), "python_versions", "django_versions",
        "latest_vulnerabilities", pl.col("is_archived").fill_null(False).alias("repo_archived"),
        "pypi_status", "pypi_status_reason", pl.col("pypi_inactive").fill_null(False),
        pl.col("catalogue_deprecated").fill_null(False), pl.col("upstream_gone").fill_null(False))
    return out.cast(INPUT_SCHEMA)


# --------------------------------------------------------------------------------------------------
# currency: maintained Python and Django series
# --------------------------------------------------------------------------------------------------

def _spec_admits(spec: str, maintained: tuple[str, ...]) -> str | None:
    """Maintained Python series a requires_python admits, comma-joined ("" when none); None when invalid."""
    try:
        specifiers = SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    return ", ".join(v for v in maintained if specifiers.contains(v, prereleases=True))


def _currency(frame: pl.DataFrame, now: datetime, eol: EolTable) -> pl.DataFrame:
    """Adds ``_py_state``/``_dj_state`` (True maintained, False only end-of-life, null unknown) and
    ``_py_note``/``_dj_note`` (the maintained series found, or the newest listed)."""
    py_maint = tuple(eol.maintained("python", now))
    dj_maint = eol.maintained("django", now)
    dj_tokens = sorted(set(dj_maint) | {v.split(".")[0] for v in dj_maint})  # "Framework :: Django :: 5"
    specs = frame.select(pl.col("requires_python").unique()).drop_nulls()
    lookup = specs.with_columns(pl.col("requires_python").map_elements(
        lambda s: _spec_admits(s, py_maint), return_dtype=pl.String, skip_nulls=True).alias("_spec_admits"))
    frame = frame.join(lookup, on="requires_python", how="left", maintain_order="left")
    py_listed = pl.col("python_versions").fill_null([]).list
    py_ok = pl.col("python_versions").list.eval(pl.element().filter(pl.element().is_in(list(py_maint))))
    dj_ok = pl.col("django_versions").list.eval(pl.element().filter(pl.element().is_in(dj_tokens)))
    has_py_list = py_listed.len() > 0
    has_spec = pl.col("requires_python").is_not_null() & (pl.col("requires_python") != "") \
        & pl.col("_spec_admits").is_not_null()
    has_dj = pl.col("django_versions").fill_null([]).list.len() > 0
    return frame.with_columns(
        pl.when(has_py_list).then(py_ok.list.len() > 0)
        .when(has_spec).then(pl.col("_spec_admits") != "")
        .otherwise(None).alias("_py_state"),
        pl.when(has_py_list & (py_ok.list.len() > 0)).then(pl.format("Python {}", py_ok.list.join(", ")))
        .when(has_py_list).then(pl.format("only end-of-life Python ({})", py_listed.join(", ")))
        .when(has_spec & (pl.col("_spec_admits") != "")).then(
            pl.format("Python {} (requires-python {})", pl.col("_spec_admits"), pl.col("requires_python")))
        .when(has_spec).then(pl.format("no maintained Python in requires-python {}", pl.col("requires_python")))
        .otherwise(pl.lit("Python support unknown")).alias("_py_note"),
        pl.when(has_dj).then(dj_ok.list.len() > 0).otherwise(None).alias("_dj_state"),
        pl.when(has_dj & (dj_ok.list.len() > 0)).then(pl.format("Django {}", dj_ok.list.join(", ")))
        .when(has_dj).then(pl.format("only end-of-life Django ({})",
                                     pl.col("django_versions").list.join(", ")))
        .otherwise(pl.lit("Django support unknown")).alias("_dj_note"),
    ).drop("_spec_admits")


# --------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------

def _ramp(days: pl.Expr, full: float, zero: float) -> pl.Expr:
    """1 up to ``full`` days, 0 from ``zero`` days, linear in between; null -> 0."""
    return ((zero - days) / (zero - full)).clip(0.0, 1.0).fill_null(0.0)


def _log_share(value: pl.Expr, full: float) -> pl.Expr:
    return ((value.fill_null(0).clip(0, None).cast(pl.Float64) + 1).log10() / math.log10(full + 1)).clip(0.0, 1.0)


def _r1(expr: pl.Expr) -> pl.Expr:
    return expr.round(1)


def _days(expr: pl.Expr, now: datetime) -> pl.Expr:
    return (pl.lit(now) - expr).dt.total_seconds() / 86400.0


def _pct_below(column: str) -> pl.Expr:
    """Share (0-100) of the directory's packages with strictly less (nulls count as 0)."""
    value = pl.col(column).fill_null(0)
    return ((value.rank("min") - 1) / pl.len() * 100).floor().cast(pl.Int32)


def score_health(inputs: pl.DataFrame, *, now: datetime, config: HealthConfig | None = None,
                 eol: EolTable | None = None) -> pl.DataFrame:
    """Score packages (``INPUT_SCHEMA`` columns; missing optional ones are null).

    Returns one row per package: ``health_score`` (0-100, one decimal), ``health_uncapped`` (sum of
    the components), each component's points and ``<component>_max``, ``cap`` (null when none),
    ``cap_reason``, ``explanation`` (one line per component, the cap's reason first),
    ``health_version`` (config version + eol table version), and the directory placement of stars
    and downloads (``stars_percentile``, ``downloads_percentile``: share of the packages scored
    together that have fewer; shown, not scored).
    """
    config = config or _default_config()
    eol = eol or _default_eol()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    missing = {c: t for c, t in INPUT_SCHEMA.items() if c not in inputs.columns}
    frame = inputs.with_columns(pl.lit(None, t).alias(c) for c, t in missing.items()).select(
        pl.col(c).cast(t) for c, t in INPUT_SCHEMA.items())
    frame = _currency(frame, now, eol).with_columns(
        _days(pl.col("last_human_commit_at"), now).alias("_human_days"),
        _days(pl.col("latest_release_at"), now).alias("_release_days"),
        _days(pl.col("last_commit_at"), now).alias("_commit_days")).lazy()
    a, r, po, co, cu, se, caps = (config[k] for k in (*COMPONENTS, "caps"))

    human_days = pl.col("_human_days")
    release_days = pl.col("_release_days")
    vulns = pl.col("latest_vulnerabilities")

    # activity
    observed = pl.col("observed_weeks").fill_null(52).clip(1, 52).cast(pl.Float64)
    target = pl.max_horizontal(pl.lit(float(a["regularity_min_weeks"])), a["regularity_full_weeks"] * observed / 52)
    regularity = a["regularity_points"] * (pl.col("active_weeks").fill_null(0) / target).clip(0.0, 1.0)
    recency = a["recency_points"] * _ramp(human_days, a["recency_full_days"], a["recency_zero_days"])
    done = ((release_days <= a["done_release_days"]).fill_null(False) & pl.col("_py_state").fill_null(False)
            & (vulns == 0).fill_null(False) & ~pl.col("latest_yanked").fill_null(False))
    activity_raw = regularity + recency
    floor = a["done_floor"] * a["max"]
    activity = pl.when(done).then(pl.max_horizontal(activity_raw, pl.lit(floor))).otherwise(activity_raw)

    # releases
    rel_recency = r["recency_points"] * _ramp(release_days, r["recency_full_days"], r["recency_zero_days"])
    cadence = r["cadence_points"] * (pl.col("releases_2y").fill_null(0) / r["cadence_full_releases"]).clip(0.0, 1.0)
    yanked_penalty = pl.when(pl.col("latest_yanked").fill_null(False)).then(r["yanked_latest_penalty"]).otherwise(0)
    releases = pl.when(pl.col("on_pypi").fill_null(False)).then(
        (rel_recency + cadence - yanked_penalty).clip(0.0, r["max"])).otherwise(0.0)

    # popularity
    popularity = (po["stars_points"] * _log_share(pl.col("stars"), po["stars_full"])
                  + po["downloads_points"] * _log_share(pl.col("downloads_last_month"), po["downloads_full"]))

    # community
    humans = pl.col("human_contributors").fill_null(0)
    people_share = ((humans.cast(pl.Float64) + 1).log() / math.log(co["contributors_full"] + 1)).clip(0.0, 1.0)
    bus_share = (pl.col("bus_factor").fill_null(0) / co["bus_factor_full"]).clip(0.0, 1.0)
    community = co["contributors_points"] * people_share + co["bus_factor_points"] * bus_share

    # currency
    def state_points(state: str, points: float) -> pl.Expr:
        return (pl.when(pl.col(state).is_null()).then(cu["unknown_fraction"] * points)
                .when(pl.col(state)).then(float(points)).otherwise(0.0))

    currency = state_points("_py_state", cu["python_points"]) + state_points("_dj_state", cu["django_points"])

    # security
    security = (pl.when(vulns.is_null()).then(se["unknown_fraction"] * se["max"])
                .when(vulns == 0).then(float(se["max"])).otherwise(0.0))

    frame = frame.with_columns(
        _r1(activity).alias("activity"), _r1(releases).alias("releases"), _r1(popularity).alias("popularity"),
        _r1(community).alias("community"), _r1(currency).alias("currency"), _r1(security).alias("security"),
        (done & (activity_raw < floor)).alias("_done"), _pct_below("stars").alias("stars_percentile"),
        _pct_below("downloads_last_month").alias("downloads_percentile"))

    # caps: (condition, reason) in CAP_ORDER
    status = pl.col("pypi_status")
    status_reason = pl.when(pl.col("pypi_status_reason").is_not_null()) \
        .then(pl.format(" ({})", pl.col("pypi_status_reason"))).otherwise(pl.lit(""))
    newest_human_or_release = pl.max_horizontal(pl.col("last_human_commit_at"), pl.col("latest_release_at"))
    cap_rules = {
        "upstream_gone": (pl.col("upstream_gone").fill_null(False),
                          pl.lit("the upstream vanished (the repository or PyPI project answers 404/410)")),
        "pypi_quarantined": (status == "quarantined", pl.lit("PyPI has quarantined the project")),
        "repo_archived": (pl.col("repo_archived").fill_null(False), pl.lit("the repository is archived")),
        "pypi_archived": (status == "archived", pl.format("the PyPI project is archived{}", status_reason)),
        "pypi_deprecated": (status == "deprecated", pl.format("the PyPI project is deprecated{}", status_reason)),
        "pypi_inactive": (pl.col("pypi_inactive").fill_null(False),
                          pl.lit("its classifiers say Development Status :: 7 - Inactive")),
        "catalogue_deprecated": (pl.col("catalogue_deprecated").fill_null(False),
                                 pl.lit("the catalogue marks it deprecated")),
        # no evidence of life: nothing known counts too (so learning of an old date never raises a cap)
        "dormant": (newest_human_or_release.is_null()
                    | (_days(newest_human_or_release, now) > caps["dormant_days"]),
                    pl.when(newest_human_or_release.is_null())
                    .then(pl.lit("no known human commit and no known release"))
                    .otherwise(pl.format("no human commit and no release for {} days",
                                         _days(newest_human_or_release, now).floor().cast(pl.Int64)))),
        "vulnerable": ((vulns > 0).fill_null(False),
                       pl.format("the latest release {} has {} known vulnerabilit{}",
                                 pl.col("latest_version").fill_null("?"), vulns,
                                 pl.when(vulns == 1).then(pl.lit("y")).otherwise(pl.lit("ies")))),
    }
    # order by cap value (stable on CAP_ORDER), so the first reason is the binding one
    ordered = sorted(CAP_ORDER, key=lambda k: (caps[k], CAP_ORDER.index(k)))
    frame = frame.with_columns(cap_rules[k][0].fill_null(False).alias(f"_cap_{k}") for k in ordered)
    applicable = [pl.when(pl.col(f"_cap_{k}")).then(cap_rules[k][1]) for k in ordered]
    cap_values = [pl.when(pl.col(f"_cap_{k}")).then(pl.lit(caps[k], pl.Int32)) for k in ordered]
    frame = frame.with_columns(
        pl.min_horizontal(*cap_values).alias("cap"),
        pl.concat_list([e.cast(pl.String) for e in applicable]).list.drop_nulls().list.join("; ").alias("_reasons"))
    frame = frame.with_columns(
        pl.when(pl.col("cap").is_not_null()).then(pl.col("_reasons")).alias("cap_reason"),
        _r1(pl.sum_horizontal(*COMPONENTS)).alias("health_uncapped"))
    frame = frame.with_columns(
        pl.when(pl.col("cap").is_not_null())
        .then(pl.min_horizontal(pl.col("health_uncapped"), pl.col("cap").cast(pl.Float64)))
        .otherwise(pl.col("health_uncapped")).round(1).alias("health_score"))

    frame = frame.with_columns(_explanation(frame, config, now).alias("explanation"))
    version = f"{config.version}+eol.{eol.version}"
    return frame.select(
        "package_id", "health_score", "health_uncapped",
        *(e for c in COMPONENTS for e in (pl.col(c), pl.lit(float(config[c]["max"])).alias(f"{c}_max"))),
        "cap", "cap_reason", "explanation", pl.lit(version).alias("health_version"),
        "stars_percentile", "downloads_percentile").collect()


def _fmt_days(days: pl.Expr) -> pl.Expr:
    d = days.floor().cast(pl.Int64)
    return pl.when(d == 0).then(pl.lit("today")).when(d == 1).then(pl.lit("1 day ago")) \
        .otherwise(pl.format("{} days ago", d))


def _explanation(frame: pl.LazyFrame, config: HealthConfig, now: datetime) -> pl.Expr:
    """One line per component (``<name> <points>/<max>: <why>``), the cap's reason first."""
    def head(c: str) -> pl.Expr:
        return pl.format("{} {}/{}: ", pl.lit(c), pl.col(c), pl.lit(config[c]["max"]))

    human_days = pl.col("_human_days")
    commit_days = pl.col("_commit_days")
    release_days = pl.col("_release_days")
    vulns = pl.col("latest_vulnerabilities")
    a = config["activity"]

    bots_after = pl.when(pl.col("last_commit_at").is_not_null() & pl.col("last_human_commit_at").is_not_null()
                         & (pl.col("last_commit_at") > pl.col("last_human_commit_at"))) \
        .then(pl.format(" (newer commits, {}, are bots')", _fmt_days(commit_days))).otherwise(pl.lit(""))
    activity = pl.concat_str(
        head("activity"),
        pl.format("commits in {} of the last 52 weeks; ", pl.col("active_weeks").fill_null(0)),
        pl.when(pl.col("last_human_commit_at").is_null()).then(pl.lit("no known human commit"))
        .otherwise(pl.format("last human commit {}", _fmt_days(human_days))),
        bots_after,
        pl.when(pl.col("_done")).then(pl.lit(
            f"; a recent release, maintained Python and no known vulnerability keep at least "
            f"{a['done_floor'] * a['max']:g} (a 'done' package)")).otherwise(pl.lit("")))
    releases = pl.concat_str(
        head("releases"),
        pl.when(~pl.col("on_pypi").fill_null(False)).then(pl.lit("not on PyPI"))
        .when(pl.col("latest_release_at").is_null()).then(pl.lit("no final release with files on PyPI"))
        .otherwise(pl.format("latest {} {}; {} releases in {} days", pl.col("latest_version"),
                             _fmt_days(release_days), pl.col("releases_2y"),
                             pl.lit(config["releases"]["cadence_window_days"]))),
        pl.when(pl.col("latest_yanked").fill_null(False) & pl.col("on_pypi").fill_null(False))
        .then(pl.format("; the newest upload {} is yanked (-{})", pl.col("yanked_version").fill_null("?"),
                        pl.lit(config["releases"]["yanked_latest_penalty"]))).otherwise(pl.lit("")))
    trend = pl.when(pl.col("downloads_trend").is_not_null()).then(
        pl.format(", trend x{} vs the previous 5 months", pl.col("downloads_trend").round(2))).otherwise(pl.lit(""))
    popularity = pl.concat_str(
        head("popularity"),
        pl.format("{} stars (more than {}% of the directory), ", pl.col("stars").fill_null(0),
                  pl.col("stars_percentile")),
        pl.when(pl.col("downloads_last_month").is_null()).then(pl.lit("no download data"))
        .otherwise(pl.format("{} downloads last month (more than {}%)", pl.col("downloads_last_month"),
                             pl.col("downloads_percentile"))),
        trend)
    community = pl.concat_str(
        head("community"),
        pl.format("{} human contributors", pl.col("human_contributors").fill_null(0)),
        pl.when(pl.col("bot_contributors").fill_null(0) > 0)
        .then(pl.format(" ({} bot{} not counted)", pl.col("bot_contributors"),
                        pl.when(pl.col("bot_contributors") == 1).then(pl.lit("")).otherwise(pl.lit("s"))))
        .otherwise(pl.lit("")),
        pl.format("; bus factor {}", pl.col("bus_factor").fill_null(0)))
    currency = pl.concat_str(head("currency"), pl.col("_py_note"), pl.lit("; "), pl.col("_dj_note"))
    latest = pl.col("latest_version").fill_null("the latest release")
    security = pl.concat_str(
        head("security"),
        pl.when(vulns.is_null()).then(pl.lit("vulnerabilities unknown"))
        .when(vulns == 0).then(pl.format("no known vulnerabilities in {}", latest))
        .otherwise(pl.format("{} known vulnerabilities in {}", vulns, latest)))
    cap_line = pl.when(pl.col("cap").is_not_null()).then(
        pl.format("capped at {}: {}", pl.col("cap"), pl.col("cap_reason")))
    lines = [cap_line, activity, releases, popularity, community, currency, security]
    return pl.concat_list([line.cast(pl.String) for line in lines]).list.drop_nulls().list.join("\n")
