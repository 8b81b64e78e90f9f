"""The crawl of a small code forge that answers a repository and its commits (Bitbucket, Codeberg):
two endpoints, `<source>_repo` then `<source>_commits`, the commits asked only when the repository
is there. A forge declares its client class, its catalogue owner/name patterns and how it checks an
ident; this class does the rest."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol

from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, Run, SourceStats, Wiring, fetch_into
from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.webpaths import RepoProblem, owner_and_name


class ForgeClient(Protocol):
    upstream: Upstream

    async def repository(self, owner: str, name: str, etag: str | None = None) -> Fetched: ...

    async def commits(self, owner: str, name: str, since: Any, etag: str | None = None) -> Fetched: ...


class ForgeCrawling(Source):
    client_class: ClassVar[Any]  # (upstream, max_pages=...) -> a ForgeClient
    web_owner: ClassVar[re.Pattern]  # catalogue URLs: the owner / workspace segment
    web_name: ClassVar[re.Pattern]  # and the repository segment
    bad_ident: ClassVar[str]  # why an owner/name cannot be asked for (the bad_entry message)

    def valid(self, owner: str, name: str) -> bool:
        raise NotImplementedError

    def parse_repo_path(self, segments: list[str]) -> tuple[str, str] | RepoProblem:
        return owner_and_name(self.name, segments, self.web_owner, self.web_name)

    def endpoints(self, *, with_token: bool, tuning: Tuning) -> tuple[str, ...]:
        return (f"{self.name}_repo", f"{self.name}_commits")

    def connect(self, url: str, settings: Any, wiring: Wiring) -> ForgeClient:
        return self.client_class(wiring.upstream(self.name, url, self.cap(wiring.tuning)),
                                 max_pages=wiring.tuning.max_pages)

    async def crawl(self, unit: Job, client: ForgeClient, run: Run) -> None:
        job = unit
        owner, _, name = job.ident.partition("/")
        if not self.valid(owner, name):
            run.bad_entry(job, self.bad_ident)
            return
        repo_endpoint, commits_endpoint = f"{self.name}_repo", f"{self.name}_commits"
        if repo_endpoint in job.due:
            fetched = await client.repository(owner, name, job.etag(repo_endpoint))
            run.archive(job, repo_endpoint, fetched)
            if not (fetched.ok or fetched.not_modified):
                return  # the repository is unavailable: do not ask for its commits now
        if commits_endpoint in job.due:
            await fetch_into(run, job, commits_endpoint,
                             client.commits(owner, name, run.window_since, job.etag(commits_endpoint)))

    def stats(self, client: ForgeClient) -> SourceStats:
        return SourceStats.of(client.upstream)
