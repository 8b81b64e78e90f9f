"""PyPI: the JSON API (`/pypi/<name>/json`) and the Simple JSON API (PEP 691, `project-status`)."""

from __future__ import annotations

import re
from urllib.parse import quote

from pipelines.clients.fetched import Fetched
from pipelines.clients.http import Upstream

# a PEP 503 normalised name
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,200}[a-z0-9])?$")

SIMPLE_ACCEPT = "application/vnd.pypi.simple.v1+json"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


class PyPI:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def project_json(self, name: str, etag: str | None = None) -> Fetched:
        """/pypi/<name>/json (a 301 to the canonical name is followed; 404 = not on PyPI)."""
        fetched = await self.upstream.get(f"/pypi/{quote(name, safe='')}/json", etag=etag,
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
