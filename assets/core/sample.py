"""A small hand-written catalogue and raw archive covering the core transform's edge cases.

Used by the tests (core, warehouse, Dagster) and handy in a notebook: `write_sample(raw_dir)` writes
the archive batches, `sample_catalogue()` gives the catalogue frames as `build_catalogue` would.

Packages:
 1 alpha   github:acme/alpha   pypi alpha   healthy; a bot and an anonymous contributor; docs from
                                             project_urls "Documentation"; classifiers; Simple JSON
                                             without project-status (= active)
 2 beta    github:acme/alpha   (no pypi)    shares alpha's repository
 3 gamma   github:old/gamma    pypi gamma   renamed to new/gamma-ng (REST full_name); repo request
                                             failed after a good fetch -> stale; pypi_version null
                                             (PyPI JSON 404: quarantined per the Simple API)
 4 delta   gitlab:grp/delta    pypi delta   GitLab project + commits; docs from info.docs_url;
                                             "Development Status :: 7 - Inactive"
 5 eps     bitbucket:ws/eps    (no pypi)    Bitbucket repository + commits
 6 zeta    github:z/zeta       pypi zeta    malformed participation body; GraphQL repo node; archived
                                             (repository and PyPI project-status)
 7 eta     (bad repo url)      (no pypi)    repo_url_problem set; not crawled
 8 theta   codeberg:cb/theta   (no pypi)    Codeberg (Forgejo) repository + commits (committer date +01:00)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl

from pipelines.sources.facts import UTC_US
from warehouse.archive import RawResponse, write_batch

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
T1 = T0 + timedelta(days=1)


def sample_catalogue() -> dict[str, pl.DataFrame]:
    created = datetime(2020, 1, 1, tzinfo=UTC)
    categories = pl.DataFrame(
        {
            "id": [1, 2],
            "title": ["App", "Framework"],
            "slug": ["apps", "frameworks"],
            "description": ["Apps", "Frameworks"],
            "title_plural": ["Apps", "Frameworks"],
            "show_pypi": [True, True],
            "created": [created] * 2,
            "modified": [created] * 2,
        },
        schema_overrides={"created": UTC_US, "modified": UTC_US},
    )
    grids = pl.DataFrame(
        {
            "id": [10, 11],
            "title": ["Forms", "Auth"],
            "slug": ["forms", "auth"],
            "description": ["", ""],
            "is_locked": [False, False],
            "header": [False, True],
            "created": [created] * 2,
            "modified": [created] * 2,
        },
        schema_overrides={"created": UTC_US, "modified": UTC_US},
    )
    # (10, 99): unknown package; (12, 1): unknown grid -> both dropped from core
    grid_packages = pl.DataFrame({"grid_id": [10, 10, 11, 10, 12], "package_id": [1, 3, 1, 99, 1]})
    rows = [
        (1, "alpha", "github", "acme", "alpha", "github:acme/alpha", "alpha", None),
        (2, "beta", "github", "acme", "alpha", "github:acme/alpha", None, None),
        (3, "gamma", "github", "old", "gamma", "github:old/gamma", "gamma", None),
        (4, "delta", "gitlab", "grp", "delta", "gitlab:grp/delta", "delta", None),
        (5, "eps", "bitbucket", "ws", "eps", "bitbucket:ws/eps", None, None),
        (6, "zeta", "github", "z", "zeta", "github:z/zeta", "zeta", None),
        (7, "eta", None, None, None, None, None, "repo host localhost is not allowed"),
        (8, "theta", "codeberg", "cb", "theta", "codeberg:cb/theta", None, None),
    ]
    packages = pl.DataFrame(
        {
            "id": [r[0] for r in rows],
            "title": [r[1].title() for r in rows],
            "slug": [r[1] for r in rows],
            "category_id": [1, 1, 2, 1, 1, 2, 1, 1],
            "repo_url": [
                f"https://{r[2]}.{'org' if r[2] in ('bitbucket', 'codeberg') else 'com'}/{r[3]}/{r[4]}" if r[2] else ""
                for r in rows
            ],
            "pypi_url": [f"https://pypi.org/project/{r[6]}/" if r[6] else "" for r in rows],
            "documentation_url": [None, None, "https://gamma.example/docs", None, None, None, None, None],
            "created": [created] * len(rows),
            "modified": [created] * len(rows),
            "repo_host": [r[2] for r in rows],
            "repo_owner": [r[3] for r in rows],
            "repo_name": [r[4] for r in rows],
            "repo_key": [r[5] for r in rows],
            "pypi_name": [r[6] for r in rows],
            "repo_url_problem": [r[7] for r in rows],
        },
        schema_overrides={"created": UTC_US, "modified": UTC_US, "documentation_url": pl.String,
                          "repo_url_problem": pl.String},
    )
    rejects = pl.DataFrame(
        {"kind": ["package"], "source_id": [None], "slug": [""], "reason": ["missing slug"], "record": ["{}"]},
        schema={"kind": pl.String, "source_id": pl.Int64, "slug": pl.String, "reason": pl.String,
                "record": pl.String},
    )
    return {
        "categories": categories,
        "grids": grids,
        "grid_packages": grid_packages,
        "packages": packages,
        "rejects": rejects,
    }


def _j(value: object) -> str:
    return orjson.dumps(value).decode()


def rest_repo(full_name: str, stars: int, *, archived: bool = False) -> dict:
    return {
        "id": 1,
        "name": full_name.split("/")[1],
        "full_name": full_name,
        "owner": {"login": full_name.split("/")[0], "type": "Organization"},
        "description": f"{full_name} description",
        "fork": False,
        "homepage": "https://example.org",
        "stargazers_count": stars,
        "watchers_count": stars,
        "forks_count": stars // 10,
        "subscribers_count": 7,
        "open_issues_count": 3,
        "archived": archived,
        "default_branch": "main",
        "pushed_at": "2026-11-19T10:00:00Z",
        "license": {"key": "mit", "spdx_id": "MIT"},
        "topics": ["django", "forms"],
    }


def participation(seed: int) -> dict:
    return {"all": [(seed + i) % 5 for i in range(52)], "owner": [0] * 52}


def _gh(endpoint: str, repo: str, body: object, *, at: datetime = T0, status: int = 200,
        error_kind: str | None = None, raw_body: str | None = None) -> RawResponse:
    return RawResponse(
        request_key=f"github:{endpoint}:{repo}",
        source="github",
        endpoint=endpoint,
        subject=f"github:{repo}",
        url=f"/repos/{repo}/{endpoint}",
        status=status,
        body=raw_body if raw_body is not None else (None if body is None else _j(body)),
        error_kind=error_kind,
        error=None if error_kind is None else f"{error_kind} while fetching",
        fetched_at=at,
    )


def _simple(name: str, status: dict | None, files: list[dict] | None = None) -> RawResponse:
    body: dict[str, object] = {"meta": {"api-version": "1.4" if status else "1.1", "_last-serial": 1},
                               "name": name, "versions": [], "files": files or []}
    if status is not None:
        body["project-status"] = status
    return RawResponse(f"pypi:simple:{name}", "pypi", "pypi_simple", f"pypi:{name}", f"/simple/{name}/", 200,
                       _j(body), fetched_at=T0)


def sample_responses() -> dict[str, list[RawResponse]]:
    commit = [{"sha": "abc", "commit": {"committer": {"date": "2026-11-18T09:30:00Z", "name": "x"}}}]
    github = [
        _gh("repo", "acme/alpha", rest_repo("acme/alpha", 120)),
        _gh("participation", "acme/alpha", participation(1)),
        _gh(
            "contributors",
            "acme/alpha",
            [
                {"login": "alice", "type": "User", "contributions": 50},
                {"login": "dependabot[bot]", "type": "Bot", "contributions": 20},
                {"type": "Anonymous", "email": "x@example.org", "contributions": 9},
                {"login": "pre-commit-ci", "type": "User", "contributions": 4},
                {"login": "bob", "type": "User", "contributions": 1},
            ],
        ),
        _gh("commits", "acme/alpha", commit),
        # gamma: renamed; first good, then a failing attempt (twice) -> stale
        _gh("repo", "old/gamma", rest_repo("new/gamma-ng", 5)),
        _gh("repo", "old/gamma", None, at=T1, status=502, error_kind="transient"),
        _gh("repo", "old/gamma", None, at=T1 + timedelta(hours=1), status=502, error_kind="transient"),
        _gh("participation", "old/gamma", participation(2)),
        _gh("contributors", "old/gamma", []),
        _gh("commits", "old/gamma", []),
        # zeta: GraphQL node, malformed participation
        _gh(
            "graphql_repo",
            "z/zeta",
            {
                "nameWithOwner": "z/zeta",
                "stargazerCount": 42,
                "forkCount": 4,
                "watchers": {"totalCount": 2},
                "issues": {"totalCount": 1},
                "description": "Zeta",
                "homepageUrl": None,
                "isArchived": True,
                "isFork": False,
                "pushedAt": "2026-01-01T00:00:00Z",
                "licenseInfo": None,
                "repositoryTopics": {"nodes": [{"topic": {"name": "django"}}]},
                "defaultBranchRef": {"name": "master", "target": {"committedDate": "2025-12-31T23:00:00Z"}},
                "latestRelease": {"tagName": "v1.0"},
            },
        ),
        _gh("participation", "z/zeta", None, raw_body='{"all": "not a list"'),
        _gh("contributors", "z/zeta", [{"login": "zed", "type": "User", "contributions": 3}]),
    ]
    pypi_alpha = {
        "info": {
            "version": "2.0",
            "project_urls": {"Homepage": "https://x", "documentation": "https://alpha.readthedocs.io"},
            "docs_url": None,
            "requires_python": ">=3.10",
            "classifiers": [
                "Development Status :: 5 - Production/Stable",
                "Framework :: Django",
                "Framework :: Django :: 5.0",
                "Framework :: Django :: 4.2",
                "Programming Language :: Python :: 3",
                "Programming Language :: Python :: 3.12",
                "Programming Language :: Python :: 3.10",
            ],
        },
        "releases": {
            "1.0": [{"upload_time_iso_8601": "2025-01-01T00:00:00.000000Z", "yanked": False,
                     "requires_python": ">=3.8"}],
            "2.0b1": [{"upload_time_iso_8601": "2026-01-01T00:00:00.123456Z", "yanked": True,
                       "requires_python": None}],
            "2.0": [
                {"upload_time_iso_8601": "2026-02-01T00:00:01Z", "yanked": False, "requires_python": ">=3.10"},
                {"upload_time_iso_8601": "2026-02-01T00:00:00Z", "yanked": False, "requires_python": ">=3.10"},
            ],
            "0.1": [],
        },
    }
    pypi_delta = {"info": {"version": "0.3", "project_urls": None, "docs_url": "https://delta.docs",
                           "classifiers": ["Development Status :: 7 - Inactive", "Framework :: Django :: 1.11"]},
                  "releases": {"0.3": []}}
    pypi_zeta = {"info": {"version": "1.0", "project_urls": {"Docs": "https://zeta.docs"}}, "releases": {}}
    pypi = [
        RawResponse("pypi:json:alpha", "pypi", "pypi_json", "pypi:alpha", "/pypi/alpha/json", 200, _j(pypi_alpha),
                    fetched_at=T0),
        RawResponse("pypi:json:gamma", "pypi", "pypi_json", "pypi:gamma", "/pypi/gamma/json", 404, None,
                    error_kind="not_found", error="not on PyPI", fetched_at=T0),
        RawResponse("pypi:json:delta", "pypi", "pypi_json", "pypi:delta", "/pypi/delta/json", 200, _j(pypi_delta),
                    fetched_at=T0),
        RawResponse("pypi:json:zeta", "pypi", "pypi_json", "pypi:zeta", "/pypi/zeta/json", 200, _j(pypi_zeta),
                    fetched_at=T0),
        # PEP 691 Simple JSON with the PEP 792 project status (alpha: an index without the key = active)
        _simple("alpha", None, files=[{"filename": "alpha-2.0.tar.gz", "url": "https://files/alpha-2.0.tar.gz",
                                       "hashes": {"sha256": "0" * 64}, "requires-python": ">=3.10",
                                       "upload-time": "2026-02-01T00:00:00Z", "yanked": False}]),
        _simple("gamma", {"status": "quarantined", "reason": "Quarantined by PyPI administrators pending review."}),
        _simple("delta", {"status": "active"}),
        _simple("zeta", {"status": "archived", "reason": "The maintainers archived this project."}),
    ]
    gitlab = [
        RawResponse("gitlab:gitlab_project:grp/delta", "gitlab", "gitlab_project", "gitlab:grp/delta",
                    "/projects/grp%2Fdelta", 200,
                    _j({"path_with_namespace": "grp/delta", "star_count": 9, "forks_count": 2,
                        "description": "Delta", "web_url": "https://gitlab.com/grp/delta", "archived": False,
                        "default_branch": "main", "last_activity_at": "2026-11-01T00:00:00.000Z",
                        "open_issues_count": 1, "topics": ["x"]}),
                    fetched_at=T0),
        RawResponse("gitlab:gitlab_commits:grp/delta", "gitlab", "gitlab_commits", "gitlab:grp/delta",
                    "/projects/grp%2Fdelta/repository/commits", 200,
                    _j([{"id": "1", "committed_date": "2026-10-30T12:00:00.000+02:00"}]), fetched_at=T0),
    ]
    bitbucket = [
        RawResponse("bitbucket:bitbucket_repo:ws/eps", "bitbucket", "bitbucket_repo", "bitbucket:ws/eps",
                    "/repositories/ws/eps", 200,
                    _j({"full_name": "ws/eps", "description": "Eps", "website": "",
                        "mainbranch": {"name": "default"}, "updated_on": "2026-09-01T00:00:00.000000+00:00"}),
                    fetched_at=T0),
        RawResponse("bitbucket:bitbucket_commits:ws/eps", "bitbucket", "bitbucket_commits", "bitbucket:ws/eps",
                    "/repositories/ws/eps/commits", 200,
                    _j({"values": [{"hash": "h", "date": "2026-08-31T10:00:00+00:00"}]}), fetched_at=T0),
    ]
    codeberg = [
        RawResponse("codeberg:codeberg_repo:cb/theta", "codeberg", "codeberg_repo", "codeberg:cb/theta",
                    "/repos/cb/theta", 200,
                    _j({"id": 31, "full_name": "cb/theta", "description": "Theta", "empty": False, "fork": False,
                        "website": "https://theta.example", "stars_count": 17, "forks_count": 3,
                        "watchers_count": 4, "open_issues_count": 2, "default_branch": "main", "archived": False,
                        "updated_at": "2026-11-02T08:00:00+01:00", "topics": ["django", "forgejo"]}),
                    etag='W/"theta"', fetched_at=T0),
        RawResponse("codeberg:codeberg_commits:cb/theta", "codeberg", "codeberg_commits", "codeberg:cb/theta",
                    "/repos/cb/theta/commits?limit=50", 200,
                    _j([{"sha": "t2", "created": "2026-11-02T07:45:00+01:00",
                         "commit": {"committer": {"name": "T", "date": "2026-11-02T07:45:00+01:00"}}},
                        {"sha": "t1", "created": "2025-01-01T00:00:00+01:00",
                         "commit": {"committer": {"name": "T", "date": "2025-01-01T00:00:00+01:00"}}}]),
                    fetched_at=T0),
    ]
    return {"github": github, "pypi": pypi, "gitlab": gitlab, "bitbucket": bitbucket, "codeberg": codeberg}


def write_sample(raw_dir: Path, run_id: str = "sample") -> None:
    for source, rows in sample_responses().items():
        write_batch(raw_dir, source, rows, run_id)
