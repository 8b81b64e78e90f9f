"""`pulse serve` as an HTTP server, one test per behaviour, each written from the upstream source it copies:

- Django `CommonMiddleware` (APPEND_SLASH: `should_redirect_with_slash`, `get_full_path_with_slash`,
  `HttpResponsePermanentRedirect`), `HttpRequest.get_host` (`host_validation_re`, DisallowedHost -> 400),
  the WSGI handler's `repercent_broken_unicode` (non-UTF-8 paths resolve nowhere -> 404), `QueryDict`
  (errors="replace", last value wins, DATA_UPLOAD_MAX_NUMBER_FIELDS -> 400);
- DRF `APIView` (`http_method_not_allowed` -> `MethodNotAllowed`: 405, `Method "X" not allowed.`, the
  `Allow` header from `default_response_headers`), `SimpleMetadata.determine_metadata` for OPTIONS;
- django-cors-headers (a preflight is an empty 200 before URL resolution);
- gunicorn's request limits (limit_request_line 4094 -> 414 here, limit_request_field_size 8190 -> 431);
- RFC 9110 conditional requests (weak comparison for If-None-Match, which wins over If-Modified-Since).

One real `pulse serve` subprocess (two worker processes) per module over the small sample world
(requests on raw sockets, so nothing normalises the paths we send); the explicit `--public-url` case
and the cache bound run in-process. The snapshot switch runs last: it replaces the module server's published file.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import duckdb
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from assets.exports.published_api import PublishedApi
from pipelines.cli import EXIT_FATAL
from pipelines.serve import make_app
from pipelines.serving.cache import Entry, ResponseCache
from tests.e2e.serving import PULSE
from tests.e2e.serving import start_serve as serve_on_free_port
from tests.fixtures.sample import sample_catalogue, write_sample_published

NOW = datetime(2026, 11, 28, tzinfo=UTC)


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def json(self):
        return orjson.loads(self.body)


def ask(port: int, target: bytes | str, method: str = "GET", headers: dict[str, str] | None = None,
        raw: bytes | None = None) -> Answer:
    """One request on its own connection (Connection: close), the target sent byte for byte."""
    if raw is None:
        target = target.encode() if isinstance(target, str) else target
        lines = [method.encode() + b" " + target + b" HTTP/1.1"]
        headers = {"Host": f"127.0.0.1:{port}", **(headers or {}), "Connection": "close"}
        lines += [f"{k}: {v}".encode() for k, v in headers.items() if v is not None]
        raw = b"\r\n".join(lines) + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return Answer(b"".join(chunks))


def make_published(home: Path) -> Path:
    """The sample world, transformed and published (what a refresh leaves for `pulse serve`)."""
    return write_sample_published(home, NOW)


def start_serve(home: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_PUBLIC_URL", "DAGSTER_HOME")}
    env.update({"PULSE_HOME": str(home), "PULSE_TIMEZONE": "UTC"})
    process, port = serve_on_free_port(env, *extra)
    deadline = time.monotonic() + 60
    while True:
        try:
            if ask(port, "/api/v4/").status == 200:
                return process, port
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(process.stderr.read().decode()[-2000:])
        time.sleep(0.1)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("serve_http")
    make_published(home)
    return home


@pytest.fixture(scope="module")
def port(home):
    process, port = start_serve(home, "--workers", "2")  # the default on 2 cores, and whatever the machine
    yield port
    process.terminate()
    assert process.wait(timeout=10) == 0


# --- documents and their headers ----------------------------------------------------------------------------


def test_a_document_carries_caching_cors_and_drf_headers(port):
    answer = ask(port, "/api/v4/packages/")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"  # DRF's JSONRenderer: no charset
    assert answer.headers["allow"] == "GET, HEAD, OPTIONS"  # APIView.default_response_headers
    assert answer.headers["access-control-allow-origin"] == "*"
    etag = answer.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")  # strong
    parsedate_to_datetime(answer.headers["last-modified"])
    assert "public" in answer.headers["cache-control"] and "s-maxage=" in answer.headers["cache-control"]
    assert {"Accept-Encoding", "Host", "X-Forwarded-Host", "X-Forwarded-Proto"} <= {
        v.strip() for v in answer.headers["vary"].split(",")}
    assert answer.json()["count"] == len(sample_catalogue()["packages"])
    # same representation, same tag, whichever worker process answers (new connections spread by SO_REUSEPORT)
    assert {ask(port, "/api/v4/packages/").headers["etag"] for _ in range(8)} == {etag}


def test_links_follow_the_host_the_client_asked(port):
    page = ask(port, "/api/v4/packages/?limit=2", headers={"Host": "Pulse.Example:8080"}).json()
    assert page["next"] == "http://pulse.example:8080/api/v4/packages/?limit=2&offset=2"
    assert all(r["category"] is None or r["category"].startswith("http://pulse.example:8080/api/v4/categories/")
               for r in page["results"])
    behind = ask(port, "/api/v4/", headers={"X-Forwarded-Host": "api.example.org, internal:81",
                                            "X-Forwarded-Proto": "https"}).json()
    assert behind["packages"] == "https://api.example.org/api/v4/packages/"  # the left-most value, like Django
    # the response cache is keyed by the base: the plain request is not served the proxied links
    assert ask(port, "/api/v4/").json()["packages"] == f"http://127.0.0.1:{port}/api/v4/packages/"


@pytest.mark.parametrize("headers", [
    {"Host": "bad_host!"}, {"Host": "evil.com/x"}, {"Host": "a b"}, {"Host": ""},
    {"X-Forwarded-Host": "evil.com@attacker"}, {"X-Forwarded-Proto": "gopher"},
])
def test_a_host_django_refuses_is_a_400_json(port, headers):
    answer = ask(port, "/api/v4/", headers=headers)
    assert answer.status == 400
    assert set(answer.json()) == {"detail"}
    assert "evil" not in answer.body.decode() and "gopher" not in answer.body.decode()  # never echoed


def test_an_explicit_public_url_wins_over_the_host(home):
    async def run():
        app = make_app(PublishedApi(home / "published.duckdb", "UTC"), public_url="https://pulse.example.org/")
        async with TestClient(TestServer(app)) as client:
            answer = await client.get("/api/v4/packages/?limit=1", headers={"X-Forwarded-Host": "other.example"})
            return answer.headers["Vary"], await answer.json()

    vary, page = asyncio.run(run())
    assert page["next"] == "https://pulse.example.org/api/v4/packages/?limit=1&offset=1"
    assert vary == "Accept-Encoding"  # the links no longer depend on the host


# --- Django's URL handling ----------------------------------------------------------------------------------


def test_append_slash_redirects_permanently_keeping_the_query_string(port):
    answer = ask(port, "/api/v4/packages?limit=5&offset=5")
    assert answer.status == 301  # HttpResponsePermanentRedirect
    assert answer.headers["location"] == "/api/v4/packages/?limit=5&offset=5"
    assert ask(port, "/api/v4/packages/1").headers["location"] == "/api/v4/packages/1/"
    # a write is redirected too (CommonMiddleware.process_response redirects any 404 that would resolve)
    assert ask(port, "/api/v4/grids", method="POST").status == 301
    missing = ask(port, "/api/v4/nothing-here")  # the slashed path resolves nowhere either: 404
    assert (missing.status, missing.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_405_with_drfs_body_and_allow(port, method):
    answer = ask(port, "/api/v4/packages/", method=method)
    assert answer.status == 405
    assert answer.json() == {"detail": f'Method "{method}" not allowed.'}
    assert answer.headers["allow"] == "GET, HEAD, OPTIONS"
    assert ask(port, "/api/v4/no-such-route/", method=method).status == 404  # no view: the resolver's 404


def test_head_is_get_without_the_body(port):
    got, head = ask(port, "/api/v4/grids/"), ask(port, "/api/v4/grids/", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == str(len(got.body))
    assert head.headers["etag"] == got.headers["etag"]


def test_options_answers_drf_metadata_and_cors_preflights(port):
    metadata = ask(port, "/api/v4/packages/", method="OPTIONS")
    assert metadata.status == 200
    body = metadata.json()
    assert list(body) == ["name", "description", "renders", "parses"]  # SimpleMetadata's keys, no actions
    assert body["name"] == "Package List" and "application/json" in body["renders"]
    assert metadata.headers["allow"] == "GET, HEAD, OPTIONS"
    preflight = ask(port, "/api/v4/packages", method="OPTIONS", headers={  # before APPEND_SLASH too
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status == 200 and preflight.body == b""
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "if-none-match"


# --- conditional requests and gzip ----------------------------------------------------------------------------


def test_if_none_match_and_if_modified_since_give_304(port):
    first = ask(port, "/api/v4/categories/")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    same = ask(port, "/api/v4/categories/", headers={"If-None-Match": etag})
    assert same.status == 304 and same.body == b""
    assert same.headers["etag"] == etag and same.headers["cache-control"] == first.headers["cache-control"]
    assert ask(port, "/api/v4/categories/", headers={"If-None-Match": f'"x", W/{etag}'}).status == 304
    assert ask(port, "/api/v4/categories/", headers={"If-None-Match": "*"}).status == 304
    assert ask(port, "/api/v4/categories/", headers={"If-None-Match": '"other"'}).status == 200
    assert ask(port, "/api/v4/categories/", headers={"If-Modified-Since": modified}).status == 304
    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=1), usegmt=True)
    assert ask(port, "/api/v4/categories/", headers={"If-Modified-Since": earlier}).status == 200
    # If-None-Match decides when both are sent (RFC 9110 13.2.2)
    assert ask(port, "/api/v4/categories/", headers={"If-None-Match": '"other"',
                                                       "If-Modified-Since": modified}).status == 200
    assert ask(port, "/api/v4/packages/999999/", headers={"If-None-Match": "*"}).status == 404  # only 2xx


def test_gzip_is_another_representation_with_its_own_etag(port):
    plain = ask(port, "/api/v4/packages/")
    zipped = ask(port, "/api/v4/packages/", headers={"Accept-Encoding": "br;q=1, gzip;q=0.8"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert ask(port, "/api/v4/packages/", headers={"If-None-Match": zipped.headers["etag"],
                                                   "Accept-Encoding": "gzip"}).status == 304
    refused = ask(port, "/api/v4/packages/", headers={"Accept-Encoding": "gzip;q=0, *"})
    assert "content-encoding" not in refused.headers and refused.body == plain.body


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/api/v4/packages/?limit=-5", "/api/v4/packages/?limit=99999999999999999999999", "/api/v4/packages/?offset=-1",
    "/api/v4/packages/?offset=99999999999999999999", "/api/v4/packages/?limit=abc&offset=1.5",
    "/api/v4/packages/?unknown=1&limit=2&limit=3", "/api/v4/search/?q=%FF%FE", "/api/v4/packages/?%zz=%",
])
def test_odd_query_strings_are_answered_not_crashed(port, target):
    answer = ask(port, target)
    assert answer.status in (200, 404)
    answer.json()  # JSON either way


@pytest.mark.parametrize("target", [
    b"/api/v4/packages/%FF/", b"/api/v4/../v4/packages/", b"/api/v4/%2e%2e/v4/", b"/api/v4/packages/..%2f..%2f/",
    b"/api/v4//packages/", b"/api/v4/packages/%00/", b"/etc/passwd", b"/api/v4/packages/a%5c..%5c/",
])
def test_undecodable_and_traversing_paths_are_404_json(port, target):
    answer = ask(port, target)
    assert (answer.status, answer.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize(("raw", "status"), [
    (b"GET /api/v4/" + b"a" * 5000 + b"/ HTTP/1.1\r\nHost: x\r\n\r\n", 414),  # over limit_request_line
    (b"GET /api/v4/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/v4/\xff\xfe/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # raw non-ASCII in the request line
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS to the plain port
    (b"GET /api/v4/?" + b"a&" * 1001 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),  # TooManyFieldsSent
])
def test_malformed_requests_get_a_status_and_a_json_body(port, raw, status):
    answer = ask(port, b"", raw=raw)
    assert answer.status == status
    assert set(answer.json()) == {"detail"}
    assert ask(port, "/api/v4/").status == 200  # and the server is still there


def test_the_response_cache_stays_bounded_under_random_queries():
    cache = ResponseCache(max_entries=100, max_bytes=50_000)
    for i in range(5000):
        cache.put(("token", "/api/v4/packages/", (("x", str(i)),), b"http://h"), Entry.of(200, b"x" * 400))
    assert len(cache) <= 100
    hot = ("token", "/api/v4/", (), b"http://h")
    cache.put(hot, Entry.of(200, b"y" * 1000))
    for i in range(99):
        cache.get(hot)
        cache.put(("t", i), Entry.of(200, b"z" * 400))
    assert cache.get(hot) is not None  # recently used entries survive
    for i in range(500):
        key = ("big", i)
        cache.gzipped(key, cache.put(key, Entry.of(200, os.urandom(2000))))
    assert cache._bytes <= 50_000


def test_a_second_server_on_a_taken_port_refuses_instead_of_sharing_it(home, port):
    """SO_REUSEPORT would let it bind beside the running one and take half its connections."""
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_PUBLIC_URL", "DAGSTER_HOME")}
    env.update({"PULSE_HOME": str(home), "PULSE_TIMEZONE": "UTC"})
    second = subprocess.run([PULSE, "serve", "--port", str(port), "--workers", "2"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == EXIT_FATAL
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert ask(port, "/api/v4/").status == 200  # the first one is untouched


# --- the snapshot switch (last: it replaces the module server's published file) --------------------------------


def _mark_every_title(published: Path, out: Path) -> None:
    shutil.copyfile(published, out)
    con = duckdb.connect(str(out))
    con.execute("UPDATE core.packages SET title = title || ' (v2)'")
    con.close()


def test_a_new_snapshot_switches_atomically_while_clients_hammer(home, port):
    published = home / "published.duckdb"
    staged = home / "next.duckdb"
    _mark_every_title(published, staged)
    old_etag = ask(port, "/api/v4/packages/").headers["etag"]
    results: list[list[tuple[int, str]]] = [[] for _ in range(6)]
    stop = threading.Event()

    def hammer(out: list[tuple[int, str]]) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")
            while not stop.is_set():
                sock.sendall(f"GET /api/v4/packages/?limit=50 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                status = int(reader.readline().split()[1])
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = orjson.loads(reader.read(length))
                marked = {r["title"].endswith(" (v2)") for r in body["results"]}
                out.append((status, "mixed" if len(marked) != 1 else ("new" if marked == {True} else "old")))

    threads = [threading.Thread(target=hammer, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    os.replace(staged, published)  # how warehouse.publish swaps a snapshot in
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(r and r[-1][1] == "new" for r in results):
        time.sleep(0.1)
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    seen = [kind for r in results for _, kind in r]
    assert {status for r in results for status, _ in r} == {200}
    assert "mixed" not in seen and "old" in seen and "new" in seen
    for r in results:  # per connection, once new always new: the reference only moves forward
        kinds = [kind for _, kind in r]
        assert "old" not in kinds[kinds.index("new"):]
    # every worker polls on its own: within a few seconds no connection gets the old snapshot
    def etags() -> set[str]:
        return {ask(port, "/api/v4/packages/").headers["etag"] for _ in range(6)}

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and old_etag in etags():
        time.sleep(0.2)
    assert old_etag not in etags()
