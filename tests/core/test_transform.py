"""build_core on a hand-written archive: API v4 semantics, edge cases and determinism."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from assets.core.columns import CORE_COLUMNS, CORE_KEYS
from assets.core.transform import build_core, build_core_from_archive
from tests.fixtures.sample import T0, sample_catalogue, sample_responses, write_sample
from warehouse.archive import RawResponse, latest_responses, scan_archive, write_batch


@pytest.fixture
def raw_dir(tmp_path):
    write_sample(tmp_path / "raw")
    return tmp_path / "raw"


@pytest.fixture
def core(raw_dir):
    return build_core(sample_catalogue(), latest_responses(raw_dir), archive=scan_archive(raw_dir))


def _built_both_ways(raw: Path) -> dict[str, pl.DataFrame]:
    """The core tables from the archive in memory and streamed: they must be equal; returns them."""
    in_memory = build_core(sample_catalogue(), latest_responses(raw), archive=scan_archive(raw))
    streamed = build_core_from_archive(sample_catalogue(), raw)
    assert set(streamed) == set(in_memory)
    for name in in_memory:
        assert streamed[name].equals(in_memory[name]), name
    return in_memory


def _pkg(core, slug):
    return core["core.packages"].filter(pl.col("slug") == slug).row(0, named=True)


def test_tables_have_declared_columns_sorted_and_unique(core):
    assert set(core) == set(CORE_COLUMNS)
    for name, frame in core.items():
        assert dict(frame.schema) == CORE_COLUMNS[name], name
        keys = list(CORE_KEYS[name])
        assert frame.select(keys).is_duplicated().sum() == 0, name
        assert frame.equals(frame.sort(keys, nulls_last=True)), name


def test_export_semantics_for_a_healthy_github_package(core):
    alpha = _pkg(core, "alpha")
    assert alpha["repo_watchers"] == 120
    assert alpha["repo_forks"] == 12
    assert alpha["repo_description"] == "acme/alpha description"
    assert alpha["last_updated"] == datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
    assert alpha["last_fetched"] == T0
    assert alpha["pypi_version"] == "2.0"
    assert alpha["documentation_url"] == "https://alpha.readthedocs.io"  # lower-case project_urls key
    assert not alpha["is_stale"] and not alpha["is_archived"] and alpha["canonical_repo"] is None


def test_participants_keep_bots_in_github_order_and_drop_anonymous(core):
    people = core["core.participants"].filter(pl.col("package_id") == 1)
    assert people["login"].to_list() == ["alice", "dependabot[bot]", "pre-commit-ci", "bob"]
    assert people["position"].to_list() == [0, 1, 2, 3]
    assert people["is_bot"].to_list() == [False, True, True, False]


def test_commit_weeks_end_at_the_fetch(core):
    weeks = core["core.commit_weeks"].filter(pl.col("package_id") == 1)
    assert weeks.height == 52
    assert weeks["week_index"].to_list() == list(range(52))
    # fetched Friday 2026-11-20: the last week starts Sunday 2026-11-15
    assert weeks["week_start"][-1] == date(2026, 11, 15)
    assert weeks["week_start"][0] == date(2025, 11, 23)
    assert weeks["commits"].to_list() == [(1 + i) % 5 for i in range(52)]


def test_packages_sharing_a_repository_each_get_its_data(core):
    beta = _pkg(core, "beta")
    assert beta["repo_watchers"] == 120
    assert core["core.commit_weeks"].filter(pl.col("package_id") == 2).height == 52
    assert core["core.participants"].filter(pl.col("package_id") == 2).height == 4
    assert beta["pypi_version"] is None and beta["documentation_url"] is None


def test_renamed_stale_and_not_on_pypi(core):
    gamma = _pkg(core, "gamma")
    assert gamma["canonical_repo"] == "new/gamma-ng"
    assert gamma["is_stale"]  # newest repo attempt failed; the good body is kept
    assert gamma["repo_watchers"] == 5
    assert gamma["pypi_version"] is None
    assert gamma["documentation_url"] == "https://gamma.example/docs"  # the catalogue's
    assert gamma["last_updated"] is None  # empty repository: commits []
    errors = core["core.crawl_errors"].filter(pl.col("package_id") == 3).sort("request_key")
    repo = errors.filter(pl.col("request_key") == "github:repo:old/gamma").row(0, named=True)
    assert repo["kind"] == "transient" and repo["http_status"] == 502 and repo["attempts"] == 2
    assert repo["first_seen"] < repo["last_seen"]
    assert "pypi:json:gamma" in errors["request_key"].to_list()


def test_other_hosts(core):
    delta = _pkg(core, "delta")
    assert (delta["repo_watchers"], delta["repo_forks"]) == (9, 2)
    assert delta["last_updated"] == datetime(2026, 10, 30, 10, 0, tzinfo=UTC)  # +02:00 converted
    assert delta["documentation_url"] == "https://delta.docs"  # info.docs_url
    eps = _pkg(core, "eps")
    assert eps["repo_watchers"] == 0  # Bitbucket has no stars
    assert eps["last_updated"] == datetime(2026, 8, 31, 10, 0, tzinfo=UTC)
    assert core["core.commit_weeks"].filter(pl.col("package_id").is_in([4, 5, 8])).is_empty()
    assert core["core.participants"].filter(pl.col("package_id").is_in([4, 5, 8])).is_empty()


def test_codeberg(core):
    theta = _pkg(core, "theta")
    assert (theta["repo_watchers"], theta["repo_forks"], theta["repo_description"]) == (17, 3, "Theta")
    assert theta["last_updated"] == datetime(2026, 11, 2, 6, 45, tzinfo=UTC)  # newest committer date, +01:00
    assert theta["last_fetched"] == T0 and not theta["is_stale"] and not theta["is_archived"]
    assert theta["canonical_repo"] is None
    repo = core["core.repositories"].filter(pl.col("repo_key") == "codeberg:cb/theta").row(0, named=True)
    assert (repo["host"], repo["owner"], repo["name"]) == ("codeberg", "cb", "theta")
    assert (repo["stars"], repo["forks"], repo["watchers"], repo["open_issues"]) == (17, 3, 4, 2)
    assert (repo["homepage"], repo["default_branch"], repo["is_fork"]) == ("https://theta.example", "main", False)
    assert repo["pushed_at"] == datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # updated_at
    assert repo["topics"] == ["django", "forgejo"] and repo["fetched_at"] == T0
    assert core["core.crawl_errors"].filter(pl.col("package_id") == 8).is_empty()


def test_codeberg_failures_keep_the_last_good_data(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    write_batch(raw, "codeberg", [
        RawResponse("codeberg:codeberg_repo:cb/theta", "codeberg", "codeberg_repo", "codeberg:cb/theta",
                    "/repos/cb/theta", 404, '{"errors":null,"message":"The target couldn\'t be found."}',
                    error_kind="gone", error="HTTP 404: not found or gone", fetched_at=later),
        RawResponse("codeberg:codeberg_commits:cb/theta", "codeberg", "codeberg_commits", "codeberg:cb/theta",
                    "/repos/cb/theta/commits", 200, '{"message": "not a list"}', fetched_at=later),
    ], "later")
    core = _built_both_ways(raw)
    theta = _pkg(core, "theta")
    assert theta["is_stale"] and theta["repo_watchers"] == 17  # the last good repository body is kept
    assert theta["last_updated"] is None  # the newest commits body is malformed: no date from it
    errors = dict(core["core.crawl_errors"].filter(pl.col("package_id") == 8)
                  .select("request_key", "kind").iter_rows())
    assert errors == {"codeberg:codeberg_repo:cb/theta": "gone", "codeberg:codeberg_commits:cb/theta": "malformed"}


def test_graphql_archived_and_malformed_body(core):
    zeta = _pkg(core, "zeta")
    assert zeta["repo_watchers"] == 42 and zeta["is_archived"]
    assert zeta["last_updated"] == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # defaultBranchRef target
    assert zeta["documentation_url"] == "https://zeta.docs"  # "Docs"
    repo = core["core.repositories"].filter(pl.col("repo_key") == "github:z/zeta").row(0, named=True)
    assert repo["latest_release"] == "v1.0" and repo["topics"] == ["django"]
    errors = core["core.crawl_errors"].filter(pl.col("package_id") == 6)
    assert errors["kind"].to_list() == ["malformed"]
    assert core["core.commit_weeks"].filter(pl.col("package_id") == 6).is_empty()


def test_bad_catalogue_entry_and_memberships(core):
    errors = core["core.crawl_errors"].filter(pl.col("package_id") == 7)
    assert errors["kind"].to_list() == ["bad_entry"]
    assert core["core.grid_packages"].rows() == [(10, 1, 1), (10, 3, 0), (11, 1, 0)]  # (grid, package, position)


def test_releases(core):
    rel = core["core.releases"].filter(pl.col("package_id") == 1)
    by_version = {r["version"]: r for r in rel.iter_rows(named=True)}
    assert by_version["2.0"]["upload_time"] == datetime(2026, 2, 1, tzinfo=UTC)  # earliest file
    assert by_version["2.0b1"]["is_prerelease"] and by_version["2.0b1"]["yanked"]
    assert by_version["0.1"]["upload_time"] is None and not by_version["0.1"]["yanked"]
    assert by_version["1.0"]["requires_python"] == ">=3.8"


def test_same_archive_gives_identical_tables(raw_dir, core):
    again = build_core(sample_catalogue(), latest_responses(raw_dir), archive=scan_archive(raw_dir))
    for name in core:
        assert core[name].equals(again[name]), name


def test_newer_good_body_replaces_and_garbage_never_crashes(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    rows = [
        RawResponse("github:repo:acme/alpha", "github", "repo", "github:acme/alpha", "/repos/acme/alpha", 200,
                    '{"full_name": "acme/alpha", "stargazers_count": 130}', fetched_at=later),
        RawResponse("github:contributors:acme/alpha", "github", "contributors", "github:acme/alpha", "/x", 200,
                    "<html>oops</html>", fetched_at=later),
        RawResponse("github:commits:acme/alpha", "github", "commits", "github:acme/alpha", "/x", 200,
                    '{"message": "not a list"}', fetched_at=later),
    ]
    write_batch(raw, "github", rows, "later")
    core = build_core(sample_catalogue(), latest_responses(raw), archive=scan_archive(raw))
    assert _pkg(core, "alpha")["repo_watchers"] == 130
    kinds = core["core.crawl_errors"].filter(pl.col("package_id") == 1)
    assert sorted(kinds["request_key"].to_list()) == ["github:commits:acme/alpha", "github:contributors:acme/alpha"]
    assert set(kinds["kind"]) == {"malformed"}


def test_empty_archive(tmp_path):
    core = build_core(sample_catalogue(), latest_responses(tmp_path / "raw"))
    assert core["core.packages"].height == 9
    assert core["core.packages"]["repo_watchers"].to_list() == [0] * 9
    assert core["core.commit_weeks"].is_empty()


def test_sample_has_every_source():
    assert set(sample_responses()) == {"github", "pypi", "gitlab", "bitbucket", "codeberg", "pypistats"}


def test_streaming_archive_path_matches_latest_responses_path(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    write_batch(raw, "github", [
        RawResponse("github:contributors:acme/alpha", "github", "contributors", "github:acme/alpha", "/x", 200,
                    "not json at all", fetched_at=later),
        RawResponse("github:participation:acme/alpha", "github", "participation", "github:acme/alpha", "/x", 202,
                    None, error_kind="computing", fetched_at=later),
    ], "later")
    write_batch(raw, "gitlab", [
        RawResponse("gitlab:gitlab_contributors:grp/delta", "gitlab", "gitlab_contributors", "gitlab:grp/delta",
                    "/x", 200, '[{"name": "Dee", "email": "d@example.org", "commits": 3}]', fetched_at=later),
    ], "later")
    write_batch(raw, "codeberg", [
        RawResponse("codeberg:codeberg_repo:cb/theta", "codeberg", "codeberg_repo", "codeberg:cb/theta", "/x", 200,
                    '{"full_name": "cb/Theta2", "stars_count": 18, "description": null}', fetched_at=later),
        RawResponse("codeberg:codeberg_commits:cb/theta", "codeberg", "codeberg_commits", "codeberg:cb/theta",
                    "/x", 200, "[]", fetched_at=later),
    ], "later")
    streamed = _built_both_ways(raw)
    errors = streamed["core.crawl_errors"].filter(pl.col("package_id") == 1)
    assert dict(errors.select("request_key", "kind").iter_rows()) == {
        "github:contributors:acme/alpha": "malformed",
        "github:participation:acme/alpha": "computing",
    }
    assert _pkg(streamed, "alpha")["is_stale"]  # participation still computing: the old weeks are kept
    assert streamed["core.commit_weeks"].filter(pl.col("package_id") == 1).height == 52
    assert streamed["core.participants"].filter(pl.col("package_id") == 1).is_empty()  # malformed: dropped
    assert streamed["core.crawl_errors"].filter((pl.col("package_id") == 4)
                                                & (pl.col("source") == "gitlab")).is_empty()  # GitLab names: ignored
    theta = _pkg(streamed, "theta")
    assert (theta["repo_watchers"], theta["repo_description"], theta["canonical_repo"]) == (18, "", "cb/Theta2")
    assert theta["last_updated"] is None  # no commits in the newest body


def test_an_empty_repository_is_an_answer_not_an_error(tmp_path):
    """409 "Git Repository is empty" on commits is archived with no error kind: no crawl error."""
    raw = tmp_path / "raw"
    write_sample(raw)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    write_batch(raw, "codeberg", [
        RawResponse("codeberg:codeberg_commits:cb/theta", "codeberg", "codeberg_commits", "codeberg:cb/theta",
                    "/repos/cb/theta/commits", 409, "[]", fetched_at=later),
    ], "later")
    core = build_core(sample_catalogue(), latest_responses(raw), archive=scan_archive(raw))
    assert core["core.crawl_errors"].filter(pl.col("package_id") == 8).is_empty()


def test_bots_are_flagged_by_type_suffix_and_known_account():
    from pipelines.sources.github import read_contributors
    from pipelines.sources.reading import KNOWN_BOTS

    logins = [
        ("alice", "User", False),
        ("dependabot-preview[bot]", "Bot", True),  # GitHub App: [bot] suffix
        ("Pre-Commit-CI[bot]", "User", True),  # the suffix in any case
        ("my-release-app", "Bot", True),  # GitHub type Bot, no [bot] suffix
        ("codecov-io", "User", True),  # a known bot account without either
        ("allcontributors", "User", True),
        ("renovate-bot", "User", True),  # "-bot" suffix
        ("translations-bot", "User", True),
        ("abbot", "User", False),  # a human whose name merely ends in "bot"
        ("robot", "User", False),
        ("botanist", "User", False),
    ]
    assert {"codecov-io", "allcontributors", "dependabot", "pre-commit-ci", "pyup-bot"} <= KNOWN_BOTS
    doc = [{"login": login, "type": kind, "contributions": 1} for login, kind, _ in logins]
    frame = pl.DataFrame({"request_key": ["k"], "subject": ["github:a/b"], "good_fetched_at": [T0], "doc": [doc]})
    people = read_contributors(frame)
    assert dict(zip(people["login"], people["is_bot"], strict=True)) == {login: bot for login, _, bot in logins}


def test_pypi_project_status_and_classifiers(core):
    alpha, gamma, delta, zeta, beta = (_pkg(core, s) for s in ("alpha", "gamma", "delta", "zeta", "beta"))
    # no project-status in the Simple JSON (an index before API 1.4): active, per PEP 792
    assert (alpha["pypi_status"], alpha["pypi_status_reason"]) == ("active", None)
    assert alpha["pypi_requires_python"] == ">=3.10"
    assert alpha["python_versions"] == ["3.10", "3.12"]  # numeric order; the bare ":: 3" is left out
    assert alpha["django_versions"] == ["4.2", "5.0"]
    assert "Framework :: Django" in alpha["pypi_classifiers"] and not alpha["pypi_inactive"]
    assert not alpha["is_deprecated"]
    # quarantined: the JSON API 404s, the Simple API still answers with the status
    assert gamma["pypi_status"] == "quarantined" and gamma["pypi_version"] is None
    assert gamma["pypi_status_reason"].startswith("Quarantined")
    assert gamma["pypi_classifiers"] is None and not gamma["is_deprecated"]
    # Development Status :: 7 - Inactive
    assert delta["pypi_inactive"] and delta["is_deprecated"] and not delta["is_archived"]
    assert delta["django_versions"] == ["1.11"] and delta["python_versions"] == []
    # archived on PyPI (and its repository is archived too)
    assert (zeta["pypi_status"], zeta["pypi_status_reason"]) == ("archived", "The maintainers archived this project.")
    assert zeta["is_deprecated"] and zeta["pypi_classifiers"] == []
    # not on PyPI
    assert beta["pypi_status"] is None and beta["python_versions"] is None and not beta["is_deprecated"]


def test_pypi_archived_alone_is_a_deprecation_and_odd_simple_bodies_are_handled(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    write_batch(raw, "pypi", [
        RawResponse("pypi:simple:alpha", "pypi", "pypi_simple", "pypi:alpha", "/simple/alpha/", 200,
                    '{"meta": {"api-version": "1.4"}, "name": "alpha", "files": [], '
                    '"project-status": {"status": "Deprecated", "reason": "  "}}', fetched_at=later),
        RawResponse("pypi:simple:delta", "pypi", "pypi_simple", "pypi:delta", "/simple/delta/", 200,
                    '{"meta": {"api-version": "1.4"}, "files": []}', fetched_at=later),
        RawResponse("pypi:simple:zeta", "pypi", "pypi_simple", "pypi:zeta", "/simple/zeta/", 200,
                    "<html>not json</html>", fetched_at=later),
    ], "later")
    core = _built_both_ways(raw)
    alpha = _pkg(core, "alpha")
    assert (alpha["pypi_status"], alpha["pypi_status_reason"], alpha["is_deprecated"]) == ("deprecated", None, True)
    assert not alpha["is_archived"]  # the repository is not archived; is_archived keeps its meaning
    errors = dict(core["core.crawl_errors"].filter(pl.col("request_key").str.starts_with("pypi:simple:"))
                  .select("request_key", "kind").iter_rows())
    assert errors == {"pypi:simple:delta": "malformed", "pypi:simple:zeta": "malformed"}
    assert _pkg(core, "delta")["pypi_status"] is None  # the body had no name: not an answer


def test_a_renamed_repository_is_an_informational_crawl_error(core):
    notices = core["core.crawl_errors"].filter(pl.col("kind") == "renamed")
    assert notices.height == 1
    row = notices.row(0, named=True)
    assert row["package_id"] == 3 and row["source"] == "github" and row["severity"] == "info"
    assert row["request_key"] == "catalogue:repo_url:3"
    assert row["message"] == "catalogue URL points at old/gamma; the repository is now new/gamma-ng"
    assert (row["http_status"], row["attempts"]) == (None, 0)
    assert row["first_seen"] == row["last_seen"] == T0  # when the body showing the new name was fetched
    # everything else is a failure; counting severity = 'error' leaves the notice out
    others = core["core.crawl_errors"].filter(pl.col("kind") != "renamed")
    assert set(others["severity"]) == {"error"}
    # the catalogue's repo_url is kept as given, the data comes from the renamed repository
    assert _pkg(core, "gamma")["repo_url"] == "https://github.com/old/gamma"


def test_a_pypi_url_problem_is_a_bad_entry_too():
    catalogue = sample_catalogue()
    catalogue["packages"] = catalogue["packages"].with_columns(
        pl.when(pl.col("id").is_in([5, 7])).then(pl.lit("not_pypi_host: http://127.0.0.1/pypi/x/json"))
        .otherwise(None).alias("pypi_url_problem")
    )
    core = build_core(catalogue, latest_responses(Path("/nonexistent")))
    bad = core["core.crawl_errors"].filter(pl.col("kind") == "bad_entry").select("package_id", "request_key",
                                                                                  "message", "severity")
    assert bad.rows() == [
        (5, "catalogue:pypi_url:5", "not_pypi_host: http://127.0.0.1/pypi/x/json", "error"),
        (7, "catalogue:pypi_url:7", "not_pypi_host: http://127.0.0.1/pypi/x/json", "error"),
        (7, "catalogue:repo_url:7", "repo host localhost is not allowed", "error"),
    ]


def test_catalogue_usage_and_deprecation_are_carried(raw_dir):
    core = _built_both_ways(raw_dir)
    packages = core["core.packages"]
    assert dict(packages.select("slug", "usage").iter_rows()) == {
        "alpha": 42, "beta": 0, "gamma": 0, "delta": 0, "eps": 0, "zeta": 0, "eta": 0, "theta": 0, "iota": 3}
    eps = _pkg(core, "eps")
    assert eps["catalogue_deprecated"] and eps["is_deprecated"]  # the catalogue's word retires it too
    assert not eps["is_archived"] and eps["pypi_status"] is None
    assert packages.filter(pl.col("catalogue_deprecated"))["slug"].to_list() == ["eps"]
    # a catalogue frame written before the columns existed: 0 and false
    old = sample_catalogue()
    old["packages"] = old["packages"].drop("usage", "deprecated")
    built = build_core(old, latest_responses(raw_dir))
    assert set(built["core.packages"]["usage"]) == {0} and not built["core.packages"]["catalogue_deprecated"].any()
    assert not _pkg(built, "eps")["is_deprecated"]


def test_pypi_vulnerabilities_count_the_latest_release_without_withdrawn_ones(raw_dir):
    core = _built_both_ways(raw_dir)
    vulns = dict(core["core.packages"].select("slug", "pypi_vulnerabilities").iter_rows())
    assert vulns == {
        "iota": 2,  # two advisories and a withdrawn one
        "alpha": 0,  # only a withdrawn one
        "delta": None, "zeta": None,  # bodies without the list: unknown
        "gamma": None,  # PyPI JSON 404
        "beta": None, "eps": None, "eta": None, "theta": None,  # not on PyPI
    }
    assert core["core.packages"].schema["pypi_vulnerabilities"] == pl.Int32


def test_odd_vulnerability_lists_never_break_the_body(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    bodies = {
        "alpha": '{"info": {"version": "2.0"}, "releases": {}, "vulnerabilities": "oops"}',
        "delta": '{"info": {"version": "0.3"}, "releases": {}, "vulnerabilities": [null, "x", 3, {"id": "A"},'
                 ' {"id": "B", "withdrawn": null}, {"id": "C", "withdrawn": "2026-01-01T00:00:00Z"}, {"aliases": []}]}',
        "zeta": '{"info": {"version": "1.0"}, "releases": {}, "vulnerabilities": []}',
    }
    write_batch(raw, "pypi", [
        RawResponse(f"pypi:json:{name}", "pypi", "pypi_json", f"pypi:{name}", f"/pypi/{name}/json", 200, body,
                    fetched_at=later) for name, body in bodies.items()], "later")
    core = _built_both_ways(raw)
    vulns = dict(core["core.packages"].select("slug", "pypi_vulnerabilities").iter_rows())
    assert (vulns["alpha"], vulns["delta"], vulns["zeta"]) == (None, 2, 0)  # only entries with an id count
    assert _pkg(core, "alpha")["pypi_version"] == "2.0"  # the rest of the body is read
    assert core["core.crawl_errors"].filter(pl.col("request_key").str.starts_with("pypi:json:")
                                            & (pl.col("kind") == "malformed")).is_empty()


def test_repository_creation_time_from_every_host(raw_dir):
    core = _built_both_ways(raw_dir)
    created = dict(core["core.repositories"].select("repo_key", "created_at").iter_rows())
    assert created == {
        "github:acme/alpha": datetime(2015, 3, 4, 5, 6, 7, tzinfo=UTC),  # REST created_at
        "github:acme/iota": datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        "github:old/gamma": None,  # the body has none
        "github:z/zeta": datetime(2019, 7, 1, 12, tzinfo=UTC),  # GraphQL createdAt
        "gitlab:grp/delta": datetime(2018, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "bitbucket:ws/eps": datetime(2012, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),  # created_on
        "codeberg:cb/theta": datetime(2023, 3, 3, 9, tzinfo=UTC),  # +01:00
    }
    assert core["core.repositories"].schema["created_at"] == pl.Datetime("us", "UTC")


def test_downloads(core):
    """pypistats: last_month -> pypi_downloads (null when unknown), the without_mirrors days -> the last 180
    days up to the newest one; a 404 is a `not_found` crawl error of the package, not a fetch."""
    alpha = _pkg(core, "alpha")
    assert alpha["pypi_downloads"] == sum(500 + i for i in range(170, 200))
    assert _pkg(core, "delta")["pypi_downloads"] is None and _pkg(core, "gamma")["pypi_downloads"] is None
    daily = core["core.downloads_daily"]
    assert set(daily["package_id"]) == {alpha["id"]}  # packages sharing alpha's PyPI name would share it
    days = daily.filter(pl.col("package_id") == alpha["id"])
    assert days.height == 180 and days["day"].max() == date(2026, 10, 31)
    assert days["day"].min() == date(2026, 5, 5) and days["downloads"].to_list() == [500 + i for i in range(20, 200)]
    assert days.tail(30)["downloads"].sum() == alpha["pypi_downloads"]  # with_mirrors left out
    delta = _pkg(core, "delta")
    errors = core["core.crawl_errors"].filter(pl.col("request_key") == "pypistats:recent:delta")
    assert errors.select("package_id", "source", "kind", "http_status").rows() == [
        (delta["id"], "pypistats", "not_found", 404)]
    assert not delta["is_stale"]


def test_downloads_streamed_and_in_memory_agree_and_bad_bodies_are_malformed(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    write_batch(raw, "pypistats", [
        RawResponse("pypistats:recent:zeta", "pypistats", "pypistats_recent", "pypistats:zeta", "/x", 200,
                    '{"package": "zeta", "type": "recent_downloads"}', fetched_at=T0),
        RawResponse("pypistats:overall:zeta", "pypistats", "pypistats_overall", "pypistats:zeta", "/x", 200,
                    '{"package": "zeta"}', fetched_at=T0),
    ], "later")
    both = _built_both_ways(raw)
    assert _pkg(both, "zeta")["pypi_downloads"] is None
    kinds = both["core.crawl_errors"].filter(pl.col("source") == "pypistats").select("request_key", "kind").rows()
    assert ("pypistats:overall:zeta", "malformed") in kinds and ("pypistats:recent:zeta", "malformed") in kinds
    assert both["core.downloads_daily"].height == 180


def _theta_gone(raw: Path, at: datetime, run: str) -> None:
    write_batch(raw, "codeberg", [
        RawResponse("codeberg:codeberg_repo:cb/theta", "codeberg", "codeberg_repo", "codeberg:cb/theta",
                    "/repos/cb/theta", 404, '{"message": "Not Found"}', error_kind="gone",
                    error="HTTP 404: not found or gone", fetched_at=at),
    ], run)


def test_gone_is_a_fact_only_once_seen_on_refreshes_a_day_apart(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    first = datetime(2026, 11, 25, 6, tzinfo=UTC)
    _theta_gone(raw, first, "first")
    row = lambda core: core["core.crawl_errors"].filter(  # noqa: E731
        pl.col("request_key") == "codeberg:codeberg_repo:cb/theta").row(0, named=True)
    core = _built_both_ways(raw)
    assert (row(core)["kind"], row(core)["severity"]) == ("gone", "info")  # the first sighting: a notice
    assert "unconfirmed" in row(core)["message"]
    theta = _pkg(core, "theta")
    assert theta["is_stale"] and theta["repo_watchers"] == 17  # the last good data stays, marked stale
    _theta_gone(raw, first.replace(hour=20), "same-day")
    assert row(_built_both_ways(raw))["severity"] == "info"  # the same day again: still unconfirmed
    _theta_gone(raw, datetime(2026, 11, 26, 7, tzinfo=UTC), "next-day")
    core = _built_both_ways(raw)
    assert (row(core)["kind"], row(core)["severity"]) == ("gone", "error")  # confirmed a day later


def _endpoint_row(raw: Path, at: datetime, *, failing: bool) -> None:
    write_batch(raw, "github", [RawResponse(
        "github:endpoint:graphql_repo", "github", "endpoint", "endpoint:github:graphql_repo", "",
        404 if failing else 200,
        '{"message": "Not Found"}' if failing else None, error_kind="endpoint" if failing else None,
        error="github endpoint graphql_repo is not working: endpoint status: HTTP 404" if failing else None,
        attempts=3 if failing else 0, fetched_at=at)], "run")


def test_endpoint_errors_come_from_the_newest_health_row_and_touch_no_package(tmp_path):
    raw = tmp_path / "raw"
    write_sample(raw)
    healthy = _built_both_ways(raw)
    assert healthy["core.endpoint_errors"].is_empty()
    _endpoint_row(raw, datetime(2026, 11, 25, tzinfo=UTC), failing=True)
    core = _built_both_ways(raw)
    [error] = core["core.endpoint_errors"].iter_rows(named=True)
    assert (error["source"], error["endpoint"], error["kind"], error["http_status"], error["requests"]) == (
        "github", "graphql_repo", "endpoint", 404, 3)
    for name in ("core.packages", "core.crawl_errors", "core.repositories"):
        assert core[name].equals(healthy[name]), name
    _endpoint_row(raw, datetime(2026, 11, 26, tzinfo=UTC), failing=False)  # it answers again
    assert _built_both_ways(raw)["core.endpoint_errors"].is_empty()
