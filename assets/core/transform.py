"""Raw archive + catalogue frames -> core tables (pure polars, no I/O).

`build_core(catalogue, responses, now=...)` is the whole transform. It works in two stages:

1. *parse*: the newest good body of every request is decoded, per endpoint, into per-subject facts
   (`parse_responses`). The high-volume GitHub endpoints are decoded column-wise with
   `str.json_decode` and an explicit dtype; a body that does not fit is isolated by bisection and
   becomes a `malformed` crawl error instead of failing the batch. PyPI (whose `releases` object is
   keyed by version), GitLab and Bitbucket bodies go through orjson row by row.
2. *assemble*: the facts are joined onto the catalogue packages (`assemble_core`). Packages sharing a
   repository each get its data.

Every output is sorted by its key and cast to the declared column types (`CORE_COLUMNS`, mirrored by
`warehouse/schema/core.sql`), so the same archive gives bit-identical tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import polars as pl

UTC_US = pl.Datetime("us", "UTC")

# Accounts that act as bots without a "[bot]" suffix or a GitHub "Bot" type (compared lower-case).
KNOWN_BOTS = frozenset(
    {
        "dependabot",
        "dependabot-preview",
        "renovate",
        "renovate-bot",
        "renovatebot",
        "pre-commit-ci",
        "pyup-bot",
        "pyup.io bot",
        "greenkeeper",
        "greenkeeperio-bot",
        "snyk-bot",
        "codecov-io",
        "codecov-commenter",
        "allcontributors",
        "imgbot",
        "deepsource-autofix",
        "github-actions",
        "mergify",
        "transifex-integration",
        "weblate",
        "sourcery-ai",
        "restyled-io",
        "whitesource-bolt-for-github",
    }
)

PRERELEASE_RE = r"(?i)[\d._-](a|alpha|b|beta|c|rc|pre|preview|dev)[-_.]?\d*"

CATALOGUE_PACKAGE_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "title": pl.String(),
    "slug": pl.String(),
    "category_id": pl.Int64(),
    "repo_url": pl.String(),
    "pypi_url": pl.String(),
    "documentation_url": pl.String(),
    "created": UTC_US,
    "modified": UTC_US,
    "repo_host": pl.String(),
    "repo_owner": pl.String(),
    "repo_name": pl.String(),
    "repo_key": pl.String(),
    "pypi_name": pl.String(),
    "repo_url_problem": pl.String(),
}

CORE_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "core.categories": {
        "id": pl.Int64(),
        "title": pl.String(),
        "slug": pl.String(),
        "description": pl.String(),
        "title_plural": pl.String(),
        "show_pypi": pl.Boolean(),
        "created": UTC_US,
        "modified": UTC_US,
    },
    "core.grids": {
        "id": pl.Int64(),
        "title": pl.String(),
        "slug": pl.String(),
        "description": pl.String(),
        "is_locked": pl.Boolean(),
        "header": pl.Boolean(),
        "created": UTC_US,
        "modified": UTC_US,
    },
    "core.grid_packages": {"grid_id": pl.Int64(), "package_id": pl.Int64()},
    "core.packages": {
        **CATALOGUE_PACKAGE_COLUMNS,
        "repo_watchers": pl.Int64(),
        "repo_forks": pl.Int64(),
        "repo_description": pl.String(),
        "last_updated": UTC_US,
        "last_fetched": UTC_US,
        "pypi_version": pl.String(),
        "is_archived": pl.Boolean(),
        "is_stale": pl.Boolean(),
        "canonical_repo": pl.String(),
    },
    "core.repositories": {
        "repo_key": pl.String(),
        "host": pl.String(),
        "owner": pl.String(),
        "name": pl.String(),
        "stars": pl.Int64(),
        "forks": pl.Int64(),
        "watchers": pl.Int64(),
        "open_issues": pl.Int64(),
        "description": pl.String(),
        "homepage": pl.String(),
        "archived": pl.Boolean(),
        "is_fork": pl.Boolean(),
        "default_branch": pl.String(),
        "pushed_at": UTC_US,
        "last_commit_at": UTC_US,
        "latest_release": pl.String(),
        "license": pl.String(),
        "topics": pl.List(pl.String()),
        "canonical_repo": pl.String(),
        "fetched_at": UTC_US,
    },
    "core.commit_weeks": {
        "package_id": pl.Int64(),
        "week_index": pl.Int16(),
        "week_start": pl.Date(),
        "commits": pl.Int32(),
    },
    "core.participants": {
        "package_id": pl.Int64(),
        "position": pl.Int32(),
        "login": pl.String(),
        "contributions": pl.Int64(),
        "is_bot": pl.Boolean(),
    },
    "core.releases": {
        "package_id": pl.Int64(),
        "version": pl.String(),
        "upload_time": UTC_US,
        "yanked": pl.Boolean(),
        "requires_python": pl.String(),
        "is_prerelease": pl.Boolean(),
    },
    "core.crawl_errors": {
        "package_id": pl.Int64(),
        "source": pl.String(),
        "request_key": pl.String(),
        "kind": pl.String(),
        "http_status": pl.Int32(),
        "message": pl.String(),
        "first_seen": UTC_US,
        "last_seen": UTC_US,
        "attempts": pl.Int32(),
    },
}

CORE_KEYS: dict[str, tuple[str, ...]] = {
    "core.categories": ("id",),
    "core.grids": ("id",),
    "core.grid_packages": ("grid_id", "package_id"),
    "core.packages": ("id",),
    "core.repositories": ("repo_key",),
    "core.commit_weeks": ("package_id", "week_index"),
    "core.participants": ("package_id", "position"),
    "core.releases": ("package_id", "version"),
    "core.crawl_errors": ("package_id", "request_key"),
}

CORE_TABLES = tuple(CORE_COLUMNS)

# --- decoding -------------------------------------------------------------------------------------

_S, _I, _B = pl.String(), pl.Int64(), pl.Boolean()

GITHUB_REST_DTYPE = pl.Struct(
    {
        "full_name": _S,
        "stargazers_count": _I,
        "forks_count": _I,
        "subscribers_count": _I,
        "open_issues_count": _I,
        "description": _S,
        "homepage": _S,
        "archived": _B,
        "fork": _B,
        "default_branch": _S,
        "pushed_at": _S,
        "license": pl.Struct({"spdx_id": _S}),
        "topics": pl.List(_S),
    }
)

GITHUB_GRAPHQL_DTYPE = pl.Struct(
    {
        "nameWithOwner": _S,
        "stargazerCount": _I,
        "forkCount": _I,
        "watchers": pl.Struct({"totalCount": _I}),
        "issues": pl.Struct({"totalCount": _I}),
        "description": _S,
        "homepageUrl": _S,
        "isArchived": _B,
        "isFork": _B,
        "pushedAt": _S,
        "licenseInfo": pl.Struct({"spdxId": _S}),
        "repositoryTopics": pl.Struct({"nodes": pl.List(pl.Struct({"topic": pl.Struct({"name": _S})}))}),
        "defaultBranchRef": pl.Struct({"name": _S, "target": pl.Struct({"committedDate": _S})}),
        "latestRelease": pl.Struct({"tagName": _S}),
    }
)

PARTICIPATION_DTYPE = pl.Struct({"all": pl.List(_I)})
CONTRIBUTORS_DTYPE = pl.List(pl.Struct({"login": _S, "type": _S, "contributions": _I}))
COMMITS_DTYPE = pl.List(pl.Struct({"commit": pl.Struct({"committer": pl.Struct({"date": _S})})}))


def _decode_series(body: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, list[int]]:
    """Decode JSON text with `dtype`; rows that do not fit become null and their indices are returned.

    The fast path decodes the whole column at once. When it fails, the column is bisected so that
    only the bad rows (usually a handful) are isolated, keeping the decode column-wise.
    """
    try:
        return body.str.json_decode(dtype), []
    except Exception:
        if body.len() == 1:
            return pl.Series(body.name, [None], dtype=dtype), [0]
    mid = body.len() // 2
    left, bad_left = _decode_series(body.slice(0, mid), dtype)
    right, bad_right = _decode_series(body.slice(mid), dtype)
    return left.append(right), bad_left + [mid + i for i in bad_right]


def _decode(frame: pl.DataFrame, dtype: pl.DataType) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(`frame` + decoded `doc` column without the bad rows, the bad rows)."""
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, dtype=dtype).alias("doc")), frame
    decoded, bad = _decode_series(frame["body"], dtype)
    frame = frame.with_columns(decoded.alias("doc"))
    if not bad:
        return frame, frame.clear()
    mask = pl.Series("bad", [False] * frame.height)
    mask = mask.scatter(bad, True)
    return frame.filter(~mask), frame.filter(mask).drop("doc")


def parse_timestamp(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 text ("...Z", "...+01:00", with or without fractions) -> UTC datetime (null if bad)."""
    return (
        expr.str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False, time_unit="us")
    )


def _ts(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --- parse stage ----------------------------------------------------------------------------------

REPO_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "stars": pl.Int64(),
    "forks": pl.Int64(),
    "watchers": pl.Int64(),
    "open_issues": pl.Int64(),
    "description": pl.String(),
    "homepage": pl.String(),
    "archived": pl.Boolean(),
    "is_fork": pl.Boolean(),
    "default_branch": pl.String(),
    "pushed_at": pl.String(),
    "graph_commit_at": pl.String(),
    "latest_release": pl.String(),
    "license": pl.String(),
    "topics": pl.List(pl.String()),
    "full_name": pl.String(),
    "good_fetched_at": UTC_US,
}
COMMIT_FACTS: dict[str, pl.DataType] = {"subject": pl.String(), "last_commit_at": pl.String()}
WEEK_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "week_index": pl.Int16(),
    "week_start": pl.Date(),
    "commits": pl.Int32(),
}
PARTICIPANT_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "position": pl.Int32(),
    "login": pl.String(),
    "contributions": pl.Int64(),
    "is_bot": pl.Boolean(),
}
PYPI_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "pypi_version": pl.String(),
    "docs_project_url": pl.String(),
    "docs_url": pl.String(),
}
RELEASE_FACTS: dict[str, pl.DataType] = {
    "subject": pl.String(),
    "version": pl.String(),
    "upload_time": pl.String(),
    "yanked": pl.Boolean(),
    "requires_python": pl.String(),
}
RESPONSE_COLUMNS = (
    "request_key",
    "source",
    "endpoint",
    "subject",
    "status",
    "error_kind",
    "error",
    "attempts",
    "fetched_at",
    "body",
    "good_status",
    "good_fetched_at",
)


@dataclass
class Facts:
    """Per-subject facts parsed from the newest good bodies (the parse stage's output)."""

    repos: pl.DataFrame
    commits: pl.DataFrame
    weeks: pl.DataFrame
    participants: pl.DataFrame
    pypi: pl.DataFrame
    releases: pl.DataFrame
    malformed: pl.DataFrame  # request_key, reason
    requests: pl.DataFrame = field(default_factory=pl.DataFrame)  # responses without bodies

    TABLES = ("repos", "commits", "weeks", "participants", "pypi", "releases", "malformed", "requests")


def _empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def _bad(frame: pl.DataFrame, reason: str) -> pl.DataFrame:
    return frame.select("request_key", pl.lit(reason).alias("reason"))


def _github_rest(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ok, bad = _decode(frame, GITHUB_REST_DTYPE)
    d = pl.col("doc").struct
    repos = ok.select(
        "subject",
        d.field("stargazers_count").alias("stars"),
        d.field("forks_count").alias("forks"),
        d.field("subscribers_count").alias("watchers"),
        d.field("open_issues_count").alias("open_issues"),
        d.field("description"),
        d.field("homepage"),
        d.field("archived"),
        d.field("fork").alias("is_fork"),
        d.field("default_branch"),
        d.field("pushed_at"),
        pl.lit(None, pl.String).alias("graph_commit_at"),
        pl.lit(None, pl.String).alias("latest_release"),
        d.field("license").struct.field("spdx_id").alias("license"),
        d.field("topics"),
        d.field("full_name"),
        "good_fetched_at",
    )
    return repos, _bad(bad, "GitHub repo body is not the expected JSON object")


def _github_graphql(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ok, bad = _decode(frame, GITHUB_GRAPHQL_DTYPE)
    d = pl.col("doc").struct
    repos = ok.select(
        "subject",
        d.field("stargazerCount").alias("stars"),
        d.field("forkCount").alias("forks"),
        d.field("watchers").struct.field("totalCount").alias("watchers"),
        d.field("issues").struct.field("totalCount").alias("open_issues"),
        d.field("description"),
        d.field("homepageUrl").alias("homepage"),
        d.field("isArchived").alias("archived"),
        d.field("isFork").alias("is_fork"),
        d.field("defaultBranchRef").struct.field("name").alias("default_branch"),
        d.field("pushedAt").alias("pushed_at"),
        d.field("defaultBranchRef").struct.field("target").struct.field("committedDate").alias(
            "graph_commit_at"
        ),
        d.field("latestRelease").struct.field("tagName").alias("latest_release"),
        d.field("licenseInfo").struct.field("spdxId").alias("license"),
        d.field("repositoryTopics")
        .struct.field("nodes")
        .list.eval(pl.element().struct.field("topic").struct.field("name"))
        .alias("topics"),
        d.field("nameWithOwner").alias("full_name"),
        "good_fetched_at",
    )
    return repos, _bad(bad, "GitHub GraphQL repository node is not the expected JSON object")


def _github_participation(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ok, bad = _decode(frame, PARTICIPATION_DTYPE)
    ok = ok.filter(pl.col("doc").struct.field("all").is_not_null())
    # GitHub's weeks end at the fetch: the last entry is the week (starting Sunday) of the fetch.
    fetched = pl.col("good_fetched_at").dt.date()
    last_week = fetched - pl.duration(days=fetched.dt.weekday() % 7)
    weeks = (
        ok.select(
            "subject",
            last_week.alias("last_week"),
            pl.col("doc").struct.field("all").alias("commits"),
        )
        .with_columns(pl.col("commits").list.len().alias("n"))
        .explode("commits")
        .with_columns(pl.int_range(pl.len()).over("subject").alias("week_index"))
        .filter(pl.col("commits").is_not_null())
        .select(
            "subject",
            pl.col("week_index").cast(pl.Int16),
            (pl.col("last_week") - pl.duration(weeks=pl.col("n") - 1 - pl.col("week_index"))).alias(
                "week_start"
            ),
            pl.col("commits").cast(pl.Int32),
        )
    )
    return weeks, _bad(bad, "GitHub participation body is not {'all': [...]}")


def is_bot_expr(login: pl.Expr, kind: pl.Expr) -> pl.Expr:
    lower = login.str.to_lowercase()
    return (
        lower.str.ends_with("[bot]")
        | (kind.fill_null("") == "Bot")
        | lower.is_in(list(KNOWN_BOTS))
        | lower.str.ends_with("-bot")
    ).fill_null(False)


def _github_contributors(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ok, bad = _decode(frame, CONTRIBUTORS_DTYPE)
    people = (
        ok.select("subject", pl.col("doc").alias("c"))
        .explode("c")
        .unnest("c")
        .filter(pl.col("login").is_not_null() & (pl.col("type").fill_null("") != "Anonymous"))
        .with_columns(pl.int_range(pl.len()).over("subject").cast(pl.Int32).alias("position"))
        .select(
            "subject",
            "position",
            "login",
            "contributions",
            is_bot_expr(pl.col("login"), pl.col("type")).alias("is_bot"),
        )
    )
    return people, _bad(bad, "GitHub contributors body is not a JSON list of contributors")


def _github_commits(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ok, bad = _decode(frame, COMMITS_DTYPE)
    commits = ok.select(
        "subject",
        pl.col("doc").list.first().struct.field("commit").struct.field("committer").struct.field("date")
        .alias("last_commit_at"),
    )
    return commits, _bad(bad, "GitHub commits body is not a JSON list of commits")


def _loads(body: str) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _pypi(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    facts: dict[str, list] = {k: [] for k in PYPI_FACTS}
    rels: dict[str, list] = {k: [] for k in RELEASE_FACTS}
    bad: list[str] = []
    for key, subject, body in zip(frame["request_key"], frame["subject"], frame["body"], strict=True):
        doc = _loads(body)
        info = doc.get("info") if isinstance(doc, dict) else None
        releases = doc.get("releases") if isinstance(doc, dict) else None
        if not isinstance(info, dict) or not isinstance(releases, dict | None):
            bad.append(key)
            continue
        urls = info.get("project_urls")
        docs = None
        if isinstance(urls, dict):
            lowered = {str(k).strip().lower(): v for k, v in urls.items()}
            docs = _ts(lowered.get("documentation")) or _ts(lowered.get("docs"))
        version = info.get("version")
        facts["subject"].append(subject)
        facts["pypi_version"].append(version if isinstance(version, str) else None)
        facts["docs_project_url"].append(docs or None)
        facts["docs_url"].append(_ts(info.get("docs_url")) or None)
        for ver, files in (releases or {}).items():
            files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
            times = sorted(t for f in files if (t := _ts(f.get("upload_time_iso_8601"))))
            pythons = [p for f in files if (p := _ts(f.get("requires_python")))]
            rels["subject"].append(subject)
            rels["version"].append(str(ver))
            rels["upload_time"].append(times[0] if times else None)
            rels["yanked"].append(bool(files) and all(bool(f.get("yanked")) for f in files))
            rels["requires_python"].append(pythons[0] if pythons else None)
    return (
        pl.DataFrame(facts, schema=PYPI_FACTS),
        pl.DataFrame(rels, schema=RELEASE_FACTS),
        pl.DataFrame(
            {"request_key": bad, "reason": ["PyPI JSON has no 'info' object"] * len(bad)},
            schema={"request_key": pl.String, "reason": pl.String},
        ),
    )


def _first(doc: object) -> dict:
    """The first element of a commit list (or of a Bitbucket page's `values`)."""
    if isinstance(doc, dict):
        doc = doc.get("values")
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return doc[0]
    return {}


def _other_hosts(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """GitLab and Bitbucket (small volumes): row by row with orjson."""
    repos: list[dict] = []
    commits: list[dict] = []
    bad: list[str] = []
    for row in frame.iter_rows(named=True):
        doc = _loads(row["body"])
        endpoint = row["endpoint"]
        if endpoint in ("gitlab_commits", "bitbucket_commits"):
            if not isinstance(doc, list | dict):
                bad.append(row["request_key"])
                continue
            first = _first(doc)
            date = first.get("committed_date") or first.get("date")
            commits.append({"subject": row["subject"], "last_commit_at": _ts(date)})
            continue
        if not isinstance(doc, dict):
            bad.append(row["request_key"])
            continue
        if endpoint == "gitlab_project":
            license_ = doc.get("license") if isinstance(doc.get("license"), dict) else {}
            repos.append(
                {
                    "subject": row["subject"],
                    "stars": doc.get("star_count"),
                    "forks": doc.get("forks_count"),
                    "watchers": None,
                    "open_issues": doc.get("open_issues_count"),
                    "description": doc.get("description"),
                    "homepage": doc.get("web_url"),
                    "archived": doc.get("archived"),
                    "is_fork": doc.get("forked_from_project") is not None,
                    "default_branch": doc.get("default_branch"),
                    "pushed_at": _ts(doc.get("last_activity_at")),
                    "graph_commit_at": None,
                    "latest_release": None,
                    "license": license_.get("key"),
                    "topics": [str(t) for t in (doc.get("topics") or doc.get("tag_list") or [])],
                    "full_name": doc.get("path_with_namespace"),
                    "good_fetched_at": row["good_fetched_at"],
                }
            )
        elif endpoint == "bitbucket_repo":
            branch = doc.get("mainbranch") if isinstance(doc.get("mainbranch"), dict) else {}
            repos.append(
                {
                    "subject": row["subject"],
                    "stars": 0,
                    "forks": None,
                    "watchers": None,
                    "open_issues": None,
                    "description": doc.get("description"),
                    "homepage": doc.get("website") or None,
                    "archived": False,
                    "is_fork": doc.get("parent") is not None,
                    "default_branch": branch.get("name"),
                    "pushed_at": _ts(doc.get("updated_on")),
                    "graph_commit_at": None,
                    "latest_release": None,
                    "license": None,
                    "topics": [],
                    "full_name": doc.get("full_name"),
                    "good_fetched_at": row["good_fetched_at"],
                }
            )
    try:
        repo_frame = pl.DataFrame(repos, schema=REPO_FACTS, strict=False)
    except Exception:
        repo_frame = _empty(REPO_FACTS)
        for rec in repos:
            try:
                repo_frame = repo_frame.vstack(pl.DataFrame([rec], schema=REPO_FACTS, strict=False))
            except Exception:
                bad.append(rec["subject"])
    return (
        repo_frame,
        pl.DataFrame(commits, schema=COMMIT_FACTS, strict=False),
        pl.DataFrame(
            {"request_key": bad, "reason": ["body is not the expected JSON"] * len(bad)},
            schema={"request_key": pl.String, "reason": pl.String},
        ),
    )


GITHUB_PARSERS = {
    "repo": "rest",
    "graphql_repo": "graphql",
    "participation": "participation",
    "contributors": "contributors",
    "commits": "commits",
}


def parse_responses(responses: pl.LazyFrame | pl.DataFrame) -> Facts:
    """The parse stage: newest good bodies -> per-subject facts (+ malformed request keys)."""
    frame = responses.lazy().select(RESPONSE_COLUMNS).sort("request_key").collect()
    requests = frame.drop("body")
    good = frame.filter(pl.col("body").is_not_null())
    parts = good.partition_by(["source", "endpoint"], as_dict=True, maintain_order=True)

    def part(source: str, endpoint: str) -> pl.DataFrame:
        return parts.get((source, endpoint), good.clear())

    rest, bad_rest = _github_rest(part("github", "repo"))
    graph, bad_graph = _github_graphql(part("github", "graphql_repo"))
    weeks, bad_weeks = _github_participation(part("github", "participation"))
    people, bad_people = _github_contributors(part("github", "contributors"))
    commits, bad_commits = _github_commits(part("github", "commits"))
    pypi, releases, bad_pypi = _pypi(part("pypi", "pypi_json"))
    others = pl.concat(
        [part(s, e) for s, e in parts if s in ("gitlab", "bitbucket")] or [good.clear()]
    )
    other_repos, other_commits, bad_other = _other_hosts(others)

    repos = pl.concat(
        [r.select([pl.col(c).cast(t) for c, t in REPO_FACTS.items()]) for r in (rest, graph, other_repos)]
    )
    # REST and GraphQL can both describe a repository: keep the newest good one.
    repos = repos.sort("subject", "good_fetched_at", nulls_last=False).unique(
        "subject", keep="last", maintain_order=True
    )
    all_commits = pl.concat(
        [c.select([pl.col(k).cast(t) for k, t in COMMIT_FACTS.items()]) for c in (commits, other_commits)]
    ).unique("subject", keep="first", maintain_order=True)
    malformed = pl.concat([bad_rest, bad_graph, bad_weeks, bad_people, bad_commits, bad_pypi, bad_other])
    return Facts(
        repos=repos,
        commits=all_commits,
        weeks=weeks.select([pl.col(k).cast(t) for k, t in WEEK_FACTS.items()]),
        participants=people.select([pl.col(k).cast(t) for k, t in PARTICIPANT_FACTS.items()]),
        pypi=pypi,
        releases=releases,
        malformed=malformed.sort("request_key"),
        requests=requests,
    )


# --- assemble stage -------------------------------------------------------------------------------


def _conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    columns = CORE_COLUMNS[name]
    out = frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in columns.items()])
    return out.sort(list(CORE_KEYS[name]), nulls_last=True)


def _table(catalogue: Mapping[str, pl.DataFrame], name: str) -> pl.DataFrame:
    for key in (name, f"catalogue.{name}"):
        if key in catalogue:
            return catalogue[key]
    raise KeyError(f"catalogue frame {name!r} missing (have {sorted(catalogue)})")


def _crawl_errors(
    packages: pl.DataFrame,
    facts: Facts,
    archive: pl.LazyFrame | None,
) -> pl.DataFrame:
    req = facts.requests
    failing = req.filter(
        pl.col("error_kind").is_not_null() | ~(pl.col("status").is_between(200, 299) | (pl.col("status") == 304))
    )
    keys = failing.select("request_key", "good_fetched_at")
    if archive is not None and not keys.is_empty():
        # the current failure streak: failed attempts since the newest good fetch
        history = (
            archive.select("request_key", "status", "error_kind", "attempts", "fetched_at")
            .join(keys.lazy(), on="request_key", how="semi")
            .join(keys.lazy(), on="request_key", how="left")
            .filter(
                (pl.col("error_kind").is_not_null() | ~pl.col("status").is_between(200, 299))
                & (pl.col("status") != 304)
                & (pl.col("good_fetched_at").is_null() | (pl.col("fetched_at") > pl.col("good_fetched_at")))
            )
            .group_by("request_key")
            .agg(
                pl.col("fetched_at").min().alias("first_seen"),
                pl.col("fetched_at").max().alias("last_seen"),
                pl.col("attempts").fill_null(1).sum().alias("attempts"),
            )
            .collect()
        )
    else:
        history = failing.select(
            "request_key",
            pl.col("fetched_at").alias("first_seen"),
            pl.col("fetched_at").alias("last_seen"),
            "attempts",
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
    )
    errors = pl.concat([failed, malformed.with_columns(pl.col("attempts").cast(pl.Int32))], how="vertical_relaxed")
    by_subject = _subject_map(packages)
    per_package = errors.join(by_subject, on="subject", how="inner").drop("subject")
    bad_entries = packages.filter(pl.col("repo_url_problem").is_not_null()).select(
        pl.col("id").alias("package_id"),
        pl.lit("catalogue").alias("source"),
        pl.format("catalogue:repo_url:{}", "id").alias("request_key"),
        pl.lit("bad_entry").alias("kind"),
        pl.lit(None, pl.Int32).alias("http_status"),
        pl.col("repo_url_problem").alias("message"),
        pl.lit(None, UTC_US).alias("first_seen"),
        pl.lit(None, UTC_US).alias("last_seen"),
        pl.lit(0, pl.Int32).alias("attempts"),
    )
    return pl.concat(
        [_conform("core.crawl_errors", per_package), _conform("core.crawl_errors", bad_entries)]
    )


def _subject_map(packages: pl.DataFrame) -> pl.DataFrame:
    """subject -> package_id (a package has a repo subject and a PyPI subject)."""
    return pl.concat(
        [
            packages.filter(pl.col("repo_key").is_not_null()).select(
                pl.col("repo_key").alias("subject"), pl.col("id").alias("package_id")
            ),
            packages.filter(pl.col("pypi_name").is_not_null()).select(
                ("pypi:" + pl.col("pypi_name")).alias("subject"), pl.col("id").alias("package_id")
            ),
        ]
    )


def _per_package(packages: pl.DataFrame, facts: pl.DataFrame, name: str) -> pl.DataFrame:
    pairs = packages.filter(pl.col("repo_key").is_not_null()).select(
        pl.col("repo_key").alias("subject"), pl.col("id").alias("package_id")
    )
    if name == "core.releases":
        pairs = packages.filter(pl.col("pypi_name").is_not_null()).select(
            ("pypi:" + pl.col("pypi_name")).alias("subject"), pl.col("id").alias("package_id")
        )
    return _conform(name, pairs.join(facts, on="subject", how="inner"))


def assemble_core(
    catalogue: Mapping[str, pl.DataFrame],
    facts: Facts,
    *,
    archive: pl.LazyFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """The assemble stage: catalogue frames + parsed facts -> core tables."""
    categories = _conform("core.categories", _table(catalogue, "categories"))
    grids = _conform("core.grids", _table(catalogue, "grids"))
    packages = _table(catalogue, "packages").select(
        [pl.col(c).cast(t) for c, t in CATALOGUE_PACKAGE_COLUMNS.items()]
    )
    grid_packages = _conform(
        "core.grid_packages",
        _table(catalogue, "grid_packages")
        .join(grids.select(pl.col("id").alias("grid_id")), on="grid_id", how="semi")
        .join(packages.select(pl.col("id").alias("package_id")), on="package_id", how="semi")
        .unique(),
    )

    repos = facts.repos.join(facts.commits, on="subject", how="left").with_columns(
        pl.coalesce(parse_timestamp(pl.col("last_commit_at")), parse_timestamp(pl.col("graph_commit_at")))
        .alias("last_commit_at"),
        parse_timestamp(pl.col("pushed_at")).alias("pushed_at"),
    )
    # commit dates without a repo body still count (e.g. the repo request failed, commits did not)
    commit_only = facts.commits.join(facts.repos, on="subject", how="anti").select(
        "subject", parse_timestamp(pl.col("last_commit_at")).alias("last_commit_at")
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
    repositories = _conform("core.repositories", repositories)

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
        _subject_map(packages)
        .join(subject_state, on="subject", how="inner")
        .group_by("package_id")
        .agg(pl.col("last_fetched").max(), pl.col("is_stale").any())
    )
    pypi = facts.pypi.rename({"subject": "pypi_subject"})
    out = (
        packages.with_columns(("pypi:" + pl.col("pypi_name")).alias("pypi_subject"))
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
        .join(pypi, on="pypi_subject", how="left")
        .join(package_state, left_on="id", right_on="package_id", how="left")
        .with_columns(
            pl.col("repo_watchers").fill_null(0),
            pl.col("repo_forks").fill_null(0),
            pl.col("repo_description").fill_null(""),
            pl.col("is_archived").fill_null(False),
            pl.col("is_stale").fill_null(False),
            pl.coalesce("docs_project_url", "docs_url", "documentation_url").alias("documentation_url"),
        )
    )
    packages_out = _conform("core.packages", out)
    return {
        "core.categories": categories,
        "core.grids": grids,
        "core.grid_packages": grid_packages,
        "core.packages": packages_out,
        "core.repositories": repositories,
        "core.commit_weeks": _per_package(packages, facts.weeks, "core.commit_weeks"),
        "core.participants": _per_package(packages, facts.participants, "core.participants"),
        "core.releases": _per_package(
            packages,
            facts.releases.with_columns(
                parse_timestamp(pl.col("upload_time")).alias("upload_time"),
                pl.col("version").str.contains(PRERELEASE_RE).alias("is_prerelease"),
            ),
            "core.releases",
        ),
        "core.crawl_errors": _crawl_errors(packages, facts, archive),
    }


def build_core(
    catalogue: Mapping[str, pl.DataFrame],
    responses: pl.LazyFrame | pl.DataFrame,
    *,
    now: datetime,
    archive: pl.LazyFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Catalogue frames + `latest_responses()` -> {"core.<table>": frame}.

    `archive` (`scan_archive()`) lets crawl errors count first/last seen and attempts over the whole
    archive; without it they describe the newest attempt only. `now` is the build time (kept in the
    signature for callers that stamp outputs; the tables themselves depend only on the inputs, so the
    same archive gives bit-identical tables).
    """
    del now
    facts = parse_responses(responses)
    return assemble_core(catalogue, facts, archive=archive)

