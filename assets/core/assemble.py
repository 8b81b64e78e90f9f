"""The assemble stage: catalogue packages + parsed facts -> the core tables.

Facts are keyed by subject (a repo key, or "<source>:<name>" for a package source such as PyPI
and pypistats), packages by id; this is the one place that
maps one onto the other, so packages sharing a repository each get its data, and a package is
judged stale or broken from the requests about its own subjects only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import polars as pl

from assets.core.columns import CORE_KEYS, catalogue_packages, conform
from pipelines.sources.facts import UTC_US, Facts
from pipelines.sources.registry import SOURCES
from pipelines.sources.times import iso_column

PRERELEASE_RE = r"(?i)[\d._-](a|alpha|b|beta|c|rc|pre|preview|dev)[-_.]?\d*"
ERROR, INFO = "error", "info"  # core.crawl_errors.severity: a failure, or a notice (data is fine)
# a `gone` answer is a package fact only once seen on refreshes at least this far apart
GONE_CONFIRMED_AFTER = timedelta(days=1)
ENDPOINT_SUBJECT = "endpoint:"  # subjects of endpoint-level rows (`pipelines.sources.http.health`)
INACTIVE_CLASSIFIER = "Development Status :: 7 - Inactive"
PYTHON_VERSION_RE = r"^Programming Language :: Python :: (\d+\.\d+)$"
DJANGO_VERSION_RE = r"^Framework :: Django :: (\d+(?:\.\d+)?)$"
DEPRECATED_STATUSES = ("archived", "deprecated")  # PEP 792 statuses that retire a project


def _versions(classifiers: pl.Expr, pattern: str) -> pl.Expr:
    """The versions named by classifiers matching `pattern`, unique, in numeric order ("3.9" < "3.10")."""
    found = classifiers.list.eval(pl.element().str.extract(pattern, 1).drop_nulls().unique())
    return found.list.eval(
        pl.element().sort_by(
            pl.element().str.extract(r"^(\d+)", 1).cast(pl.Int64),
            pl.element().str.extract(r"^\d+\.(\d+)", 1).cast(pl.Int64),
            nulls_last=False,
        )
    )


def classifier_columns(classifiers: pl.Expr) -> list[pl.Expr]:
    """Trove classifiers -> `pypi_inactive` (Development Status :: 7 - Inactive), `python_versions`
    (Programming Language :: Python :: X.Y) and `django_versions` (Framework :: Django :: X[.Y]);
    null lists when the package is not on PyPI."""
    return [
        classifiers.list.contains(INACTIVE_CLASSIFIER).fill_null(False).alias("pypi_inactive"),
        _versions(classifiers, PYTHON_VERSION_RE).alias("python_versions"),
        _versions(classifiers, DJANGO_VERSION_RE).alias("django_versions"),
    ]


def _table(catalogue: Mapping[str, pl.DataFrame], name: str) -> pl.DataFrame:
    for key in (name, f"catalogue.{name}"):
        if key in catalogue:
            return catalogue[key]
    raise KeyError(f"catalogue frame {name!r} missing (have {sorted(catalogue)})")


def _repo_subjects(packages: pl.DataFrame) -> pl.DataFrame:
    return packages.filter(pl.col("repo_key").is_not_null()).select(
        pl.col("repo_key").alias("subject"), pl.col("id").alias("package_id")
    )


def _package_subjects(packages: pl.DataFrame, *, fetched_only: bool = False) -> list[pl.DataFrame]:
    """subject -> package_id of every "package" source (`<source>:<catalogue column>`, what
    `Source.subject` gives); `fetched_only`: only the sources whose answers mark a package fetched."""
    return [
        packages.filter(pl.col(source.catalogue_column).is_not_null()).select(
            (pl.lit(f"{source.name}:") + pl.col(source.catalogue_column)).alias("subject"),
            pl.col("id").alias("package_id"),
        )
        for source in SOURCES
        if source.kind == "package" and source.catalogue_column in packages.columns
        and (source.marks_fetched or not fetched_only)
    ]


def subject_map(packages: pl.DataFrame) -> pl.DataFrame:
    """subject -> package_id (a package has a repo subject and one per package source of the registry)."""
    return pl.concat([_repo_subjects(packages), *_package_subjects(packages)])


def _fetched_subject_map(packages: pl.DataFrame) -> pl.DataFrame:
    """The subjects whose answers count towards `last_fetched` / `is_stale` (`Source.marks_fetched`)."""
    return pl.concat([_repo_subjects(packages), *_package_subjects(packages, fetched_only=True)])


def _per_package(subjects: pl.DataFrame, facts: pl.DataFrame, name: str) -> pl.DataFrame:
    """Per-subject facts copied to every package naming that subject (`subjects`: `subject_map`). A
    fact's subject says which source it came from (a repo key, `<source>:<name>`), so one subject map
    serves every table."""
    return conform(name, subjects.join(facts, on="subject", how="inner"))


def _on_packages(subjects: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """One fact row per package id (facts of a package source, keyed by their subject)."""
    # (unique: a duplicated catalogue row must not multiply the rows the checks then count)
    return subjects.unique().join(facts, on="subject", how="inner").drop("subject")


def renamed_notices(packages: pl.DataFrame, repositories: pl.DataFrame) -> pl.DataFrame:
    """`renamed` rows (severity `info`): the host answered for the catalogue's repository under
    another owner/name (a followed 301, or GraphQL's nameWithOwner), so the catalogue URL is outdated.
    The data is fine; the row tells the catalogue's maintainers what to fix."""
    return (
        packages.filter(pl.col("repo_key").is_not_null())
        .join(repositories.filter(pl.col("canonical_repo").is_not_null())
              .select("repo_key", "canonical_repo", "fetched_at"), on="repo_key", how="inner")
        .select(
            pl.col("id").alias("package_id"),
            pl.col("repo_host").alias("source"),
            pl.format("catalogue:repo_url:{}", "id").alias("request_key"),
            pl.lit("renamed").alias("kind"),
            pl.lit(None, pl.Int32).alias("http_status"),
            pl.format("catalogue URL points at {}/{}; the repository is now {}", "repo_owner", "repo_name",
                      "canonical_repo").alias("message"),
            pl.col("fetched_at").alias("first_seen"),
            pl.col("fetched_at").alias("last_seen"),
            pl.lit(0, pl.Int32).alias("attempts"),
            pl.lit(INFO).alias("severity"),
        )
    )


def bad_entries(packages: pl.DataFrame) -> pl.DataFrame:
    """`bad_entry` rows for catalogue URLs that are not crawled: `repo_url_problem` (request key
    `catalogue:repo_url:<id>`) and, when the catalogue has the column, `pypi_url_problem`
    (`catalogue:pypi_url:<id>`)."""
    frames = []
    for column, what in (("repo_url_problem", "repo_url"), ("pypi_url_problem", "pypi_url")):
        if column not in packages.columns:
            continue
        frames.append(packages.filter(pl.col(column).is_not_null()).select(
            pl.col("id").cast(pl.Int64).alias("package_id"),
            pl.lit("catalogue").alias("source"),
            pl.format(f"catalogue:{what}:{{}}", "id").alias("request_key"),
            pl.lit("bad_entry").alias("kind"),
            pl.lit(None, pl.Int32).alias("http_status"),
            pl.col(column).cast(pl.String).alias("message"),
            pl.lit(None, UTC_US).alias("first_seen"),
            pl.lit(None, UTC_US).alias("last_seen"),
            pl.lit(0, pl.Int32).alias("attempts"),
        ))
    return pl.concat(frames)


def crawl_errors(
    packages: pl.DataFrame,
    facts: Facts,
    archive: pl.LazyFrame | None,
    repositories: pl.DataFrame | None = None,
    catalogue_packages: pl.DataFrame | None = None,
    subjects: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Why a package lacks data: classified failures (with their current streak when the archive is
    given), bodies that did not parse, and catalogue entries whose repo or PyPI URL could not be used
    (`catalogue_packages`: the catalogue frame as given, default `packages`; all severity `error`);
    plus informational `renamed` notices when `repositories` is given."""
    req = facts.requests
    # the archive's contract: the crawler classifies every failure into error_kind, so a null kind is a
    # usable answer whatever its status (304 unchanged, 409 "empty repository")
    failing = req.filter(pl.col("error_kind").is_not_null())
    keys = failing.select("request_key", "good_fetched_at")
    if archive is not None and not keys.is_empty():
        # the current failure streak: failed attempts since the newest good fetch
        history = (
            archive.select("request_key", "status", "error_kind", "attempts", "fetched_at")
            .join(keys.lazy(), on="request_key", how="semi")
            .join(keys.lazy(), on="request_key", how="left")
            .filter(
                pl.col("error_kind").is_not_null()
                & (pl.col("good_fetched_at").is_null() | (pl.col("fetched_at") > pl.col("good_fetched_at")))
            )
            .group_by("request_key")
            .agg(
                pl.col("fetched_at").min().alias("first_seen"),
                pl.col("fetched_at").max().alias("last_seen"),
                pl.col("attempts").fill_null(1).sum().alias("attempts"),
                pl.col("fetched_at").filter(pl.col("error_kind") == "gone").min().alias("gone_since"),
            )
            .collect()
        )
    else:
        history = failing.select(
            "request_key",
            pl.col("fetched_at").alias("first_seen"),
            pl.col("fetched_at").alias("last_seen"),
            "attempts",
            pl.when(pl.col("error_kind") == "gone").then(pl.col("fetched_at")).alias("gone_since"),
        )
    failed = failing.join(history, on="request_key", how="left", suffix="_h").select(
        "request_key",
        "subject",
        "source",
        pl.coalesce("error_kind", pl.lit("http_error")).alias("kind"),
        pl.col("status").alias("http_status"),
        pl.coalesce("error", pl.format("HTTP {}", "status")).alias("message"),
        pl.coalesce("first_seen", "fetched_at").alias("first_seen"),
        pl.coalesce("last_seen", "fetched_at").alias("last_seen"),
        pl.coalesce("attempts_h", "attempts").alias("attempts"),
        # `gone` is a fact (severity error: exports and health use it) only once seen on two refreshes
        # at least a day apart; before that it is a notice and the last good data stays (stale)
        pl.when((pl.col("error_kind") == "gone")
                & ~((pl.col("fetched_at") - pl.col("gone_since")) >= GONE_CONFIRMED_AFTER).fill_null(False))
        .then(pl.lit(INFO)).otherwise(pl.lit(ERROR)).alias("severity"),
    ).with_columns(
        pl.when(pl.col("severity") == INFO)
        .then(pl.format("{} (unconfirmed: a gone repository is confirmed when seen again a day later)",
                        "message"))
        .otherwise("message").alias("message"),
    )
    malformed = facts.malformed.join(req, on="request_key", how="inner").select(
        "request_key",
        "subject",
        "source",
        pl.lit("malformed").alias("kind"),
        pl.col("good_status").alias("http_status"),
        pl.col("reason").alias("message"),
        pl.col("good_fetched_at").alias("first_seen"),
        pl.col("good_fetched_at").alias("last_seen"),
        pl.lit(1).alias("attempts"),
        pl.lit(ERROR).alias("severity"),
    )
    errors = pl.concat([failed, malformed.with_columns(pl.col("attempts").cast(pl.Int32))], how="vertical_relaxed")
    by_subject = subject_map(packages) if subjects is None else subjects
    per_package = errors.join(by_subject, on="subject", how="inner").drop("subject")
    frames = [per_package, bad_entries(packages if catalogue_packages is None else catalogue_packages)]
    if repositories is not None:
        frames.append(renamed_notices(packages, repositories))
    return pl.concat(
        [conform("core.crawl_errors", f.with_columns(pl.col("severity") if "severity" in f.columns
                                                     else pl.lit(ERROR).alias("severity")))
         for f in frames]
    ).sort(list(CORE_KEYS["core.crawl_errors"]), nulls_last=True)


def endpoint_errors(requests: pl.DataFrame) -> pl.DataFrame:
    """`core.endpoint_errors`: endpoints whose newest health row is an open circuit (error_kind
    `endpoint`); an endpoint that answered again since has a newer good row and no error."""
    rows = requests.filter(pl.col("subject").str.starts_with(ENDPOINT_SUBJECT)
                           & (pl.col("error_kind") == "endpoint"))
    return conform("core.endpoint_errors", rows.select(
        "source",
        pl.col("request_key").str.split(":").list.get(2).alias("endpoint"),
        "request_key",
        pl.col("error_kind").alias("kind"),
        pl.col("status").alias("http_status"),
        pl.col("error").alias("message"),
        pl.col("attempts").alias("requests"),
        pl.col("fetched_at").alias("seen_at"),
    ))


def assemble_core(
    catalogue: Mapping[str, pl.DataFrame],
    facts: Facts,
    *,
    archive: pl.LazyFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """The assemble stage: catalogue frames + parsed facts -> core tables."""
    categories = conform("core.categories", _table(catalogue, "categories"))
    grids = conform("core.grids", _table(catalogue, "grids"))
    packages = catalogue_packages(_table(catalogue, "packages"))
    subjects = subject_map(packages)  # once: every per-package fact joins through it
    grid_packages = conform(
        "core.grid_packages",
        _table(catalogue, "grid_packages")
        .join(grids.select(pl.col("id").alias("grid_id")), on="grid_id", how="semi")
        .join(packages.select(pl.col("id").alias("package_id")), on="package_id", how="semi")
        .unique(),
    )

    repos = facts.repos.join(facts.commits, on="subject", how="left").with_columns(
        # the newer of REST's newest commit and GraphQL's default-branch head (both may be archived:
        # REST answers while GraphQL was down, GraphQL again after)
        pl.max_horizontal(iso_column(pl.col("last_commit_at")), iso_column(pl.col("graph_commit_at")))
        .alias("last_commit_at"),
        iso_column(pl.col("pushed_at")).alias("pushed_at"),
        iso_column(pl.col("created_at")).alias("created_at"),
    )
    # commit dates without a repo body still count (e.g. the repo request failed, commits did not)
    commit_only = facts.commits.join(facts.repos, on="subject", how="anti").select(
        "subject", iso_column(pl.col("last_commit_at")).alias("last_commit_at")
    )
    repo_keys = (
        packages.filter(pl.col("repo_key").is_not_null())
        .sort("id")
        .unique("repo_key", keep="first", maintain_order=True)
        .select("repo_key", pl.col("repo_host").alias("host"), pl.col("repo_owner").alias("owner"),
                pl.col("repo_name").alias("name"))
    )
    repositories = repo_keys.join(
        repos.rename({"subject": "repo_key", "good_fetched_at": "fetched_at"}), on="repo_key", how="left"
    ).with_columns(
        pl.when(
            pl.col("full_name").is_not_null()
            & (pl.col("full_name").str.to_lowercase() != (pl.col("owner") + "/" + pl.col("name")).str.to_lowercase())
        )
        .then(pl.col("full_name"))
        .alias("canonical_repo")
    )
    repositories = repositories.join(
        commit_only.rename({"subject": "repo_key", "last_commit_at": "commit_only_at"}), on="repo_key", how="left"
    ).with_columns(pl.coalesce("last_commit_at", "commit_only_at").alias("last_commit_at"))
    repositories = conform("core.repositories", repositories)

    # freshness per subject: newest good fetch, and whether the newest attempt failed after a good one
    req = facts.requests.with_columns(
        (
            (pl.col("error_kind").is_not_null() | ~(pl.col("status").is_between(200, 299) | (pl.col("status") == 304)))
            & pl.col("good_fetched_at").is_not_null()
        ).alias("stale")
    )
    subject_state = req.group_by("subject").agg(
        pl.col("good_fetched_at").max().alias("last_fetched"), pl.col("stale").any().alias("is_stale")
    )
    package_state = (
        _fetched_subject_map(packages)
        .join(subject_state, on="subject", how="inner")
        .group_by("package_id")
        .agg(pl.col("last_fetched").max(), pl.col("is_stale").any())
    )
    pypi = _on_packages(subjects, facts.pypi.rename({
        "requires_python": "pypi_requires_python", "classifiers": "pypi_classifiers",
        "vulnerabilities": "pypi_vulnerabilities"}))
    simple = _on_packages(subjects, facts.simple)
    downloads = _on_packages(subjects, facts.downloads.select("subject", pl.col("last_month").alias("pypi_downloads")))
    out = (
        packages
        .join(
            repositories.select(
                "repo_key",
                pl.col("stars").alias("repo_watchers"),
                pl.col("forks").alias("repo_forks"),
                pl.col("description").alias("repo_description"),
                pl.col("last_commit_at").alias("last_updated"),
                pl.col("archived").alias("is_archived"),
                "canonical_repo",
            ),
            on="repo_key",
            how="left",
        )
        .join(pypi, left_on="id", right_on="package_id", how="left")
        .join(simple, left_on="id", right_on="package_id", how="left")
        .join(downloads, left_on="id", right_on="package_id", how="left")
        .join(package_state, left_on="id", right_on="package_id", how="left")
        .with_columns(
            pl.col("repo_watchers").fill_null(0),
            pl.col("repo_forks").fill_null(0),
            pl.col("repo_description").fill_null(""),
            pl.col("is_archived").fill_null(False),
            pl.col("is_stale").fill_null(False),
            pl.coalesce("docs_project_url", "docs_url", "documentation_url").alias("documentation_url"),
            pl.col("deprecated").alias("catalogue_deprecated"),
            *classifier_columns(pl.col("pypi_classifiers")),
        )
        .with_columns(
            (pl.col("is_archived") | pl.col("pypi_status").is_in(DEPRECATED_STATUSES).fill_null(False)
             | pl.col("pypi_inactive") | pl.col("catalogue_deprecated")).alias("is_deprecated")
        )
    )
    packages_out = conform("core.packages", out)
    return {
        "core.categories": categories,
        "core.grids": grids,
        "core.grid_packages": grid_packages,
        "core.packages": packages_out,
        "core.repositories": repositories,
        "core.commit_weeks": _per_package(subjects, facts.weeks, "core.commit_weeks"),
        "core.participants": _per_package(subjects, facts.participants, "core.participants"),
        "core.releases": _per_package(
            subjects,
            facts.releases.with_columns(
                iso_column(pl.col("upload_time")).alias("upload_time"),
                pl.col("version").str.contains(PRERELEASE_RE).alias("is_prerelease"),
            ),
            "core.releases",
        ),
        "core.downloads_daily": _per_package(subjects, facts.daily_downloads, "core.downloads_daily"),
        "core.crawl_errors": crawl_errors(packages, facts, archive, repositories, _table(catalogue, "packages"),
                                        subjects=subjects),
        "core.endpoint_errors": endpoint_errors(facts.requests),
    }
