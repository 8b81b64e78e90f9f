"""Raw archive + catalogue frames -> core tables (pure polars, no I/O).

`build_core(catalogue, responses, now=...)` is the whole transform. It works in two stages:

1. *parse*: the newest good body of every request is decoded, per endpoint, into per-subject facts
   (`parse_responses`). The high-volume GitHub endpoints are decoded column-wise with
   `str.json_decode` and an explicit dtype; a body that does not fit is isolated by bisection and
   becomes a `malformed` crawl error instead of failing the batch. PyPI (whose `releases` object is
   keyed by version), GitLab, Bitbucket and Codeberg bodies go through orjson row by row.
2. *assemble*: the facts are joined onto the catalogue packages (`assemble_core`). Packages sharing a
   repository each get its data.

Every output is sorted by its key and cast to the declared column types (`CORE_COLUMNS`, mirrored by
`warehouse/schema/core.sql`), so the same archive gives bit-identical tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import polars as pl

from warehouse.archive import RAW_SCHEMA, batch_files

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


PYPI_STRUCTURE = (
    '{"info": {"version": "VARCHAR", "docs_url": "VARCHAR", "project_urls": "MAP(VARCHAR, VARCHAR)"}, '
    '"releases": "MAP(VARCHAR, STRUCT(upload_time_iso_8601 VARCHAR, yanked BOOLEAN, requires_python VARCHAR)[])"}'
)
OBJECT_ENDPOINTS = ("repo", "graphql_repo", "participation", "pypi_json", "gitlab_project", "bitbucket_repo",
                    "codeberg_repo")
LIST_ENDPOINTS = ("contributors", "commits", "gitlab_commits", "codeberg_commits")
OTHER_SOURCES = ("gitlab", "bitbucket", "codeberg")  # decoded row by row (`_other_hosts`)


def _structure(dtype: pl.DataType) -> object:
    """A polars dtype -> DuckDB `json_transform` structure."""
    if isinstance(dtype, pl.Struct):
        return {f.name: _structure(f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        return [_structure(dtype.inner)]
    return {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}[dtype.base_type()]


def _transform(endpoint: str, structure: str, column: str) -> str:
    quoted = structure.replace("'", "''")
    return (
        f"CASE WHEN valid AND source = '{'pypi' if endpoint == 'pypi_json' else 'github'}' "
        f"AND endpoint = '{endpoint}' THEN json_transform(body, '{quoted}') END AS {column}"
    )


def decode_sql(src: str) -> str:
    """One pass over the newest good bodies in `src` (request_key, source, endpoint, subject,
    good_fetched_at, body): every body is validated and decoded by DuckDB's JSON reader (yyjson,
    multi-threaded, ~3x polars' `json_decode` on these shapes, and it never fails the batch: a body
    that is not JSON or not the expected shape is reported in `problem`)."""
    objects = ", ".join(f"'{e}'" for e in OBJECT_ENDPOINTS)
    lists = ", ".join(f"'{e}'" for e in LIST_ENDPOINTS)
    columns = [
        _transform("repo", orjson.dumps(_structure(GITHUB_REST_DTYPE)).decode(), "d_repo"),
        _transform("graphql_repo", orjson.dumps(_structure(GITHUB_GRAPHQL_DTYPE)).decode(), "d_graphql_repo"),
        _transform("participation", orjson.dumps(_structure(PARTICIPATION_DTYPE)).decode(), "d_participation"),
        _transform("contributors", orjson.dumps(_structure(CONTRIBUTORS_DTYPE)).decode(), "d_contributors"),
        _transform("commits", orjson.dumps(_structure(COMMITS_DTYPE)).decode(), "d_commits"),
        _transform("pypi_json", PYPI_STRUCTURE, "d_pypi_json"),
    ]
    return f"""
    SELECT * REPLACE (
        CASE WHEN d_pypi_json IS NOT NULL THEN struct_pack(
            info := CASE WHEN d_pypi_json.info IS NOT NULL THEN struct_pack(
                version := d_pypi_json.info.version,
                docs_url := d_pypi_json.info.docs_url,
                project_urls := map_entries(d_pypi_json.info.project_urls)
            ) END,
            releases := map_entries(d_pypi_json.releases)
        ) END AS d_pypi_json
    ) FROM (
    WITH v AS (
        SELECT request_key, source, endpoint, subject, good_fetched_at, good_status, body,
               coalesce(json_valid(body), FALSE) AS valid, left(ltrim(body), 1) AS head
        FROM ({src})
    )
    SELECT request_key, source, endpoint, subject, good_fetched_at, good_status,
           CASE WHEN NOT valid THEN 'body is not valid JSON'
                WHEN endpoint IN ({objects}) AND head <> '{{' THEN 'body is not a JSON object'
                WHEN endpoint IN ({lists}) AND head <> '[' THEN 'body is not a JSON list'
           END AS problem,
           {", ".join(columns)},
           CASE WHEN valid AND source IN ({", ".join(f"'{s}'" for s in OTHER_SOURCES)}) THEN body END AS other_body
    FROM v
    )
    """


def _endpoint(decoded: pl.DataFrame, source: str, endpoint: str) -> pl.DataFrame:
    column = f"d_{endpoint}"
    mask = (pl.col("source") == source) & (pl.col("endpoint") == endpoint) & pl.col("problem").is_null()
    # select before filtering: the decoded frame carries every endpoint's (nested) column
    return decoded.select(
        "request_key", "subject", "good_fetched_at", pl.col(column).alias("doc"), mask.alias("_keep")
    ).filter("_keep").drop("_keep")


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


def _github_rest(ok: pl.DataFrame) -> pl.DataFrame:
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
    return repos


def _github_graphql(ok: pl.DataFrame) -> pl.DataFrame:
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
    return repos


def _github_participation(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    has_weeks = pl.col("doc").struct.field("all").is_not_null()
    ok, bad = frame.filter(has_weeks), frame.filter(~has_weeks)
    # GitHub's weeks end at the fetch: the last entry is the week (starting Sunday) of the fetch.
    fetched = pl.col("good_fetched_at").dt.date()
    last_week = fetched - pl.duration(days=fetched.dt.weekday() % 7)
    weeks = (
        ok.select(
            "subject",
            last_week.alias("last_week"),
            pl.col("doc").struct.field("all").alias("commits"),
        )
        .with_columns(
            pl.col("commits").list.len().alias("n"),
            pl.int_ranges(0, pl.col("commits").list.len()).alias("week_index"),
        )
        .explode(["commits", "week_index"])
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


def _github_contributors(ok: pl.DataFrame) -> pl.DataFrame:
    person = pl.element().struct
    people = (
        ok.select(
            "subject",
            pl.col("doc")
            .list.eval(
                pl.element().filter(
                    person.field("login").is_not_null() & (person.field("type").fill_null("") != "Anonymous")
                )
            )
            .alias("c"),
        )
        .with_columns(pl.int_ranges(0, pl.col("c").list.len(), dtype=pl.Int32).alias("position"))
        .explode(["c", "position"])
        .filter(pl.col("c").is_not_null())
        .unnest("c")
        .select(
            "subject",
            "position",
            "login",
            "contributions",
            is_bot_expr(pl.col("login"), pl.col("type")).alias("is_bot"),
        )
    )
    return people


def _github_commits(ok: pl.DataFrame) -> pl.DataFrame:
    commits = ok.select(
        "subject",
        pl.col("doc").list.first().struct.field("commit").struct.field("committer").struct.field("date")
        .alias("last_commit_at"),
    )
    return commits


def _loads(body: str) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _pypi(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """PyPI JSON decoded by DuckDB (`project_urls` and `releases` are maps: list of {key, value})."""
    has_info = pl.col("doc").struct.field("info").is_not_null()
    ok, bad = frame.filter(has_info), frame.filter(~has_info)
    info = pl.col("doc").struct.field("info").struct
    urls = (
        ok.select("subject", info.field("project_urls").alias("u"))
        .explode("u")
        .unnest("u")
        .with_columns(pl.col("key").str.strip_chars().str.to_lowercase())
        .filter(pl.col("key").is_in(["documentation", "docs"]) & (pl.col("value").fill_null("") != ""))
        .sort("subject", pl.col("key") != "documentation")  # Documentation before Docs
        .unique("subject", keep="first", maintain_order=True)
        .select("subject", pl.col("value").alias("docs_project_url"))
    )
    facts = ok.select(
        "subject",
        info.field("version").alias("pypi_version"),
        pl.when(info.field("docs_url") != "").then(info.field("docs_url")).alias("docs_url"),
    ).join(urls, on="subject", how="left")
    releases = (
        ok.select("subject", pl.col("doc").struct.field("releases").alias("r"))
        .explode("r")
        .filter(pl.col("r").is_not_null())
        .unnest("r")
        .select(
            "subject",
            pl.col("key").alias("version"),
            # (min inside eval: `.list.min()` on a string list is slow and memory-hungry in polars 2.1)
            pl.col("value").list.eval(pl.element().struct.field("upload_time_iso_8601").min()).list.first()
            .alias("upload_time"),
            (
                (pl.col("value").list.len() > 0)
                & pl.col("value").list.eval(pl.element().struct.field("yanked").fill_null(False)).list.all()
            ).fill_null(False).alias("yanked"),
            pl.col("value").list.eval(pl.element().struct.field("requires_python").drop_nulls()).list.first()
            .alias("requires_python"),
        )
    )
    return (
        facts.select([pl.col(c).cast(t) for c, t in PYPI_FACTS.items()]),
        releases.select([pl.col(c).cast(t) for c, t in RELEASE_FACTS.items()]),
        _bad(bad, "PyPI JSON has no 'info' object"),
    )


def _first(doc: object) -> dict:
    """The first element of a commit list (or of a Bitbucket page's `values`)."""
    if isinstance(doc, dict):
        doc = doc.get("values")
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return doc[0]
    return {}


def _gitea_commit_date(commit: object) -> str | None:
    """Committer date of a Gitea/Forgejo commit entry: `commit.committer.date`, else `created`."""
    if not isinstance(commit, dict):
        return None
    inner = commit.get("commit") if isinstance(commit.get("commit"), dict) else {}
    committer = inner.get("committer") if isinstance(inner.get("committer"), dict) else {}
    return _ts(committer.get("date")) or _ts(commit.get("created"))


def _other_hosts(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """GitLab, Bitbucket and Codeberg (small volumes): row by row with orjson."""
    repos: list[dict] = []
    commits: list[dict] = []
    bad: list[str] = []
    for row in frame.iter_rows(named=True):
        endpoint = row["endpoint"]
        if endpoint not in ("gitlab_commits", "bitbucket_commits", "gitlab_project", "bitbucket_repo",
                            "codeberg_repo", "codeberg_commits"):
            continue  # e.g. gitlab_contributors: names without logins, not exported (participants: GitHub)
        doc = _loads(row["body"])
        if endpoint == "codeberg_commits":
            if not isinstance(doc, list):
                bad.append(row["request_key"])
                continue
            commits.append({"subject": row["subject"], "last_commit_at": _gitea_commit_date(doc[0] if doc else None)})
            continue
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
        elif endpoint == "codeberg_repo":
            licenses = doc.get("licenses") if isinstance(doc.get("licenses"), list) else []
            topics = doc.get("topics") if isinstance(doc.get("topics"), list) else []
            repos.append(
                {
                    "subject": row["subject"],
                    "stars": doc.get("stars_count"),
                    "forks": doc.get("forks_count"),
                    "watchers": doc.get("watchers_count"),
                    "open_issues": doc.get("open_issues_count"),
                    "description": doc.get("description"),
                    "homepage": doc.get("website") or None,
                    "archived": doc.get("archived"),
                    "is_fork": doc.get("fork"),
                    "default_branch": doc.get("default_branch"),
                    "pushed_at": _ts(doc.get("updated_at")),
                    "graph_commit_at": None,
                    "latest_release": None,
                    "license": str(licenses[0]) if licenses else None,
                    "topics": [str(t) for t in topics],
                    "full_name": doc.get("full_name"),
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


def parse_decoded(decoded: pl.DataFrame, requests: pl.DataFrame) -> Facts:
    """Decoded bodies (`decode_sql`'s output) + the newest attempt per request -> per-subject facts."""
    rest = _github_rest(_endpoint(decoded, "github", "repo"))
    graph = _github_graphql(_endpoint(decoded, "github", "graphql_repo"))
    weeks, bad_weeks = _github_participation(_endpoint(decoded, "github", "participation"))
    people = _github_contributors(_endpoint(decoded, "github", "contributors"))
    commits = _github_commits(_endpoint(decoded, "github", "commits"))
    pypi, releases, bad_pypi = _pypi(_endpoint(decoded, "pypi", "pypi_json"))
    others = decoded.filter(pl.col("other_body").is_not_null() & pl.col("problem").is_null()).select(
        "request_key", "endpoint", "subject", "good_fetched_at", pl.col("other_body").alias("body")
    )
    other_repos, other_commits, bad_other = _other_hosts(others)
    problems = decoded.filter(pl.col("problem").is_not_null()).select(
        "request_key", pl.format("{} body: {}", "endpoint", "problem").alias("reason")
    )
    bad_weeks = bad_weeks.select("request_key", pl.lit("participation has no 'all' list").alias("reason"))

    repos = pl.concat(
        [
            r.select([pl.col(c).cast(t) for c, t in REPO_FACTS.items()]).with_columns(pl.lit(i).alias("priority"))
            for i, r in enumerate((rest, graph, other_repos))
        ]
    )
    # REST and GraphQL can both describe a repository: keep the newest good one.
    repos = (
        repos.sort("subject", "good_fetched_at", "priority", nulls_last=False)
        .unique("subject", keep="last", maintain_order=True)
        .drop("priority")
    )
    all_commits = pl.concat(
        [c.select([pl.col(k).cast(t) for k, t in COMMIT_FACTS.items()]) for c in (commits, other_commits)]
    ).unique("subject", keep="first", maintain_order=True)
    malformed = pl.concat([problems, bad_weeks, bad_pypi, bad_other])
    return Facts(
        repos=repos,
        commits=all_commits,
        weeks=weeks.select([pl.col(k).cast(t) for k, t in WEEK_FACTS.items()]),
        participants=people.select([pl.col(k).cast(t) for k, t in PARTICIPANT_FACTS.items()]),
        pypi=pypi,
        releases=releases,
        malformed=malformed.sort("request_key"),
        requests=requests.sort("request_key"),
    )


def parse_responses(responses: pl.LazyFrame | pl.DataFrame) -> Facts:
    """The parse stage for `latest_responses()`-shaped input (bodies in memory)."""
    frame = responses.lazy().select(RESPONSE_COLUMNS).sort("request_key").collect()
    con = duckdb.connect()
    try:
        con.register("src_frame", frame.filter(pl.col("body").is_not_null()))
        decoded = _query(con, decode_sql("SELECT * FROM src_frame"))
    finally:
        con.close()
    return parse_decoded(decoded, frame.drop("body"))


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    zoned = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone not in (None, "UTC")]
    return frame.with_columns(pl.col(zoned).dt.convert_time_zone("UTC")) if zoned else frame


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


FAILING_SQL = "(error_kind IS NOT NULL OR NOT (status BETWEEN 200 AND 299 OR status = 304))"


def parse_archive(
    raw_dir: Path,
    *,
    only_subjects: pl.DataFrame | None = None,
    threads: int | None = None,
) -> tuple[Facts, pl.LazyFrame]:
    """The parse stage straight from the Parquet archive, streaming (bounded memory at any scale).

    Same semantics as `latest_responses()` + `parse_responses()`: the newest attempt per request key
    (ties broken by file and row order) and the newest good body. Pass 1 reads only the small
    columns to find, per key, the file and row holding the newest good body; pass 2 streams the
    bodies of those rows through `decode_sql`. `only_subjects` (a frame with `subject`) limits the
    work to the requests about those subjects (incremental updates). Returns the facts and the
    failing keys' attempts (for crawl-error streaks).
    """
    files = batch_files(raw_dir)
    empty_attempts = pl.LazyFrame(
        schema={"request_key": pl.String, "status": pl.Int32, "error_kind": pl.String, "attempts": pl.Int32,
                "fetched_at": UTC_US}
    )
    if not files:
        empty = pl.DataFrame(schema={c: RAW_SCHEMA.get(c, UTC_US) for c in RESPONSE_COLUMNS})
        return parse_responses(empty), empty_attempts
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        keys_filter = ""
        if only_subjects is not None:
            con.register("only_subjects", only_subjects.select("subject").unique())
            keys_filter = "WHERE subject IN (SELECT subject FROM only_subjects)"
        con.execute(
            f"""CREATE TEMP TABLE idx AS
            SELECT request_key, source, endpoint, subject, status, error_kind, error, attempts, fetched_at,
                   filename, file_row_number
            FROM read_parquet({_sql_list(files)}, filename = true, file_row_number = true) {keys_filter}"""
        )
        order = "ORDER BY fetched_at DESC, filename DESC, file_row_number DESC"
        con.execute(
            f"""CREATE TEMP TABLE newest AS SELECT * EXCLUDE (filename, file_row_number) FROM idx
            QUALIFY row_number() OVER (PARTITION BY request_key {order}) = 1"""
        )
        con.execute(
            f"""CREATE TEMP TABLE good AS
            SELECT request_key, status AS good_status, fetched_at AS good_fetched_at, filename, file_row_number
            FROM idx WHERE status BETWEEN 200 AND 299 AND error_kind IS NULL
            QUALIFY row_number() OVER (PARTITION BY request_key {order}) = 1"""
        )
        requests = _query(
            con,
            """SELECT n.*, g.good_status, g.good_fetched_at FROM newest n
            LEFT JOIN good g USING (request_key) ORDER BY request_key""",
        )
        winner_files = [Path(r[0]) for r in con.execute("SELECT DISTINCT filename FROM good ORDER BY 1").fetchall()]
        if winner_files:
            # a SEMI join keeps the Parquet scan as the streaming probe side (a plain join may build
            # its hash table from the bodies)
            src = f"""SELECT request_key, source, endpoint, subject, fetched_at AS good_fetched_at,
                    status AS good_status, body
                FROM read_parquet({_sql_list(winner_files)}, filename = true, file_row_number = true) p
                SEMI JOIN good g ON g.filename = p.filename AND g.file_row_number = p.file_row_number"""
            decoded = _query(con, decode_sql(src))
        else:
            decoded = _query(con, decode_sql("SELECT * FROM (SELECT NULL::VARCHAR AS request_key, NULL::VARCHAR "
                                             "AS source, NULL::VARCHAR AS endpoint, NULL::VARCHAR AS subject, "
                                             "NULL::TIMESTAMPTZ AS good_fetched_at, NULL::INTEGER AS good_status, "
                                             "NULL::VARCHAR AS body) WHERE FALSE"))
        attempts = _query(
            con,
            f"""SELECT request_key, status, error_kind, attempts, fetched_at FROM idx
            WHERE request_key IN (SELECT request_key FROM newest WHERE {FAILING_SQL})""",
        )
    finally:
        con.close()
    requests = requests.select(
        [pl.col(c).cast(RAW_SCHEMA.get(c, UTC_US)) if c != "good_status" else pl.col(c).cast(pl.Int32)
         for c in RESPONSE_COLUMNS if c != "body"]
    )
    return parse_decoded(decoded, requests), attempts.lazy()


def build_core_from_archive(
    catalogue: Mapping[str, pl.DataFrame], raw_dir: Path, *, now: datetime
) -> dict[str, pl.DataFrame]:
    """`build_core` reading the archive directly (streaming; what the Dagster asset uses)."""
    del now
    facts, attempts = parse_archive(raw_dir)
    return assemble_core(catalogue, facts, archive=attempts)


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

