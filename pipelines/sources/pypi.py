"""PyPI: the JSON API (`/pypi/<name>/json`) and the Simple JSON API (PEP 691, `project-status`)."""

from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar
from urllib.parse import quote

import polars as pl

from pipelines.sources.base import Source
from pipelines.sources.crawling import Job, Run, SourceStats, Wiring, fetch_into
from pipelines.sources.facts import PYPI_FACTS, RELEASE_FACTS, SIMPLE_FACTS, SourceFacts, cast_columns
from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.http.upstream import Upstream
from pipelines.sources.reading import Bodies, JsonShape, malformed, structure

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


class PyPICrawling(Source):
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
        simple_due = "pypi_simple" in job.due and not run.endpoint_open(self.name, "pypi_simple")
        if "pypi_json" not in job.due:
            if simple_due:
                await fetch_into(run, job, "pypi_simple", client.simple(job.ident, job.etag("pypi_simple")))
            return
        if not simple_due:
            await fetch_into(run, job, "pypi_json",
                             client.project_json(job.ident, job.etag("pypi_json"), job.facts.get("path")))
            return
        project, simple = await asyncio.gather(
            client.project_json(job.ident, job.etag("pypi_json"), job.facts.get("path")),
            client.simple(job.ident, job.etag("pypi_simple")))
        if simple.status == 404 and (project.ok or project.not_modified):
            # every project with a JSON page has a Simple page: a 404 here may be the Simple API missing
            # (a mirror without it); `http.health` decides from the first answers
            simple.suspect = "endpoint status: Simple API 404 for a project whose JSON exists"
        run.archive(job, "pypi_json", project)
        run.archive(job, "pypi_simple", simple)

    def stats(self, client: PyPI) -> SourceStats:
        return SourceStats.of(client.upstream)


# --- reading: stored bodies -> facts (core) ------------------------------------------------------

# written in DuckDB terms: `releases` is keyed by version and `project_urls` by label, which only a
# MAP can express (a polars dtype cannot); `FINISH` turns the maps into entries polars can read
JSON_STRUCTURE = (
    '{"info": {"version": "VARCHAR", "docs_url": "VARCHAR", "project_urls": "MAP(VARCHAR, VARCHAR)", '
    '"requires_python": "VARCHAR", "classifiers": ["VARCHAR"]}, '
    '"vulnerabilities": [{"id": "VARCHAR", "withdrawn": "VARCHAR"}], '
    '"releases": "MAP(VARCHAR, STRUCT(upload_time_iso_8601 VARCHAR, yanked BOOLEAN, requires_python VARCHAR)[])"}'
)
JSON_FINISH = """CASE WHEN {d} IS NOT NULL THEN struct_pack(
    info := CASE WHEN {d}.info IS NOT NULL THEN struct_pack(
        version := {d}.info.version,
        docs_url := {d}.info.docs_url,
        project_urls := map_entries({d}.info.project_urls),
        requires_python := {d}.info.requires_python,
        classifiers := {d}.info.classifiers
    ) END,
    releases := map_entries({d}.releases),
    vulnerabilities := {d}.vulnerabilities
) END"""
# PEP 691 Simple JSON: only the name (the shape check) and the PEP 792 project status are read
SIMPLE_DTYPE = pl.Struct({"name": pl.String(), "project-status": pl.Struct({"status": pl.String(),
                                                                            "reason": pl.String()})})


def read_json(docs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """PyPI JSON decoded by DuckDB (`project_urls` and `releases` are maps: list of {key, value})
    -> project facts, release facts, malformed reasons."""
    has_info = pl.col("doc").struct.field("info").is_not_null()
    ok, bad = docs.filter(has_info), docs.filter(~has_info)
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
        # the latest version's known vulnerabilities: entries with an id, withdrawn ones left out;
        # null when the body has no list (unknown, not "none")
        pl.col("doc").struct.field("vulnerabilities")
        .list.eval(pl.element().struct.field("id").is_not_null() & pl.element().struct.field("withdrawn").is_null())
        .list.sum().alias("vulnerabilities"),
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


def read_simple(docs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """PEP 691 Simple JSON -> the PEP 792 project status. No `project-status` (an index before API
    1.4) means `active`, as PEP 792 says; the reason is kept only when given."""
    has_name = pl.col("doc").struct.field("name").is_not_null()
    ok, bad = docs.filter(has_name), docs.filter(~has_name)
    status = pl.col("doc").struct.field("project-status").struct
    reason = status.field("reason").str.strip_chars()
    simple = ok.select(
        "subject",
        status.field("status").str.strip_chars().str.to_lowercase().fill_null("active").alias("pypi_status"),
        pl.when(reason != "").then(reason).alias("pypi_status_reason"),
    )
    return cast_columns(simple, SIMPLE_FACTS), malformed(bad, "PyPI Simple JSON has no 'name'")


class PyPIReading:
    """PyPI's reading half of its `Source` (JSON and Simple JSON, decoded column-wise)."""

    shapes: ClassVar[dict[str, JsonShape]] = {"pypi_json": "object", "pypi_simple": "object"}
    structures: ClassVar[dict[str, str]] = {"pypi_json": JSON_STRUCTURE, "pypi_simple": structure(SIMPLE_DTYPE)}
    finish: ClassVar[dict[str, str]] = {"pypi_json": JSON_FINISH}

    def read(self, bodies: Bodies) -> SourceFacts:
        project, releases, bad_json = read_json(bodies.docs["pypi_json"])
        simple, bad_simple = read_simple(bodies.docs["pypi_simple"])
        return SourceFacts(pypi=project, releases=releases, simple=simple,
                           malformed=pl.concat([bad_json, bad_simple]))


class PyPISource(PyPIReading, PyPICrawling):
    """Both halves of the source: crawled by `PyPICrawling`, read by `PyPIReading`."""


SOURCE = PyPISource()
