"""Fixtures of the catalogue tests: the real reference files (skipped when absent) and a small real
HTTP server speaking the djangopackages API v4 (limit/offset pages with absolute `next` links)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
CSV_2022 = REFERENCE / "djangopackages_catalogue_2022-05.csv"
DUMP_2011 = REFERENCE / "djangopackages_dump_2011-03.json.bz2"


@pytest.fixture
def csv_2022() -> Path:
    if not CSV_2022.exists():
        pytest.skip(f"reference file absent: {CSV_2022}")
    return CSV_2022


@pytest.fixture
def dump_2011() -> Path:
    if not DUMP_2011.exists():
        pytest.skip(f"reference file absent: {DUMP_2011}")
    return DUMP_2011


def v4_world(packages: int = 7, grids: int = 3, base: str = "https://djangopackages.org") -> dict[str, list[dict]]:
    """A small consistent v4 catalogue; related URLs on `base` (any host: ids are parsed from them)."""
    categories = [
        {"id": i, "title": t, "slug": s, "description": f"{t} things", "title_plural": t + "s",
         "show_pypi": True, "created": "2010-08-14T19:47:52-04:00", "modified": "2024-01-02T03:04:05.123456Z"}
        for i, (t, s) in enumerate([("App", "apps"), ("Framework", "frameworks")], start=1)
    ]
    grid_records = [
        {"id": g, "title": f"Grid {g}", "slug": f"grid-{g}", "description": "", "is_locked": False,
         "packages": [f"{base}/api/v4/packages/{p}/" for p in range(1, packages + 1) if p % grids == g - 1],
         "header": g == 1, "created": "2011-01-01T00:00:00Z", "modified": "2011-01-01T00:00:00Z"}
        for g in range(1, grids + 1)
    ]
    package_records = [
        {"category": f"{base}/api/v4/categories/{1 + p % 2}/",
         "grids": [f"{base}/api/v4/grids/{p % grids + 1}/"],
         "id": p, "title": f"Package {p}", "slug": f"package-{p}", "last_updated": None, "last_fetched": None,
         "repo_url": f"https://github.com/owner{p}/package-{p}", "pypi_version": None,
         "created": "2013-02-19T18:26:02.271422-05:00", "modified": "2026-01-28T14:20:29-05:00",
         "repo_forks": 0, "repo_description": "", "pypi_url": f"http://pypi.python.org/pypi/package-{p}",
         "documentation_url": None, "repo_watchers": 0, "commits_over_52": [], "participants": []}
        for p in range(packages, 0, -1)  # newest id first, like the real API
    ]
    return {"categories": categories, "grids": grid_records, "packages": package_records}


@dataclass
class V4Server:
    url: str
    data: dict[str, list[dict]]
    requests: list[str] = field(default_factory=list)
    # hooks: path -> number of 503s still to answer; a function rewriting the `next` link
    failures: dict[str, int] = field(default_factory=dict)
    rewrite_next: Callable[[str], str] | None = None
    raw_body: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location


def _handler(server_state: V4Server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            server_state.requests.append(self.path)
            parts = urlsplit(self.path)
            name = parts.path.strip("/").split("/")[-1]
            if parts.path in server_state.redirects:
                self.send_response(301)
                self.send_header("Location", server_state.redirects[parts.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if server_state.failures.get(name, 0) > 0:
                server_state.failures[name] -= 1
                return self._send(503, b'{"detail": "busy"}')
            if name in server_state.raw_body:
                return self._send(200, server_state.raw_body[name])
            if parts.path not in ("/api/v4/categories/", "/api/v4/grids/", "/api/v4/packages/"):
                return self._send(404, b'{"detail": "Not found."}')
            query = parse_qs(parts.query)
            limit = int(query.get("limit", ["20"])[0])
            offset = int(query.get("offset", ["0"])[0])
            rows = server_state.data[name]
            page = rows[offset: offset + limit]
            following = None
            if offset + limit < len(rows):
                following = f"{server_state.url}{parts.path}?limit={limit}&offset={offset + limit}"
                if server_state.rewrite_next:
                    following = server_state.rewrite_next(following)
            body = {"count": len(rows), "next": following, "previous": None, "results": page}
            return self._send(200, orjson.dumps(body))

    return Handler


@pytest.fixture
def v4_server() -> Iterator[V4Server]:
    state = V4Server(url="", data=v4_world())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
