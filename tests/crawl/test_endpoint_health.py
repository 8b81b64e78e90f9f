"""Endpoint health (`pipelines.sources.http.health`): a broken endpoint is one endpoint error, never
package facts; GitHub GraphQL falls back to REST in the same run."""

from __future__ import annotations

import httpx
import polars as pl

from pipelines.sources.http.fetched import Fetched
from pipelines.sources.http.health import Circuit, EndpointRule, suspect
from tests.crawl.crawlfake import Fake, make_settings, packages_frame
from tests.crawl.test_crawl_plumbing import crawl, latest
from warehouse.archive import scan_archive


def _fail(status: int = 404, ctype: str = "application/json", kind: str = "gone") -> Fetched:
    return Fetched(url="/x", status=status, headers={"content-type": ctype}, text='{"message": "Not Found"}',
                   error_kind=kind, error=f"HTTP {status}")


def test_suspects():
    graphql = EndpointRule(statuses=frozenset({401, 403, 404}), threshold=1)
    assert suspect(_fail(404), graphql) == "endpoint status: HTTP 404"
    assert suspect(_fail(404)) is None  # a REST 404 is a package's answer
    assert suspect(_fail(502, "text/html", "transient")).startswith("HTML instead of JSON")
    assert suspect(_fail(200, "text/html; charset=utf-8", "malformed")).startswith("HTML instead of JSON")
    assert suspect(Fetched(url="/x", status=0, error_kind="transient", error="ConnectError")) == \
        "no answer: ConnectError"
    assert suspect(_fail(503, kind="transient")) == "server error: HTTP 503 after retries"
    assert suspect(Fetched(url="/x", status=0, attempts=0, error_kind="bad_entry")) is None
    assert suspect(_fail(403, kind="rate_limited"), graphql) is None
    assert suspect(Fetched(url="/x", status=200, text="{}", data={})) is None


def test_circuit_opens_after_the_threshold_with_no_success_and_holds_until_judged():
    circuit = Circuit("pypi", "pypi_simple", EndpointRule(), threshold=3)
    assert circuit.failed("a", _fail(), "sig") == "hold"
    assert circuit.failed("b", _fail(), "sig") == "hold"
    assert circuit.failed("c", _fail(), "sig") == "drop"
    assert circuit.open and circuit.error is not None and circuit.error.requests == 3
    assert circuit.failed("d", _fail(), "sig") == "drop" and circuit.error.requests == 4
    assert "not working: sig (application/json) on 4 answers" in circuit.error.message
    # a success before the threshold: the held answers were package answers after all
    healthy = Circuit("pypi", "pypi_simple", EndpointRule(), threshold=3)
    assert healthy.failed("a", _fail(), "sig") == "hold"
    assert [job for job, _, _ in healthy.succeeded()] == ["a"]
    assert healthy.failed("b", _fail(), "sig") == "archive" and healthy.error is None


def _github_fake() -> Fake:
    fake = Fake()
    for name in ("one", "two", "three"):
        fake.add_repo(f"owner/{name}")
    fake.pypi.update({n: {"info": {"name": n, "version": "1.0"}, "releases": {}} for n in ("pa", "pb", "pc")})
    return fake


PACKAGES = [{"repo": "github:owner/one", "pypi": "pa"}, {"repo": "github:owner/two", "pypi": "pb"},
            {"repo": "github:owner/three", "pypi": "pc"}, {"repo": "github:owner/gone", "pypi": None}]


def test_graphql_down_falls_back_to_rest_and_records_one_endpoint_error(tmp_path):
    fake = _github_fake()
    fake.faults["/graphql"] = 10_000  # every GraphQL query answers 502
    settings = make_settings(tmp_path, tokens=("t1",))
    packages = packages_frame(PACKAGES)
    report = crawl(settings, packages, fake)
    rows = latest(settings)
    assert not [k for k in rows if k.startswith("github:graphql_repo:")]  # nothing archived as package facts
    for name in ("one", "two", "three"):
        assert rows[f"github:repo:owner/{name}"]["error_kind"] is None  # REST took over, same run
        assert rows[f"github:commits:owner/{name}"]["error_kind"] is None
        assert rows[f"github:contributors:owner/{name}"]["error_kind"] is None
    assert rows["github:repo:owner/gone"]["error_kind"] == "gone"  # a package-level answer (REST 404)
    [error] = report.endpoint_errors
    assert (error.source, error.endpoint, error.status) == ("github", "graphql_repo", 502)
    assert error.fallback and "bad gateway" in error.excerpt
    graphql_posts = [r for r in fake.requests if r.url.path == "/graphql"]
    assert len(graphql_posts) <= 2 * FAST_ATTEMPTS  # the two queries in flight (and retries), no more
    endpoint = rows["github:endpoint:graphql_repo"]
    assert (endpoint["endpoint"], endpoint["error_kind"], endpoint["status"]) == ("endpoint", "endpoint", 502)
    assert {e[2] for e in report.errors if e[1] == "github"} == {"gone"}  # (pypistats: no statistics here)
    assert report.summary()["endpoint_errors"][0]["endpoint"] == "graphql_repo"

    # the endpoint works again: GraphQL answers, and the endpoint row says so
    fake.faults.clear()
    report = crawl(settings, packages, fake, run_id="r2", force=True)
    rows = latest(settings)
    assert not report.endpoint_errors
    assert rows["github:graphql_repo:owner/one"]["error_kind"] is None
    assert rows["github:endpoint:graphql_repo"]["error_kind"] is None
    assert rows["github:graphql_repo:owner/gone"]["error_kind"] == "gone"  # GraphQL NOT_FOUND: package-level


FAST_ATTEMPTS = 4  # Tuning.max_attempts


def test_simple_api_absent_is_one_endpoint_error_not_n_missing_projects(tmp_path):
    fake = _github_fake()
    answer = fake.pypi_answer
    fake.pypi_answer = lambda request, path: (httpx.Response(404, text="Not Found") if path.startswith("/simple/")
                                             else answer(request, path))
    settings = make_settings(tmp_path)
    report = crawl(settings, packages_frame(PACKAGES[:3]), fake)
    rows = latest(settings)
    assert not [k for k in rows if k.startswith("pypi:simple:")]
    assert all(rows[f"pypi:json:{n}"]["error_kind"] is None for n in ("pa", "pb", "pc"))
    [error] = report.endpoint_errors
    assert (error.endpoint, error.status, error.requests) == ("pypi_simple", 404, 3)
    assert "Simple API 404" in error.signature
    assert not [e for e in report.errors if e[1] == "pypi"]


def test_one_missing_simple_page_among_good_ones_stays_a_package_answer(tmp_path):
    fake = _github_fake()
    answer = fake.pypi_answer
    fake.pypi_answer = lambda request, path: (httpx.Response(404, text="Not Found") if path == "/simple/pb/"
                                             else answer(request, path))
    settings = make_settings(tmp_path)
    report = crawl(settings, packages_frame(PACKAGES[:3]), fake)
    assert not report.endpoint_errors
    assert latest(settings)["pypi:simple:pb"]["error_kind"] == "not_found"


def test_connection_refused_is_one_endpoint_error_per_endpoint_and_stops_the_source(tmp_path):
    fake = _github_fake()

    def refuse(request, path):
        raise httpx.ConnectError("connection refused", request=request)

    fake.pypi_answer = refuse
    settings = make_settings(tmp_path)
    report = crawl(settings, packages_frame(PACKAGES[:3]), fake)
    assert not [r for r in scan_archive(settings.raw_dir).collect().iter_rows(named=True)
                if r["source"] == "pypi" and r["endpoint"] != "endpoint"]
    assert {(e.endpoint, e.status) for e in report.endpoint_errors} <= {("pypi_json", 0), ("pypi_simple", 0)}
    assert report.endpoint_errors and all(e.signature.startswith("no answer") for e in report.endpoint_errors)
    assert not report.stopped_by_budget
    endpoint_rows = scan_archive(settings.raw_dir).filter(pl.col("error_kind") == "endpoint").collect()
    assert endpoint_rows.height == len(report.endpoint_errors)
