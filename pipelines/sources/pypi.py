"""PyPI: the JSON API (`/pypi/<name>/json`) and the Simple JSON API (PEP 691, `project-status`)."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, Run, SourceStats, Wiring, fetch_into
from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream

# a PEP 503 normalised name
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,200}[a-z0-9])?$")

SIMPLE_ACCEPT = "application/vnd.pypi.simple.v1+json"
JSON_PATH = re.compile(r"^/pypi/[A-Za-z0-9._%-]+/json$")  # where a PyPI 301 may lead us next time


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


class PyPI:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def project_json(self, name: str, etag: str | None = None, path: str | None = None) -> Fetched:
        """/pypi/<name>/json (a 301 to the display name is followed; 404 = not on PyPI).

        PyPI redirects every spelling but the project's display name (`/pypi/django/json` ->
        `/pypi/Django/json`); `path` is where the previous answer's redirect led, asked directly so
        an unchanged project costs one 304 instead of a 301 and a 304.

        `X-PyPI-Last-Serial` is archived but not otherwise used: PyPI's JSON answers carry an ETag
        and answer `If-None-Match` with 304 (through its CDN), which already says "unchanged since
        the last good fetch" for the one URL we ask, and the serial of an answer is only known once
        it has been sent, so it cannot save a request the ETag does not already save.
        """
        fetched = await self.upstream.get(path or f"/pypi/{quote(name, safe='')}/json", etag=etag,
                                          headers={"Accept": "application/json"})
        return _refine(fetched, "info")

    async def simple(self, name: str, etag: str | None = None) -> Fetched:
        """/simple/<name>/ as PEP 691 JSON (carries PEP 792 `project-status`)."""
        fetched = await self.upstream.get(f"/simple/{quote(name, safe='')}/", etag=etag,
                                          headers={"Accept": SIMPLE_ACCEPT})
        return _refine(fetched, "name")


def _refine(fetched: Fetched, required: str) -> Fetched:
    if fetched.status == 404:
        fetched.error_kind, fetched.error = "not_found", "HTTP 404: not on PyPI"
    elif fetched.status == 410:
        fetched.error_kind, fetched.error = "gone", "HTTP 410: removed from PyPI"
    elif fetched.ok and not (isinstance(fetched.data, dict) and required in fetched.data):
        fetched.error_kind, fetched.error = "malformed", f"PyPI body has no {required!r}"
    return fetched


class PyPISource(Source):
    """Named by the catalogue's `pypi_name` (PEP 503), not by a repository URL."""

    name = "pypi"
    kind = "package"
    catalogue_column = "pypi_name"
    env_url = "PYPI_URL"
    default_url = "https://pypi.org"
    concurrency = 48
    # PyPI answers /pypi/<normalised name>/json with a 301 to the project's display name
    # (/pypi/Django/json): remember where it led, so the next run asks there at once
    remembered_redirects = ("pypi_json",)

    def endpoints(self, *, with_token: bool, tuning: Tuning) -> tuple[str, ...]:
        return ("pypi_json", "pypi_simple") if tuning.fetch_simple else ("pypi_json",)

    def request_key(self, endpoint: str, ident: str) -> str:
        return f"{self.name}:{endpoint.removeprefix('pypi_')}:{ident}".lower()

    def remember_redirect(self, endpoint: str, location: str) -> dict[str, Any] | None:
        return {"path": location} if JSON_PATH.match(location) else None

    def connect(self, url: str, settings: Any, wiring: Wiring) -> PyPI:
        return PyPI(wiring.upstream(self.name, url, self.cap(wiring.tuning)))

    async def crawl(self, unit: Job, client: PyPI, run: Run) -> None:
        job = unit
        if not valid_name(job.ident):
            run.bad_entry(job, "not a normalised PyPI project name")
            return
        tasks = []
        if "pypi_json" in job.due:
            tasks.append(fetch_into(run, job, "pypi_json",
                                    client.project_json(job.ident, job.etag("pypi_json"), job.facts.get("path"))))
        if "pypi_simple" in job.due:
            tasks.append(fetch_into(run, job, "pypi_simple", client.simple(job.ident, job.etag("pypi_simple"))))
        await asyncio.gather(*tasks)

    def stats(self, client: PyPI) -> SourceStats:
        return SourceStats.of(client.upstream)


SOURCE = PyPISource()


# --- reading: stored bodies -> facts (core) ------------------------------------------------------
