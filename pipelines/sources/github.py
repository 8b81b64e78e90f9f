"""GitHub: REST endpoints (repo, participation, contributors, newest commit) and GraphQL batches.

Every method returns a `Fetched`; nothing raises except `BudgetExceeded`. Bodies are kept as the
text GitHub sent (contributors: all pages merged into one JSON list, in GitHub's order).

Without a token, repositories go through REST (repo, participation, contributors, newest commit).
With one, repository metadata (and the newest commit: `defaultBranchRef.target`) come in GraphQL
batches (`graphql_repo`) and REST is kept for participation and contributors.

Quota saver: a non-empty repository with no push for 52 weeks + `Tuning.idle_margin_days` has a
participation of 52 zeros; that row is archived without a request (status 200, `attempts` 0, header
`x-pulse-derived`). Most catalogue packages are idle, so this saves ~0.7 requests per package.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import orjson
import polars as pl
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_random_exponential

from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, Run, SourceStats, Wiring, fetch_into
from pipelines.sources.facts import (
    COMMIT_FACTS,
    PARTICIPANT_FACTS,
    REPO_FACTS,
    WEEK_FACTS,
    SourceFacts,
    cast_columns,
)
from pipelines.sources.http.accounts import Accounts, logins_path
from pipelines.sources.http.fetched import Fetched, require_body
from pipelines.sources.http.health import EndpointRule
from pipelines.sources.http.hosts import netloc
from pipelines.sources.http.pace import Pace, safe_key
from pipelines.sources.http.pages import merge_pages
from pipelines.sources.http.quota import BudgetExceeded, TokenPool
from pipelines.sources.http.slots import Slots, slots_available
from pipelines.sources.http.transport import Paced
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.reading import Bodies, JsonShape, is_bot_expr, malformed, structure
from pipelines.sources.times import parse_iso
from pipelines.sources.webpaths import RepoProblem, owner_and_name

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
MAX_CONCURRENCY = 100  # requests in flight (REST + GraphQL) GitHub tolerates before a secondary limit
REST_ENDPOINTS = ("repo", "participation", "contributors", "commits")
TOKEN_ENDPOINTS = ("graphql_repo", "participation", "contributors")
# a whole GraphQL query answered 401/403/404 (or HTML, no answer, 5xx after retries) is the endpoint's
# failure, never a repository's: one such query with no success opens the circuit, and the
# repositories go through REST instead (`repo` + `commits`, in the same run)
GRAPHQL_RULE = EndpointRule(statuses=frozenset({401, 403, 404}), threshold=1, fallback="REST repo + commits")

# catalogue URLs: owner 1-39 of [A-Za-z0-9-], not starting with "-" (GitHub also forbids a trailing
# or doubled hyphen today, but some old accounts have them, so those are accepted); repository name
# 1-100 of [A-Za-z0-9._-], not "." or "..".
WEB_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")
WEB_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
RESERVED_OWNERS = frozenset({
    "about", "account", "apps", "blog", "codespaces", "collections", "contact", "customer-stories",
    "dashboard", "enterprise", "events", "explore", "features", "issues", "join", "login", "logout",
    "marketplace", "new", "notifications", "organizations", "orgs", "pricing", "pulls", "readme",
    "search", "security", "sessions", "settings", "site", "sponsors", "team", "topics", "trending",
    "users",
})

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
    def __init__(self, rest: Upstream, graphql: Upstream | None, *, pool: TokenPool | None = None,
                 computing_attempts: int = 4, computing_base_s: float = 2.0, computing_max_s: float = 15.0,
                 max_pages: int = 50, accounts: Accounts | None = None) -> None:
        self.rest = rest
        self.graphql = graphql
        self.pool = pool
        self.accounts = accounts
        self.computing_attempts = computing_attempts
        self.computing_base_s = computing_base_s
        self.computing_max_s = computing_max_s
        self.max_pages = max_pages
        self.graphql_cost = 0.0

    async def _ask(self, path: str, index: int) -> Any:
        """GET `path` with token `index` once (no retries: a failure leaves what it would tell
        unknown); the JSON body of a 200, else None. Counted like every request (and paced by the
        transport)."""
        pool, rest = self.rest.pool, self.rest
        assert pool is not None
        try:
            async with rest.semaphore:
                rest.stats.requests += 1
                response = await rest.client.get(rest.absolute(path), headers={**REST_HEADERS,
                                                                               **pool.auth_header(index)})
        except httpx.HTTPError:
            rest.stats.statuses[0] += 1
            return None
        except BudgetExceeded:
            return None  # the pace would overrun the time budget: the crawl's first job stops the source
        rest.stats.statuses[response.status_code] += 1
        if path != "/rate_limit" and response.status_code == 200:
            rest.stats.quota_spent += 1  # `/user` is charged, like any REST request; `/rate_limit` is not
        try:
            return orjson.loads(response.content) if response.status_code == 200 else None
        except orjson.JSONDecodeError:
            return None

    async def identify(self) -> None:
        """Ask `GET /user` once per token: tokens answering the same `login` are one account, with one
        pace and one quota (GitHub counts both per user). A token that does not answer one stays
        `unidentified`: it gets its own quota view, and its pace counts against every account."""
        pool = self.rest.pool
        if pool is None or self.accounts is None or not pool.authenticated:
            return

        async def one(index: int) -> str | None:
            if pool.quota(index, "core").available(pool.clock()) <= 0:
                return None  # spent (GET /rate_limit said so): /user would answer 403 until the reset
            body = await self._ask("/user", index)
            login = body.get("login") if isinstance(body, dict) else None
            return login if isinstance(login, str) and NAME_RE.match(login) else None

        logins = await asyncio.gather(*(one(index) for index in range(pool.size)))
        for index, login in enumerate(logins):
            self.accounts.bind(index, login)
        self.accounts.save()  # for `pulse status` (the logins only; accounts.record_logins)
        pool.set_accounts([login.lower() if login else None for login in logins])

    async def prime_quota(self) -> None:
        """Ask `GET /rate_limit` once per token, so rotation starts from what each has left.

        GitHub does not charge that request against the primary quota, and it tells the REST (`core`)
        and GraphQL quota of the token's account: one a previous run spent this hour is then passed
        over from the first request instead of answering a 403 (and is not asked `GET /user`, which
        is charged). Failures (a GitHub Enterprise with rate limiting off answers 404) leave the quota
        unknown, as before.
        """
        pool = self.rest.pool
        if pool is None:
            return

        async def one(index: int) -> None:
            body = await self._ask("/rate_limit", index)
            resources = body.get("resources") if isinstance(body, dict) else None
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
                fetched = await self.rest.get(path, etag=etag, headers=REST_HEADERS)
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
        fetched = await self._graphql_post(self.graphql_query(repos))
        body = fetched.data if isinstance(fetched.data, dict) else None
        if not fetched.ok or body is None or not isinstance(body.get("data"), dict):
            # the whole query failed: no answer about any one repository (never `gone`)
            kind = fetched.error_kind if fetched.error_kind in ("transient", "rate_limited") else "endpoint"
            if fetched.ok:
                kind = "malformed"
            message = fetched.error or _graphql_errors(body) or "GraphQL answer without data"
            self.graphql_cost += 1
            excerpt = (fetched.text or "")[:500] or None  # the evidence, should the endpoint be down
            return [GraphQLResult(owner, name, Fetched(
                url=fetched.url, status=fetched.status, headers=fetched.headers, attempts=fetched.attempts,
                text=excerpt, error_kind=kind, error=message)) for owner, name in repos]
        data = body["data"]
        rate = data.get("rateLimit") if isinstance(data.get("rateLimit"), dict) else None
        cost = rate.get("cost") if rate else None
        self.graphql_cost += float(cost) if isinstance(cost, int | float) else 1.0
        errors_by_alias: dict[str, dict[str, Any]] = {}
        for err in body.get("errors") or []:
            if isinstance(err, dict) and err.get("path"):
                errors_by_alias[str(err["path"][0])] = err
        return [GraphQLResult(owner, name, _node_fetched(fetched, data.get(f"r{i}"), errors_by_alias.get(f"r{i}", {})))
                for i, (owner, name) in enumerate(repos)]

    async def _graphql_post(self, query: str) -> Fetched:
        """POST the query; when GitHub says the points are spent, wait for the reset (or stop at the
        budget) and ask again, at most `Tuning.quota_max_waits` times."""
        assert self.graphql is not None
        for _ in range(self.graphql.tuning.quota_max_waits + 1):
            fetched = await self.graphql.request("POST", "", json_body={"query": query},
                                                 headers={"Content-Type": "application/json"})
            body = fetched.data if isinstance(fetched.data, dict) else None
            limited = body is not None and any(
                isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in body.get("errors") or [])
            if not limited or self.graphql.pool is None:
                break
            self.graphql.pool.exhausted_headers("graphql", fetched.headers)
        return fetched


GRAPHQL_ERROR_KINDS = {"NOT_FOUND": "gone", "FORBIDDEN": "blocked", "UNAUTHORIZED": "blocked",
                       "RATE_LIMITED": "rate_limited"}


def _node_fetched(answer: Fetched, node: Any, err: dict[str, Any]) -> Fetched:
    """One repository's part of a GraphQL answer: its node, or its error classified."""
    headers = dict(answer.headers)
    if isinstance(node, dict):
        return Fetched(url=answer.url, status=answer.status, headers=headers, attempts=answer.attempts,
                       text=orjson.dumps(node).decode(), data=node)
    etype = str(err.get("type") or "")
    kind = GRAPHQL_ERROR_KINDS.get(etype) or ("transient" if err else "malformed")
    message = f"GraphQL {etype or 'error'}: {str(err.get('message') or 'no repository node')[:200]}"
    return Fetched(url=answer.url, status=answer.status, headers=headers, attempts=answer.attempts,
                   error_kind=kind, error=message)


def _graphql_errors(body: dict[str, Any] | None) -> str | None:
    if not body or not body.get("errors"):
        return None
    first = body["errors"][0]
    if isinstance(first, dict):
        return f"GraphQL {first.get('type') or 'error'}: {str(first.get('message'))[:200]}"
    return "GraphQL error"


def rest_nonempty(repo: dict[str, Any]) -> bool | None:
    size = repo.get("size")
    return size > 0 if isinstance(size, int) else None


def graphql_nonempty(node: dict[str, Any]) -> bool | None:
    empty = node.get("isEmpty")
    return (not empty) if isinstance(empty, bool) else None


def graphql_last_activity(node: dict[str, Any]) -> str | None:
    """The later of `pushedAt` and the newest default-branch commit of a GraphQL repository node."""
    target = ((node.get("defaultBranchRef") or {}).get("target") or {})
    stamps = [node.get("pushedAt"), target.get("committedDate") if isinstance(target, dict) else None]
    parsed = [(t, parse_iso(t)) for t in stamps if isinstance(t, str)]
    parsed = [(t, p) for t, p in parsed if p is not None]
    return max(parsed, key=lambda tp: tp[1])[0] if parsed else None


class GitHubCrawling(Source):
    name = "github"
    env_url = "GITHUB_API_URL"  # GitHub Enterprise: https://host/api/v3 (GraphQL: pipelines.settings)
    default_url = "https://api.github.com"
    web_hosts = ("github.com",)
    platform_domains = ("github.com", "github.io", "githubusercontent.com", "githubassets.com")
    concurrency = 64  # REST; with GraphQL's `Tuning.graphql_concurrency` at most MAX_CONCURRENCY
    remembered = ("repo", "graphql_repo")

    def parse_repo_path(self, segments: list[str]) -> tuple[str, str] | RepoProblem:
        return owner_and_name(self.name, segments, WEB_OWNER, WEB_NAME, RESERVED_OWNERS)

    def endpoints(self, *, with_token: bool, tuning: Tuning) -> tuple[str, ...]:
        return TOKEN_ENDPOINTS if with_token else REST_ENDPOINTS

    def endpoint_rule(self, endpoint: str) -> EndpointRule:
        return GRAPHQL_RULE if endpoint == "graphql_repo" else super().endpoint_rule(endpoint)

    def remember(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if endpoint == "repo":
            return {"full_name": body.get("full_name"), "default_branch": body.get("default_branch"),
                    "last_activity": body.get("pushed_at"), "nonempty": rest_nonempty(body)}
        ref = body.get("defaultBranchRef") or {}
        return {"full_name": body.get("nameWithOwner"), "default_branch": ref.get("name"),
                "last_activity": graphql_last_activity(body), "nonempty": graphql_nonempty(body)}

    def connect(self, url: str, settings: Any, wiring: Wiring) -> GitHub:
        """REST, and GraphQL only with a token (GitHub requires one); both share the token pool.

        GitHub counts REST and GraphQL requests in flight together, so REST gets what GraphQL
        leaves of GitHub's limit, whatever the tuning says.
        """
        tuning, tokens = wiring.tuning, settings.github_tokens
        pool = wiring.token_pool(tokens)
        home = getattr(settings, "home", None)
        accounts = Accounts(tokens, record=logins_path(home, url) if tokens and home else None)
        graphql_size = max(1, min(tuning.graphql_concurrency, MAX_CONCURRENCY // 2)) if tokens else 0
        rest = wiring.upstream(self.name, url, max(1, min(self.cap(tuning), MAX_CONCURRENCY - graphql_size)),
                               pool=pool, resource="core")
        graphql = (wiring.upstream(f"{self.name}-graphql", settings.github_graphql_url, graphql_size,
                                   pool=pool, resource="graphql") if tokens else None)
        self._pace(rest, graphql, pool, accounts, settings, wiring)
        return GitHub(rest, graphql, pool=pool, computing_attempts=tuning.computing_attempts,
                      computing_base_s=tuning.computing_base_s, computing_max_s=tuning.computing_max_s,
                      max_pages=tuning.max_pages, accounts=accounts)

    @staticmethod
    def _pace(rest: Upstream, graphql: Upstream | None, pool: TokenPool, accounts: Accounts, settings: Any,
              wiring: Wiring) -> None:
        """GitHub's secondary limits shared by every crawl process of the machine, applied by the
        transport to every request: the paces under PULSE_HOME/state/pace/<API host>/
        (`pipelines.sources.http.pace`) and the requests in flight per account, REST and GraphQL
        together, under PULSE_HOME/state/inflight/<API host>/ (`pipelines.sources.http.slots`)."""
        tuning = wiring.tuning
        host = safe_key(netloc(rest.base_url).replace(":", "_"))
        in_flight = getattr(settings, "github_max_in_flight", MAX_CONCURRENCY) if slots_available() else 0
        slots = Slots(Path(settings.home) / "state" / "inflight" / host, in_flight) if in_flight else None
        paces: dict[str, Pace] = {}
        if tuning.github_rest_per_minute is not None:  # None: the pace off (tests, benchmarks)
            per_minute = getattr(settings, "github_pace_per_minute", None)
            rest_limit = tuning.github_rest_per_minute if per_minute is None else per_minute
            window = getattr(settings, "github_pace_window_s", None) or tuning.github_pace_window_s
            root = Path(settings.home) / "state" / "pace" / host
            for up, resource, limit, what in ((rest, "core", rest_limit, "REST requests"),
                                              (graphql, "graphql", tuning.github_graphql_per_minute,
                                               "GraphQL queries")):
                if up is None or not limit:
                    continue
                paces[resource] = Pace(root / ("rest" if resource == "core" else "graphql"), limit, window,
                                       what=what, deadline=wiring.deadline, log=wiring.log)
        for up, resource in ((rest, "core"), (graphql, "graphql")):
            if up is not None and (resource in paces or slots is not None):
                up.paced = Paced(up.base_url, paces.get(resource), accounts, graphql=resource == "graphql",
                                 slots=slots)

        def estimate(index: int, resource: str) -> float:
            pace = paces.get(resource)
            return pace.estimate(accounts.key_of(index if pool.authenticated else None)) if pace else 0.0

        pool.estimate = estimate

    async def prepare(self, client: GitHub, jobs: list[Job]) -> None:
        if jobs:
            await client.prime_quota()  # free: what every token has left, before spending
            await client.identify()  # GET /user per token: which tokens share an account

    def units(self, client: GitHub, jobs: list[Job], tuning: Tuning) -> list[tuple[Any, int]]:
        """With GraphQL, repositories whose metadata is due go in batches of `Tuning.graphql_batch`."""
        if client.graphql is None:
            return [(job, 1) for job in jobs]
        units: list[tuple[Any, int]] = []
        batch: list[Job] = []
        for job in jobs:
            if "graphql_repo" in job.due and _valid(job):
                batch.append(job)
                if len(batch) >= tuning.graphql_batch:
                    units.append((batch, len(batch)))
                    batch = []
            else:
                units.append((job, 1))
        if batch:
            units.append((batch, len(batch)))
        return units

    async def crawl(self, unit: Job | list[Job], client: GitHub, run: Run) -> None:
        if isinstance(unit, Job):
            await self._rest(unit, client, run)
        else:
            await self._batch(unit, client, run)

    def stats(self, client: GitHub) -> SourceStats:
        stats = SourceStats.of(client.rest, client.graphql)
        stats.quota_spent += client.graphql_cost
        stats.quota_wait_s = client.pool.waited_s if client.pool is not None else 0.0
        stats.pace_wait_s = sum(up.paced.pace.waited_s for up in (client.rest, client.graphql)
                                if up is not None and up.paced is not None and up.paced.pace is not None)
        slots = {id(up.paced.slots): up.paced.slots for up in (client.rest, client.graphql)
                 if up is not None and up.paced is not None and up.paced.slots is not None}  # shared by both
        stats.slot_wait_s = sum(s.waited_s for s in slots.values())
        return stats

    async def _batch(self, jobs: list[Job], client: GitHub, run: Run) -> None:
        batch = [job for job in jobs if not run.stopped(self.name)]
        if not batch:
            return
        if run.endpoint_open(self.name, "graphql_repo"):
            await asyncio.gather(*(self._rest(self._through_rest(job), client, run) for job in batch))
            return
        names = [tuple((job.facts.get("full_name") or job.ident).split("/", 1)) for job in batch]
        results = await client.graphql_repos(names)
        follow_ups = []
        for job, result in zip(batch, results, strict=True):
            run.archive(job, "graphql_repo", result.fetched)
        fallback = run.endpoint_open(self.name, "graphql_repo")
        for job, result in zip(batch, results, strict=True):
            fetched = result.fetched
            if fallback and not fetched.ok:
                follow_ups.append(self._rest(self._through_rest(job), client, run))
                continue
            if fetched.ok:
                node, facts = fetched.data, job.facts
                facts["full_name"] = node.get("nameWithOwner") or facts.get("full_name")
                facts["default_branch"] = (node.get("defaultBranchRef") or {}).get("name") or facts.get(
                    "default_branch")
                facts["last_activity"] = graphql_last_activity(node) or facts.get("last_activity")
                facts["nonempty"] = graphql_nonempty(node)
            elif fetched.error_kind in ("gone", "blocked"):
                continue  # nothing else to ask about this repository now
            follow_ups.append(self._rest(job, client, run, metadata_done=True))
        await asyncio.gather(*follow_ups)

    def _through_rest(self, job: Job) -> Job:
        """GraphQL is down: the job's repository metadata is asked through REST `repo` + `commits`."""
        for endpoint in ("repo", "commits"):
            job.keys.setdefault(endpoint, self.request_key(endpoint, job.ident))
            job.due.setdefault(endpoint, None)
        job.due.pop("graphql_repo", None)
        return job

    async def _rest(self, job: Job, client: GitHub, run: Run, metadata_done: bool = False) -> None:
        if not _valid(job):
            run.bad_entry(job, "owner/name not usable for a GitHub request")
            return
        full = job.facts.get("full_name") or job.ident
        branch = job.facts.get("default_branch")
        if "repo" in job.due and not metadata_done:
            fetched = await client.repo(full, job.etag("repo"))
            run.archive(job, "repo", fetched)
            if fetched.ok:
                full = str(fetched.data.get("full_name") or full)
                branch = fetched.data.get("default_branch") or branch
                job.facts["last_activity"] = fetched.data.get("pushed_at") or job.facts.get("last_activity")
                job.facts["nonempty"] = rest_nonempty(fetched.data)
            elif not fetched.not_modified:
                return  # the repository is unavailable: do not spend quota on the rest now
        tasks = []
        if "participation" in job.due and _idle(job, run.tuning):
            run.archive(job, "participation", _idle_participation(full, job))
        elif "participation" in job.due:
            tasks.append(fetch_into(run, job, "participation", client.participation(full, job.etag("participation"))))
        if "contributors" in job.due:
            tasks.append(fetch_into(run, job, "contributors", client.contributors(full, job.etag("contributors"))))
        if "commits" in job.due:
            tasks.append(fetch_into(run, job, "commits", client.newest_commit(full, branch, job.etag("commits"))))
        await asyncio.gather(*tasks)


def _valid(job: Job) -> bool:
    owner, _, name = (job.facts.get("full_name") or job.ident).partition("/")
    return valid_name(owner, name)


def _idle(job: Job, tuning: Tuning) -> bool:
    """No push for more than 52 weeks (+ a margin): participation is known to be all zeros."""
    last_activity = job.facts.get("last_activity")
    if not tuning.derive_idle_participation or not last_activity or not job.facts.get("nonempty"):
        return False  # an empty repository answers 204: ask
    when = parse_iso(last_activity)
    limit = datetime.now(UTC) - timedelta(weeks=52, days=tuning.idle_margin_days)
    return when is not None and when < limit


def _idle_participation(full: str, job: Job) -> Fetched:
    """The participation GitHub would answer for an idle repository, without spending quota.

    Archived with status 200, `attempts` 0 and an `x-pulse-derived` header naming the evidence,
    so a reader can always tell it from an upstream answer.
    """
    zeros = [0] * 52
    body = orjson.dumps({"all": zeros, "owner": zeros}).decode()
    return Fetched(url=repo_path(full) + "/stats/participation", status=200, text=body, attempts=0,
                   headers={"x-pulse-derived": f"no push since {job.facts.get('last_activity')}"})


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

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
        "created_at": _S,
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
        "createdAt": _S,
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
    "created_at": _doc.field("created_at"),
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
    "created_at": _doc.field("createdAt"),
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


class GitHubSource(GitHubReading, GitHubCrawling):
    """Both halves of the source: crawled by `GitHubCrawling`, read by `GitHubReading`."""


SOURCE = GitHubSource()
