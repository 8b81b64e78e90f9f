"""The contract every upstream source fills, so planning, the crawl loop, the archive and core assembly
can iterate over `registry.SOURCES` and know no host by name.

A source is declared once, in its own module, as a `Source` subclass instance (`SOURCE = ...`):

- **settings**: `env_url` / `default_url` (the base URL, read by `pipelines.settings`), a default
  concurrency cap;
- **catalogue**: `kind` says what a package names it by: `"repository"` sources own the catalogue
  `repo_url` hosts in `web_hosts` (and `parse_repo_path` turns the URL's path segments into an
  owner/name or a problem); the `"package"` source (PyPI) is named by the catalogue's `pypi_name`;
- **requests**: `endpoints(with_token=, tuning=)` (the archive endpoint names of one subject),
  `request_key(endpoint, ident)` (ARCHITECTURE.md, "Raw archive"), `remember(...)` (what a stored
  answer tells the next plan);
- **fetching**: `connect(url, settings, wiring)` builds its client over the shared HTTP plumbing
  (`pipelines.sources.http`), `crawl(unit, client, run)` asks for one unit's due endpoints and hands
  every answer to `run.archive(...)`; `units(client, jobs, tuning)` may batch jobs (GitHub GraphQL);
  `stats(client)` reports what it cost (`pipelines.sources.crawling`);
- **reading**: `structures` (DuckDB `json_transform` structures of the endpoints decoded column-wise)
  and `read(bodies)` (stored bodies -> the typed fact frames of `pipelines.sources.facts`).

The crawl half lives in the top of each module, the reading half under the
`# --- reading: stored bodies -> facts` marker at the bottom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from pipelines.sources.crawling import Job, Run, SourceStats, Wiring
    from pipelines.sources.http.tuning import Tuning
    from pipelines.sources.webpaths import RepoProblem

from pipelines.sources.facts import SourceFacts
from pipelines.sources.http.health import DEFAULT_RULE, EndpointRule
from pipelines.sources.reading import Bodies, JsonShape

SourceKind = Literal["repository", "package"]


class Source:
    """Base of every source declaration (see the module docstring). Subclasses set the class
    variables and override the methods they need; defaults fit a simple one-request-per-endpoint host."""

    name: ClassVar[str]  # archive folder raw/<name>/, raw asset raw/<name>, request-key prefix
    kind: ClassVar[SourceKind] = "repository"
    env_url: ClassVar[str]  # environment variable of the base URL
    default_url: ClassVar[str]
    web_hosts: ClassVar[tuple[str, ...]] = ()  # catalogue repo_url hosts this source owns
    concurrency: ClassVar[int] = 8  # requests in flight (Tuning may override per source)
    # a key fetched less than this many hours ago is never due, whatever `--max-age-hours` or
    # `--force` say (an upstream that updates once a day and asks to be asked at most daily)
    min_age_hours: ClassVar[float] = 0.0
    # its answers count towards `core.packages.last_fetched` / `is_stale` (fields of the v4 record);
    # a source the v4 record does not show (download counts) leaves them as they were
    marks_fetched: ClassVar[bool] = True

    def request_key(self, endpoint: str, ident: str) -> str:
        return f"{self.name}:{endpoint}:{ident}".lower()

    # --- crawl side (pipelines.crawler; docs/ADDING_A_SOURCE.md) ---------------------------------
    catalogue_column: ClassVar[str] = ""  # "package" sources: the catalogue.packages column naming them
    platform_domains: ClassVar[tuple[str, ...]] = ()  # the platform's other domains (pages, CDN): no repos
    retired_domains: ClassVar[tuple[str, ...]] = ()  # the platform's domains that are gone
    remembered: ClassVar[tuple[str, ...]] = ()  # endpoints whose newest good body steers the next plan
    remembered_redirects: ClassVar[tuple[str, ...]] = ()  # endpoints whose followed redirect is reused

    def cap(self, tuning: Tuning) -> int:
        """Requests in flight: `concurrency`, unless `Tuning.concurrency` overrides it for this source."""
        return tuning.concurrency.get(self.name, self.concurrency)

    def parse_repo_path(self, segments: list[str]) -> tuple[str, str] | RepoProblem:
        """(owner, name) from a catalogue URL's decoded path segments, or why they name no repository."""
        raise NotImplementedError(f"{self.name} owns no catalogue web hosts")

    def endpoints(self, *, with_token: bool, tuning: Tuning) -> tuple[str, ...]:
        """The archive endpoints of one subject (all of them; the planner keeps the due ones)."""
        raise NotImplementedError

    def subject(self, ident: str) -> str:
        """The package-side key of a "package" source's job (repository jobs use the catalogue repo_key)."""
        return f"{self.name}:{ident}"

    def remember(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Facts for the next plan from the newest good body of a `remembered` endpoint."""
        return None

    def remember_redirect(self, endpoint: str, location: str) -> dict[str, Any] | None:
        """Facts for the next plan from where a `remembered_redirects` endpoint's redirect led."""
        return None

    def job_facts(self, ident: str, endpoints: tuple[str, ...], facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The remembered facts of one subject: those of a due endpoint first, then the others."""
        for endpoint in sorted(self.remembered + self.remembered_redirects, key=lambda e: e not in endpoints):
            found = facts.get(self.request_key(endpoint, ident))
            if found:
                return dict(found)
        return {}

    def connect(self, url: str, settings: Any, wiring: Wiring) -> Any:
        """This source's client over `wiring.upstream(...)` (`settings`: `pipelines.settings.Settings`)."""
        raise NotImplementedError

    async def prepare(self, client: Any, jobs: list[Job]) -> None:
        """Once before the jobs run (e.g. ask what quota every token has left)."""

    def units(self, client: Any, jobs: list[Job], tuning: Tuning) -> list[tuple[Any, int]]:
        """The units of work and how many jobs each one counts for (a batch may hold many)."""
        return [(job, 1) for job in jobs]

    async def crawl(self, unit: Any, client: Any, run: Run) -> None:
        """Ask for one unit's due endpoints and hand every answer to `run.archive`; never raises
        but `BudgetExceeded`."""
        raise NotImplementedError

    def stats(self, client: Any) -> SourceStats:
        """What the crawl cost this source (requests, statuses, quota, waits)."""
        raise NotImplementedError

    def endpoint_rule(self, endpoint: str) -> EndpointRule:
        """When one endpoint's answers say the endpoint itself is broken (`pipelines.sources.http.health`):
        by default no answer, HTML, or server errors after retries on the first answers, no success."""
        return DEFAULT_RULE


    # --- reading (core): how a stored body becomes facts. `assets.core.decode` builds its one SQL pass
    # over all bodies from these declarations, `assets.core.parse` hands `read` this source's bodies.
    # The defaults read nothing (every body is still checked to be valid JSON).
    shapes: ClassVar[Mapping[str, JsonShape]] = {}  # endpoint -> the JSON type its body must have
    # endpoint -> DuckDB `json_transform` structure: decoded column-wise into `Bodies.docs[endpoint]`
    structures: ClassVar[Mapping[str, str]] = {}
    # endpoint -> SQL reshaping the decoded value `{d}` (e.g. a MAP into entries polars can read)
    finish: ClassVar[Mapping[str, str]] = {}
    row_endpoints: ClassVar[tuple[str, ...]] = ()  # endpoints whose JSON text `read` gets in `Bodies.rows`

    def read(self, bodies: Bodies) -> SourceFacts:
        """This source's newest good bodies -> its facts (`reading.read_rows` for row-by-row hosts)."""
        return SourceFacts()
