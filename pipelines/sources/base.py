"""The contract every upstream source fills, so planning, the crawl loop, the archive and core assembly
can iterate over `registry.SOURCES` and know no host by name.

A source is declared once, in its own module, as a `Source` subclass instance (`SOURCE = ...`):

- **settings**: `env_url` / `default_url` (the base URL, read by `pipelines.settings`), a default
  concurrency cap;
- **catalogue**: `kind` says what a package names it by: `"repository"` sources own the catalogue
  `repo_url` hosts in `web_hosts` (and `parse_repo_path` turns the URL's path segments into an
  owner/name or a problem); the `"package"` source (PyPI) is named by the catalogue's `pypi_name`;
- **requests**: `endpoints(with_token)` (the archive endpoint names due for one subject),
  `request_key(endpoint, ident)` (ARCHITECTURE.md, "Raw archive");
- **fetching**: `connect(...)` builds its client over the shared HTTP plumbing
  (`pipelines.sources.http`), `crawl(job, run)` asks for one subject's due endpoints and hands every
  answer to `run.archive(...)`; `units(jobs)` may batch jobs (GitHub GraphQL);
- **reading**: `structures` (DuckDB `json_transform` structures of the endpoints decoded column-wise)
  and `read(bodies)` (stored bodies -> the typed fact frames of `pipelines.sources.facts`).

The crawl half lives in the top of each module, the reading half under the
`# --- reading: stored bodies -> facts` marker at the bottom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pipelines.sources.facts import SourceFacts
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

    def request_key(self, endpoint: str, ident: str) -> str:
        return f"{self.name}:{endpoint}:{ident}".lower()

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
