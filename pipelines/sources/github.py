"""GitHub: REST endpoints (repo, participation, contributors, newest commit) and GraphQL batches.

Every method returns a `Fetched`; nothing raises except `BudgetExceeded`. Bodies are kept as the
text GitHub sent (contributors: all pages merged into one JSON list, in GitHub's order).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_random_exponential

from pipelines.sources.http.fetched import Fetched, require_body
from pipelines.sources.http.pages import merge_pages
from pipelines.sources.http.upstream import Upstream

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

REST_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

# the fields of the GraphQL `repository` node archived as `graphql_repo` bodies
GRAPHQL_REPO_FIELDS = """
      databaseId
      nameWithOwner
      name
      owner { login }
      url
      description
      homepageUrl
      stargazerCount
      forkCount
      isArchived
      isFork
      isDisabled
      isEmpty
      pushedAt
      createdAt
      updatedAt
      watchers { totalCount }
      issues(states: OPEN) { totalCount }
      licenseInfo { spdxId name }
      repositoryTopics(first: 20) { nodes { topic { name } } }
      latestRelease { tagName name publishedAt isPrerelease }
      defaultBranchRef {
        name
        target { ... on Commit { oid committedDate authoredDate messageHeadline } }
      }"""


def valid_name(owner: str, name: str) -> bool:
    return bool(NAME_RE.match(owner) and NAME_RE.match(name)) and name not in (".", "..") and owner not in (
        ".",
        "..",
    )


def repo_path(full_name: str) -> str:
    owner, _, name = full_name.partition("/")
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


@dataclass(frozen=True)
class GraphQLResult:
    owner: str
    name: str
    fetched: Fetched


class GitHub:
    def __init__(self, rest: Upstream, graphql: Upstream | None, *, computing_attempts: int = 4,
                 computing_base_s: float = 2.0, computing_max_s: float = 15.0, max_pages: int = 50) -> None:
        self.rest = rest
        self.graphql = graphql
        self.computing_attempts = computing_attempts
        self.computing_base_s = computing_base_s
        self.computing_max_s = computing_max_s
        self.max_pages = max_pages
        self.graphql_cost = 0.0

    async def prime_quota(self) -> None:
        """Ask `GET /rate_limit` once per token, so rotation starts from what each token has left.

        GitHub does not charge that request against any limit, and it tells the REST (`core`) and
        GraphQL quota of the token: a token a previous run spent this hour is then passed over from
        the first request instead of answering a 403. Failures (a GitHub Enterprise with rate
        limiting off answers 404) leave the quota unknown, as before.
        """
        pool, rest = self.rest.pool, self.rest
        if pool is None:
            return
        url = rest.absolute("/rate_limit")

        async def one(index: int) -> None:
            try:
                async with rest.semaphore:
                    rest.stats.requests += 1
                    response = await rest.client.get(url, headers={**rest.headers, **REST_HEADERS,
                                                                   **pool.auth_header(index)})
            except httpx.HTTPError:
                rest.stats.statuses[0] += 1
                return
            rest.stats.statuses[response.status_code] += 1
            try:
                resources = orjson.loads(response.content).get("resources") if response.status_code == 200 else None
            except (orjson.JSONDecodeError, AttributeError):
                return
            for name in ("core", "graphql"):
                entry = resources.get(name) if isinstance(resources, dict) else None
                if isinstance(entry, dict):
                    pool.observe(index, name, entry.get("limit"), entry.get("remaining"), entry.get("reset"))

        await asyncio.gather(*(one(index) for index in range(pool.size)))

    async def repo(self, full_name: str, etag: str | None = None) -> Fetched:
        """GET /repos/{o}/{r}; a 301 (rename/transfer) is followed to /repositories/{id}."""
        fetched = await self.rest.get(repo_path(full_name), etag=etag, headers=REST_HEADERS)
        return require_body(fetched, lambda data: isinstance(data, dict), "repository body is not an object")

    async def participation(self, full_name: str, etag: str | None = None) -> Fetched:
        """stats/participation; 202 = being computed: bounded polls, then error_kind `computing`.

        204 (empty repository) is archived as `{"all": [], "owner": []}`.
        """
        path = repo_path(full_name) + "/stats/participation"
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.computing_attempts)),
            wait=wait_random_exponential(multiplier=self.computing_base_s, max=self.computing_max_s),
            retry=retry_if_result(lambda f: f.status == 202 and f.error_kind is None),
            retry_error_callback=lambda state: state.outcome.result(),
            sleep=self.rest._sleep,
        )
        polls = 0
        fetched: Fetched | None = None
        async for attempt in retrying:
            with attempt:
                polls += 1
                fetched = await self.rest.get(path, etag=etag, headers=REST_HEADERS, expect_json=True)
                fetched.attempts += polls - 1
            if not attempt.retry_state.outcome.failed:
                attempt.retry_state.set_result(fetched)
        assert fetched is not None
        if fetched.status == 202 and fetched.error_kind is None:
            fetched.error_kind = "computing"
            fetched.error = f"statistics still being computed after {polls} polls"
            fetched.data = None
        elif fetched.status == 204 and fetched.error_kind is None:
            # an empty repository has no statistics: archived as empty series (like contributors' [])
            fetched.text = '{"all": [], "owner": []}'
            fetched.data = {"all": [], "owner": []}
        elif fetched.ok and not (isinstance(fetched.data, dict) and isinstance(fetched.data.get("all"), list)):
            fetched.error_kind, fetched.error = "malformed", "participation body has no 'all' list"
        return fetched

    async def contributors(self, full_name: str, etag: str | None = None) -> Fetched:
        """All pages of /contributors?per_page=100 merged (204 = empty -> []); ETag on page 1."""
        path = repo_path(full_name) + "/contributors?per_page=100"
        first = await self.rest.get(path, etag=etag, headers=REST_HEADERS)
        if first.status == 204 and first.error_kind is None:
            first.text, first.data = "[]", []
            return first
        if first.status == 403 and "too large" in (first.text or "").lower():
            first.error_kind = "blocked"
            first.error = "HTTP 403: contributor list too large to list via the API"
            return first
        return await merge_pages(self.rest, first, what="contributors page", max_pages=self.max_pages,
                                 headers=REST_HEADERS,
                                 overflow_error=f"more than {self.max_pages} contributor pages; stopped")

    async def newest_commit(self, full_name: str, branch: str | None, etag: str | None = None) -> Fetched:
        """The newest commit on the default branch (409 = empty repository -> [])."""
        path = repo_path(full_name) + "/commits?per_page=1"
        if branch:
            path += "&sha=" + quote(branch, safe="")
        fetched = await self.rest.get(path, etag=etag, headers=REST_HEADERS)
        if fetched.status == 409:
            fetched.text, fetched.data = "[]", []
            fetched.error_kind = fetched.error = None
            return fetched
        return require_body(fetched, lambda data: isinstance(data, list), "commits body is not a list")

    # GraphQL ---------------------------------------------------------------------------------
    @staticmethod
    def graphql_query(repos: list[tuple[str, str]]) -> str:
        """One query with an alias per repository (names are validated and JSON-quoted).

        Batch size (`Tuning.graphql_batch`, 100): GitHub charges a query the number of connection
        requests it needs divided by 100, rounded, at least 1 point, and refuses one of more than
        500,000 nodes. Each repository here asks for one connection (`repositoryTopics(first: 20)`;
        `watchers` and `issues` ask only `totalCount`, with no `first`, which the documented
        calculation does not count), so 100 repositories cost 1 point and at most 2,000 nodes: half
        the points per repository of batches of 50, with an answer of ~90 KB. Past 149 repositories
        the rounding makes it 2 points, so 100 is the sweet spot; larger batches would also make
        each query a bigger share of GitHub's 10 s query timeout and one failed query lose more.
        """
        parts = ["query {", "  rateLimit { cost remaining resetAt }"]
        for i, (owner, name) in enumerate(repos):
            parts.append(
                f"  r{i}: repository(owner: {orjson.dumps(owner).decode()}, name: {orjson.dumps(name).decode()})"
                f" {{{GRAPHQL_REPO_FIELDS}\n  }}"
            )
        parts.append("}")
        return "\n".join(parts)

    async def graphql_repos(self, repos: list[tuple[str, str]]) -> list[GraphQLResult]:
        """Repository nodes for a batch; per-repo errors (NOT_FOUND, ...) are classified."""
        assert self.graphql is not None
        query = self.graphql_query(repos)
        for _ in range(self.graphql.tuning.quota_max_waits + 1):
            fetched = await self.graphql.request("POST", "", json_body={"query": query},
                                                 headers={"Content-Type": "application/json"})
            body = fetched.data if isinstance(fetched.data, dict) else None
            limited = body is not None and any(
                isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in body.get("errors") or [])
            if not limited or self.graphql.pool is None:
                break
            # the points are spent: wait for the reset (or stop at the budget) and ask again
            self.graphql.pool.exhausted_headers("graphql", fetched.headers)
        results: list[GraphQLResult] = []
        url = fetched.url
        body = fetched.data if isinstance(fetched.data, dict) else None
        if not fetched.ok or body is None or not isinstance(body.get("data"), dict):
            kind = fetched.error_kind or "malformed"
            message = fetched.error or _graphql_errors(body) or "GraphQL answer without data"
            for owner, name in repos:
                results.append(GraphQLResult(owner, name, Fetched(
                    url=url, status=fetched.status, headers=fetched.headers, attempts=fetched.attempts,
                    error_kind=kind, error=message)))
            self.graphql_cost += 1
            return results
        data = body["data"]
        rate = data.get("rateLimit") if isinstance(data.get("rateLimit"), dict) else None
        cost = rate.get("cost") if rate else None
        self.graphql_cost += float(cost) if isinstance(cost, int | float) else 1.0
        errors_by_alias: dict[str, dict[str, Any]] = {}
        for err in body.get("errors") or []:
            if isinstance(err, dict) and err.get("path"):
                errors_by_alias[str(err["path"][0])] = err
        for i, (owner, name) in enumerate(repos):
            alias = f"r{i}"
            node = data.get(alias)
            headers = dict(fetched.headers)
            if isinstance(node, dict):
                results.append(GraphQLResult(owner, name, Fetched(
                    url=url, status=fetched.status, headers=headers, attempts=fetched.attempts,
                    text=orjson.dumps(node).decode(), data=node)))
                continue
            err = errors_by_alias.get(alias, {})
            etype = str(err.get("type") or "")
            if etype == "NOT_FOUND":
                kind = "gone"
            elif etype in ("FORBIDDEN", "UNAUTHORIZED"):
                kind = "blocked"
            elif etype in ("RATE_LIMITED",):
                kind = "rate_limited"
            elif err:
                kind = "transient"
            else:
                kind = "malformed"
            message = f"GraphQL {etype or 'error'}: {str(err.get('message') or 'no repository node')[:200]}"
            results.append(GraphQLResult(owner, name, Fetched(
                url=url, status=fetched.status, headers=headers, attempts=fetched.attempts,
                error_kind=kind, error=message)))
        return results


def _graphql_errors(body: dict[str, Any] | None) -> str | None:
    if not body or not body.get("errors"):
        return None
    first = body["errors"][0]
    if isinstance(first, dict):
        return f"GraphQL {first.get('type') or 'error'}: {str(first.get('message'))[:200]}"
    return "GraphQL error"


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

from typing import ClassVar  # noqa: E402

import polars as pl  # noqa: E402

from pipelines.sources.facts import (  # noqa: E402
    COMMIT_FACTS,
    PARTICIPANT_FACTS,
    REPO_FACTS,
    WEEK_FACTS,
    SourceFacts,
    cast_columns,
)
from pipelines.sources.reading import Bodies, JsonShape, is_bot_expr, malformed, structure  # noqa: E402

_S, _I, _B = pl.String(), pl.Int64(), pl.Boolean()

# only the fields core needs are decoded (by DuckDB, column-wise: GitHub is the volume)
REST_REPO_DTYPE = pl.Struct(
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
GRAPHQL_REPO_DTYPE = pl.Struct(
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

_doc = pl.col("doc").struct
_NO_TEXT = pl.lit(None, pl.String)

# REST and GraphQL describe the same repository under different names; the GraphQL answer also
# carries the default branch's last commit and the latest release, which REST needs extra calls for
REST_REPO_FACTS: dict[str, pl.Expr] = {
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
GRAPHQL_REPO_FACTS: dict[str, pl.Expr] = {
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


def read_repos(docs: pl.DataFrame, fields: dict[str, pl.Expr]) -> pl.DataFrame:
    """Repository facts from decoded REST or GraphQL bodies (`fields`: one of the maps above)."""
    repos = docs.select("subject", *[expr.alias(name) for name, expr in fields.items()], "good_fetched_at")
    return cast_columns(repos, REPO_FACTS)


def read_participation(docs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Weekly commit counts, dated: GitHub sends only the counts, ending at the fetch."""
    has_weeks = pl.col("doc").struct.field("all").is_not_null()
    ok, bad = docs.filter(has_weeks), docs.filter(~has_weeks)
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


def read_contributors(docs: pl.DataFrame) -> pl.DataFrame:
    """Participants in GitHub's order (its position is the ranking); anonymous entries have no login."""
    person = pl.element().struct
    people = (
        docs.select(
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


def read_commits(docs: pl.DataFrame) -> pl.DataFrame:
    """The last commit date: the commit list is newest first, and only its head is fetched."""
    commits = docs.select(
        "subject",
        pl.col("doc").list.first().struct.field("commit").struct.field("committer").struct.field("date")
        .alias("last_commit_at"),
    )
    return cast_columns(commits, COMMIT_FACTS)


class GitHubReading:
    """GitHub's reading half of its `Source` (REST and GraphQL bodies, decoded column-wise).
    `releases_latest` is archived but not read: GraphQL's `latestRelease` is what core keeps."""

    shapes: ClassVar[dict[str, JsonShape]] = {
        "repo": "object", "graphql_repo": "object", "participation": "object",
        "contributors": "list", "commits": "list",
    }
    structures: ClassVar[dict[str, str]] = {
        "repo": structure(REST_REPO_DTYPE),
        "graphql_repo": structure(GRAPHQL_REPO_DTYPE),
        "participation": structure(PARTICIPATION_DTYPE),
        "contributors": structure(CONTRIBUTORS_DTYPE),
        "commits": structure(COMMITS_DTYPE),
    }

    def read(self, bodies: Bodies) -> SourceFacts:
        weeks, bad_weeks = read_participation(bodies.docs["participation"])
        return SourceFacts(
            # GraphQL last: on equal fetch times its richer description wins
            repos=pl.concat([read_repos(bodies.docs["repo"], REST_REPO_FACTS),
                             read_repos(bodies.docs["graphql_repo"], GRAPHQL_REPO_FACTS)]),
            commits=read_commits(bodies.docs["commits"]),
            weeks=weeks,
            participants=read_contributors(bodies.docs["contributors"]),
            malformed=bad_weeks,
        )
