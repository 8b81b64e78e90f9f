"""A simulator-shaped raw archive and catalogue for N packages (for the transform benchmark).

Bodies have the full upstream shape (the simulator's GitHub repo JSON with its ~50 URL fields and
owner object, contributor user objects, commit objects, PyPI JSON with files per release and trove
classifiers, PEP 691 Simple JSON with every file and the PEP 792 project status), so the parsing
cost is realistic. Every package has a GitHub repository (so 52 participation weeks each,
~5.2M commit-week rows at 100k) with 15 contributors on average (~1.5M participant rows); 80% are on
PyPI. Deterministic for a given N and seed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl

from simulator.github import user_json as _sim_user_json
from simulator.model import gh_time
from warehouse.archive import RawResponse, write_batch

API = "http://127.0.0.1:8000/api/v3"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def user_json(login: str, uid: int, kind: str = "User") -> dict:
    """The simulator's GitHub user object, so bodies have exactly the simulated shape."""
    return _sim_user_json(API, login, uid, kind)


def repo_json(i: int, owner: str, name: str, stars: int, *, archived: bool) -> dict:
    full = f"{owner}/{name}"
    r = f"{API}/repos/{full}"
    url_fields = {
        k: f"{r}/{k.removesuffix('_url')}"
        for k in [
            "forks_url", "keys_url", "collaborators_url", "teams_url", "hooks_url", "issue_events_url",
            "events_url", "assignees_url", "branches_url", "tags_url", "blobs_url", "git_tags_url",
            "git_refs_url", "trees_url", "statuses_url", "languages_url", "stargazers_url",
            "contributors_url", "subscribers_url", "subscription_url", "commits_url", "git_commits_url",
            "comments_url", "issue_comment_url", "contents_url", "compare_url", "merges_url", "archive_url",
            "downloads_url", "issues_url", "pulls_url", "milestones_url", "notifications_url", "labels_url",
            "releases_url", "deployments_url",
        ]
    }
    return {
        "id": 1000 + i, "node_id": f"R_{i:08d}", "name": name, "full_name": full, "private": False,
        "owner": user_json(owner, 50_000 + i % 5000, "Organization"),
        "html_url": f"https://github.com/{full}", "description": f"Package {i}: a reusable Django app",
        "fork": i % 50 == 0, "url": r, **url_fields,
        "created_at": "2015-03-01T10:00:00Z", "updated_at": gh_time(NOW - timedelta(days=i % 90)),
        "pushed_at": gh_time(NOW - timedelta(days=i % 400)),
        "git_url": f"git://github.com/{full}.git", "ssh_url": f"git@github.com:{full}.git",
        "clone_url": f"https://github.com/{full}.git", "svn_url": f"https://github.com/{full}",
        "homepage": f"https://{name}.readthedocs.io" if i % 3 else None, "size": 20 + i % 9000,
        "stargazers_count": stars, "watchers_count": stars, "language": "Python", "has_issues": True,
        "has_projects": True, "has_downloads": True, "has_wiki": True, "has_pages": False,
        "has_discussions": False, "forks_count": stars // 7, "mirror_url": None, "archived": archived,
        "disabled": False, "open_issues_count": i % 40,
        "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT", "url": f"{API}/licenses/mit",
                    "node_id": "L_1"},
        "allow_forking": True, "is_template": False, "web_commit_signoff_required": False,
        "topics": ["django", "python"][: i % 3], "visibility": "public", "forks": stars // 7,
        "open_issues": i % 40, "watchers": stars, "default_branch": "main", "temp_clone_token": None,
        "network_count": stars // 7, "subscribers_count": 3 + i % 60,
    }


def commit_json(owner: str, name: str, sha: str, date: datetime) -> dict:
    r = f"{API}/repos/{owner}/{name}"
    d = gh_time(date)
    return {
        "sha": sha, "node_id": f"C_{sha[:10]}",
        "commit": {
            "author": {"name": "Dev", "email": "dev@users.noreply.github.com", "date": d},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "date": d},
            "message": "Fix things", "tree": {"sha": sha[::-1], "url": f"{r}/git/trees/{sha[::-1]}"},
            "url": f"{r}/git/commits/{sha}", "comment_count": 0,
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
        },
        "url": f"{r}/commits/{sha}", "html_url": f"https://github.com/{owner}/{name}/commit/{sha}",
        "comments_url": f"{r}/commits/{sha}/comments", "author": user_json("dev", 7),
        "committer": user_json("web-flow", 19864447), "parents": [],
    }


PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
DJANGOS = ("3.2", "4.0", "4.1", "4.2", "5.0", "5.1", "5.2")


def classifiers(i: int) -> list[str]:
    """Trove classifiers like real Django packages list them (a few Inactive, version ranges)."""
    status = "Development Status :: 7 - Inactive" if i % 17 == 0 else "Development Status :: 5 - Production/Stable"
    pythons = PYTHONS[i % 3: i % 3 + 2 + i % 3]
    djangos = DJANGOS[i % 4: i % 4 + 1 + i % 4]
    return sorted([
        status, "Environment :: Web Environment", "Framework :: Django",
        *(f"Framework :: Django :: {v}" for v in djangos), "Intended Audience :: Developers",
        "License :: OSI Approved :: MIT License", "Operating System :: OS Independent",
        "Programming Language :: Python", "Programming Language :: Python :: 3",
        *(f"Programming Language :: Python :: {v}" for v in pythons),
        "Programming Language :: Python :: 3 :: Only",
    ])


def pypi_simple(name: str, i: int, project: dict) -> dict:
    """PEP 691 Simple JSON (API 1.4) for the same releases, with the PEP 792 project status."""
    status = {"status": "active"}
    if i % 53 == 0:
        status = {"status": "archived", "reason": "The maintainers archived this project."}
    elif i % 131 == 0:
        status = {"status": "deprecated", "reason": f"Use django-pkg-{i + 1} instead."}
    files = [
        {"filename": f["filename"], "url": f["url"], "hashes": {"sha256": f["digests"]["sha256"]},
         "requires-python": f["requires_python"], "core-metadata": False, "data-dist-info-metadata": False,
         "size": f["size"], "upload-time": f["upload_time_iso_8601"], "yanked": bool(f["yanked"])}
        for files in project["releases"].values() for f in files
    ]
    return {"meta": {"api-version": "1.4", "_last-serial": i}, "name": name,
            "versions": list(project["releases"]), "files": files, "project-status": status}


def pypi_json(name: str, i: int, releases: int) -> dict:
    rel = {}
    for k in range(releases):
        version = f"{k // 3}.{k % 3}.0" if k % 7 else f"{k // 3}.{k % 3}.0rc1"
        when = NOW - timedelta(days=40 * (releases - k) + i % 30)
        rel[version] = [
            {
                "comment_text": "", "digests": {"md5": "0" * 32, "sha256": "1" * 64}, "downloads": -1,
                "filename": f"{name}-{version}{ext}", "has_sig": False, "md5_digest": "0" * 32,
                "packagetype": kind, "python_version": "py3" if kind == "bdist_wheel" else "source",
                "requires_python": ">=3.9", "size": 10_000 + k,
                "upload_time": when.strftime("%Y-%m-%dT%H:%M:%S"),
                "upload_time_iso_8601": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "url": f"https://files.pythonhosted.org/packages/{name}-{version}{ext}", "yanked": k == 1,
                "yanked_reason": None,
            }
            for ext, kind in (("-py3-none-any.whl", "bdist_wheel"), (".tar.gz", "sdist"))
        ]
    last = list(rel)[-1] if rel else None
    return {
        "info": {
            "author": "Dev", "author_email": "dev@example.org", "bugtrack_url": None,
            "classifiers": classifiers(i),
            "description": f"# {name}\n\nA Django package.\n" * 5, "description_content_type": "text/markdown",
            "docs_url": None, "home_page": f"https://github.com/o/{name}", "keywords": "django",
            "license": "MIT", "name": name, "package_url": f"https://pypi.org/project/{name}/",
            "project_urls": {"Homepage": f"https://github.com/o/{name}",
                             "Documentation": f"https://{name}.readthedocs.io"} if i % 2 else None,
            "requires_python": ">=3.9", "summary": "A Django package", "version": last, "yanked": False,
        },
        "last_serial": i, "releases": rel, "urls": rel.get(last, []) if last else [], "vulnerabilities": [],
    }


def package_names(i: int) -> tuple[str, str]:
    return f"org{i % 5000}", f"django-pkg-{i}"


def catalogue(n: int) -> dict[str, pl.DataFrame]:
    created = datetime(2020, 1, 1, tzinfo=UTC)
    n_grids = max(1, n // 250)
    ids = list(range(1, n + 1))
    owners, names = zip(*(package_names(i) for i in ids), strict=True)
    pypi = [name if i % 5 else None for i, name in zip(ids, names, strict=True)]
    packages = pl.DataFrame(
        {
            "id": ids,
            "title": [f"Django Pkg {i}" for i in ids],
            "slug": list(names),
            "category_id": [1 + i % 4 for i in ids],
            "repo_url": [f"https://github.com/{o}/{m}" for o, m in zip(owners, names, strict=True)],
            "pypi_url": [f"https://pypi.org/project/{p}/" if p else "" for p in pypi],
            "documentation_url": [None] * n,
            "created": [created] * n,
            "modified": [created] * n,
            "repo_host": ["github"] * n,
            "repo_owner": list(owners),
            "repo_name": list(names),
            "repo_key": [f"github:{o}/{m}".lower() for o, m in zip(owners, names, strict=True)],
            "pypi_name": pypi,
            "repo_url_problem": [None] * n,
        },
        schema_overrides={"created": UTC_US, "modified": UTC_US, "documentation_url": pl.String,
                          "repo_url_problem": pl.String},
    )
    categories = pl.DataFrame(
        {"id": [1, 2, 3, 4], "title": ["App", "Framework", "Project", "Other"],
         "slug": ["apps", "frameworks", "projects", "other"], "description": [""] * 4,
         "title_plural": ["Apps", "Frameworks", "Projects", "Others"], "show_pypi": [True] * 4,
         "created": [created] * 4, "modified": [created] * 4},
        schema_overrides={"created": UTC_US, "modified": UTC_US},
    )
    grids = pl.DataFrame(
        {"id": list(range(1, n_grids + 1)), "title": [f"Grid {g}" for g in range(1, n_grids + 1)],
         "slug": [f"grid-{g}" for g in range(1, n_grids + 1)], "description": [""] * n_grids,
         "is_locked": [False] * n_grids, "header": [False] * n_grids, "created": [created] * n_grids,
         "modified": [created] * n_grids},
        schema_overrides={"created": UTC_US, "modified": UTC_US},
    )
    grid_packages = pl.DataFrame(
        {"grid_id": [1 + (i * 7) % n_grids for i in ids] + [1 + (i * 13) % n_grids for i in ids[::3]],
         "package_id": ids + ids[::3]}
    ).unique().sort("grid_id", "package_id")
    return {"categories": categories, "grids": grids, "grid_packages": grid_packages, "packages": packages}


def responses_for(i: int, rng: random.Random, at: datetime, generation: int = 0) -> dict[str, list[RawResponse]]:
    owner, name = package_names(i)
    full = f"{owner}/{name}".lower()
    subject = f"github:{full}"
    stars = (i * 7919) % 3000 + generation

    def gh(endpoint: str, body: object, status: int = 200) -> RawResponse:
        return RawResponse(f"github:{endpoint}:{full}", "github", endpoint, subject, f"/repos/{full}/{endpoint}",
                           status, orjson.dumps(body).decode(), fetched_at=at)

    n_people = rng.randint(1, 29)
    people = []
    for k in range(n_people):
        if k == 3 and i % 4 == 0:
            people.append({"email": "a@example.org", "name": "anon", "type": "Anonymous", "contributions": 2})
            continue
        login = "dependabot[bot]" if k == 1 and i % 3 == 0 else f"dev{(i * 31 + k) % 200_000}"
        user = user_json(login, 100 + (i * 31 + k) % 200_000, "Bot" if login.endswith("[bot]") else "User")
        user["contributions"] = max(1, 500 // (k + 1))
        people.append(user)
    weeks = [rng.randint(0, 12) if rng.random() < 0.6 else 0 for _ in range(52)]
    out = {
        "github": [
            gh("repo", repo_json(i, owner, name, stars, archived=i % 97 == 0)),
            gh("participation", {"all": weeks, "owner": [w // 2 for w in weeks]}),
            gh("contributors", people),
            gh("commits", [commit_json(owner, name, f"{i:040x}", NOW - timedelta(days=i % 400, hours=generation))]),
        ],
        "pypi": [],
    }
    if i % 5:
        project = pypi_json(name, i, 1 + i % 12)
        out["pypi"].append(
            RawResponse(f"pypi:json:{name}", "pypi", "pypi_json", f"pypi:{name}", f"/pypi/{name}/json", 200,
                        orjson.dumps(project).decode(), fetched_at=at)
        )
        out["pypi"].append(
            RawResponse(f"pypi:simple:{name}", "pypi", "pypi_simple", f"pypi:{name}", f"/simple/{name}/", 200,
                        orjson.dumps(pypi_simple(name, i, project)).decode(), fetched_at=at)
        )
    return out


def write_archive(raw_dir: Path, ids: list[int], *, generation: int = 0, batch: int = 2000) -> int:
    """Write the responses for `ids` as batches of `batch` packages; returns the number of rows."""
    rng = random.Random(generation * 1_000_003 + len(ids))
    at = NOW + timedelta(hours=generation)
    rows = 0
    for start in range(0, len(ids), batch):
        per_source: dict[str, list[RawResponse]] = {"github": [], "pypi": []}
        for i in ids[start: start + batch]:
            for source, items in responses_for(i, rng, at, generation).items():
                per_source[source].extend(items)
        for source, items in per_source.items():
            write_batch(raw_dir, source, items, f"bench-{generation}")
            rows += len(items)
    return rows


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.synth --packages N --out DIR [--generation G --fraction F]`."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packages", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--generation", type=int, default=0, help="0 = the initial archive; >0 = changes")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of packages changed (generation > 0)")
    args = parser.parse_args(argv)
    ids = list(range(1, args.packages + 1))
    if args.generation == 0:
        (args.out / "catalogue").mkdir(parents=True, exist_ok=True)
        for name, frame in catalogue(args.packages).items():
            frame.write_parquet(args.out / "catalogue" / f"{name}.parquet")
    else:
        rng = random.Random(args.generation)
        ids = sorted(rng.sample(ids, max(1, int(len(ids) * args.fraction))))
    rows = write_archive(args.out / "raw", ids, generation=args.generation)
    print(orjson.dumps({"packages": len(ids), "rows": rows}).decode())


if __name__ == "__main__":
    main()
