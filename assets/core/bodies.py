"""Upstream bodies -> fact frames, one reader per endpoint.

Each reader knows one upstream's field names and quirks and returns frames in the `facts` schemas,
so nothing downstream needs to know which host a fact came from. GitHub and PyPI (the volume) are
read column-wise from DuckDB's decoded structs (`decode.py`); GitLab, Bitbucket and Codeberg (small
volumes, looser shapes) row by row with orjson. A body of the wrong shape becomes a `malformed`
reason keyed by request, never an exception: one odd upstream answer must not stop a refresh.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import polars as pl

from assets.core.columns import cast_columns
from pipelines.sources.facts import (
    COMMIT_FACTS,
    MALFORMED_FACTS,
    PARTICIPANT_FACTS,
    PYPI_FACTS,
    RELEASE_FACTS,
    REPO_FACTS,
    SIMPLE_FACTS,
    WEEK_FACTS,
)

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


def malformed(frame: pl.DataFrame, reason: str) -> pl.DataFrame:
    """The rows of `frame` as malformed-body reasons (they become `core.crawl_errors` rows)."""
    return frame.select("request_key", pl.lit(reason).alias("reason"))


# --- GitHub (decoded by DuckDB) -------------------------------------------------------------------

_doc = pl.col("doc").struct
_NO_TEXT = pl.lit(None, pl.String)

# REST and GraphQL describe the same repository under different names; the GraphQL answer also
# carries the default branch's last commit and the latest release, which REST needs extra calls for
REST_REPO_FIELDS: dict[str, pl.Expr] = {
    "stars": _doc.field("stargazers_count"),
    "forks": _doc.field("forks_count"),
    "watchers": _doc.field("subscribers_count"),
    "open_issues": _doc.field("open_issues_count"),
    "description": _doc.field("description"),
    "homepage": _doc.field("homepage"),
    "archived": _doc.field("archived"),
    "is_fork": _doc.field("fork"),
    "default_branch": _doc.field("default_branch"),
    "pushed_at": _doc.field("pushed_at"),
    "graph_commit_at": _NO_TEXT,
    "latest_release": _NO_TEXT,
    "license": _doc.field("license").struct.field("spdx_id"),
    "topics": _doc.field("topics"),
    "full_name": _doc.field("full_name"),
}
GRAPHQL_REPO_FIELDS: dict[str, pl.Expr] = {
    "stars": _doc.field("stargazerCount"),
    "forks": _doc.field("forkCount"),
    "watchers": _doc.field("watchers").struct.field("totalCount"),
    "open_issues": _doc.field("issues").struct.field("totalCount"),
    "description": _doc.field("description"),
    "homepage": _doc.field("homepageUrl"),
    "archived": _doc.field("isArchived"),
    "is_fork": _doc.field("isFork"),
    "default_branch": _doc.field("defaultBranchRef").struct.field("name"),
    "pushed_at": _doc.field("pushedAt"),
    "graph_commit_at": _doc.field("defaultBranchRef").struct.field("target").struct.field("committedDate"),
    "latest_release": _doc.field("latestRelease").struct.field("tagName"),
    "license": _doc.field("licenseInfo").struct.field("spdxId"),
    "topics": _doc.field("repositoryTopics")
    .struct.field("nodes")
    .list.eval(pl.element().struct.field("topic").struct.field("name")),
    "full_name": _doc.field("nameWithOwner"),
}


def github_repos(ok: pl.DataFrame, fields: dict[str, pl.Expr]) -> pl.DataFrame:
    """Repository facts from decoded REST or GraphQL bodies (`fields`: one of the maps above)."""
    repos = ok.select("subject", *[expr.alias(name) for name, expr in fields.items()], "good_fetched_at")
    return cast_columns(repos, REPO_FACTS)


def github_participation(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Weekly commit counts, dated: GitHub sends only the counts, ending at the fetch."""
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
    return cast_columns(weeks, WEEK_FACTS), malformed(bad, "participation has no 'all' list")


def is_bot_expr(login: pl.Expr, kind: pl.Expr) -> pl.Expr:
    """Bots are kept (the export shows them) but flagged, so rankings can leave them out."""
    lower = login.str.to_lowercase()
    return (
        lower.str.ends_with("[bot]")
        | (kind.fill_null("") == "Bot")
        | lower.is_in(list(KNOWN_BOTS))
        | lower.str.ends_with("-bot")
    ).fill_null(False)


def github_contributors(ok: pl.DataFrame) -> pl.DataFrame:
    """Participants in GitHub's order (its position is the ranking); anonymous entries have no login."""
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
    return cast_columns(people, PARTICIPANT_FACTS)


def github_commits(ok: pl.DataFrame) -> pl.DataFrame:
    """The last commit date: the commit list is newest first, and only its head is fetched."""
    commits = ok.select(
        "subject",
        pl.col("doc").list.first().struct.field("commit").struct.field("committer").struct.field("date")
        .alias("last_commit_at"),
    )
    return cast_columns(commits, COMMIT_FACTS)


# --- PyPI (decoded by DuckDB) ---------------------------------------------------------------------


def pypi(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
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
        pl.when(info.field("requires_python").str.strip_chars() != "")
        .then(info.field("requires_python").str.strip_chars()).alias("requires_python"),
        info.field("classifiers").list.eval(pl.element().drop_nulls().str.strip_chars())
        .fill_null(pl.lit([], pl.List(pl.String))).alias("classifiers"),
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
        cast_columns(facts, PYPI_FACTS),
        cast_columns(releases, RELEASE_FACTS),
        malformed(bad, "PyPI JSON has no 'info' object"),
    )


PROJECT_STATUSES = ("active", "archived", "quarantined", "deprecated")  # PEP 792


def pypi_simple(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """PEP 691 Simple JSON -> the PEP 792 project status. No `project-status` (an index before API
    1.4) means `active`, as PEP 792 says; the reason is kept only when given."""
    has_name = pl.col("doc").struct.field("name").is_not_null()
    ok, bad = frame.filter(has_name), frame.filter(~has_name)
    status = pl.col("doc").struct.field("project-status").struct
    reason = status.field("reason").str.strip_chars()
    simple = ok.select(
        "subject",
        status.field("status").str.strip_chars().str.to_lowercase().fill_null("active").alias("pypi_status"),
        pl.when(reason != "").then(reason).alias("pypi_status_reason"),
    )
    return cast_columns(simple, SIMPLE_FACTS), malformed(bad, "PyPI Simple JSON has no 'name'")


# --- GitLab, Bitbucket, Codeberg (row by row) -----------------------------------------------------


def _loads(body: str) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _ts(value: object) -> str | None:
    return value if isinstance(value, str) else None


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


def _gitlab_or_bitbucket_commit_date(doc: list | dict) -> str | None:
    first = _first(doc)
    return _ts(first.get("committed_date") or first.get("date"))


def _codeberg_commit_date(doc: list) -> str | None:
    return _gitea_commit_date(doc[0] if doc else None)


# endpoint -> (the JSON type its body must have, body -> its newest commit's date)
LAST_COMMIT_READERS: dict[str, tuple[type | tuple[type, ...], Callable[..., str | None]]] = {
    "gitlab_commits": ((list, dict), _gitlab_or_bitbucket_commit_date),
    "bitbucket_commits": ((list, dict), _gitlab_or_bitbucket_commit_date),
    "codeberg_commits": (list, _codeberg_commit_date),
}


def _gitlab_repo(doc: dict) -> dict:
    license_ = doc.get("license") if isinstance(doc.get("license"), dict) else {}
    return {
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
        "license": license_.get("key"),
        "topics": [str(t) for t in (doc.get("topics") or doc.get("tag_list") or [])],
        "full_name": doc.get("path_with_namespace"),
    }


def _codeberg_repo(doc: dict) -> dict:
    licenses = doc.get("licenses") if isinstance(doc.get("licenses"), list) else []
    topics = doc.get("topics") if isinstance(doc.get("topics"), list) else []
    return {
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
        "license": str(licenses[0]) if licenses else None,
        "topics": [str(t) for t in topics],
        "full_name": doc.get("full_name"),
    }


def _bitbucket_repo(doc: dict) -> dict:
    branch = doc.get("mainbranch") if isinstance(doc.get("mainbranch"), dict) else {}
    return {
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
        "license": None,
        "topics": [],
        "full_name": doc.get("full_name"),
    }


# endpoint -> JSON object -> repository facts (what the host does not report stays null)
REPO_READERS: dict[str, Callable[[dict], dict]] = {
    "gitlab_project": _gitlab_repo,
    "codeberg_repo": _codeberg_repo,
    "bitbucket_repo": _bitbucket_repo,
}


def other_host_facts(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """GitLab, Bitbucket and Codeberg bodies (request_key, endpoint, subject, good_fetched_at, body)
    -> repository facts, commit facts, malformed reasons."""
    repos: list[dict] = []
    commits: list[dict] = []
    bad: list[str] = []
    for row in frame.iter_rows(named=True):
        endpoint = row["endpoint"]
        if endpoint in LAST_COMMIT_READERS:
            shape, last_commit_date = LAST_COMMIT_READERS[endpoint]
            doc = _loads(row["body"])
            if not isinstance(doc, shape):
                bad.append(row["request_key"])
                continue
            commits.append({"subject": row["subject"], "last_commit_at": last_commit_date(doc)})
        elif endpoint in REPO_READERS:
            doc = _loads(row["body"])
            if not isinstance(doc, dict):
                bad.append(row["request_key"])
                continue
            repos.append(
                {
                    **dict.fromkeys(REPO_FACTS),
                    **REPO_READERS[endpoint](doc),
                    "subject": row["subject"],
                    "good_fetched_at": row["good_fetched_at"],
                }
            )
        # anything else (e.g. gitlab_contributors: names without logins) is not exported
    try:
        repo_frame = pl.DataFrame(repos, schema=REPO_FACTS, strict=False)
    except Exception:
        # one record polars cannot type must not cost the others their facts
        repo_frame = pl.DataFrame(schema=REPO_FACTS)
        for rec in repos:
            try:
                repo_frame = repo_frame.vstack(pl.DataFrame([rec], schema=REPO_FACTS, strict=False))
            except Exception:
                bad.append(rec["subject"])
    return (
        repo_frame,
        pl.DataFrame(commits, schema=COMMIT_FACTS, strict=False),
        pl.DataFrame({"request_key": bad, "reason": ["body is not the expected JSON"] * len(bad)},
                     schema=MALFORMED_FACTS),
    )
