"""Whole-endpoint chaos against the simulator, on a warehouse that already holds a good crawl.

Per fault: a good forced crawl (core A), the fault and a forced crawl (core B), the fault cleared and
a forced crawl (core C). B publishes the same package facts as A (the broken endpoint changes
nothing, GraphQL -> REST keeps repository metadata), with no per-package gone/not_found from it and
one endpoint error per broken endpoint; C equals A again and has no endpoint error.
"""

from __future__ import annotations

import socket

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.catalogue.readers import read_catalogue
from assets.catalogue.transform import build_catalogue
from assets.core.transform import build_core_from_archive
from pipelines.crawler.crawl import run_crawl
from pipelines.sources.http.tuning import Tuning
from tests.crawl.simworld import sim_settings

FAST = Tuning(retry_base_s=0.005, retry_max_s=0.02, computing_base_s=0.005, computing_max_s=0.02,
              secondary_base_s=0.01, flush_interval_s=0.1, github_rest_per_minute=None, timeout_s=5)
ROOMY = {"anon_quota": 1_000_000, "quota": 1_000_000, "graphql_quota": 1_000_000, "burst": 0}
# what a forced re-crawl may legitimately change: when it fetched
VOLATILE = {"core.packages": ("last_fetched",), "core.repositories": ("fetched_at",)}
PUBLISHED = ("core.packages", "core.commit_weeks", "core.participants", "core.releases")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _core(catalogue, settings) -> dict[str, pl.DataFrame]:
    return build_core_from_archive(catalogue, settings.raw_dir)


def _published(core: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: core[name].drop(VOLATILE.get(name, ())) for name in PUBLISHED}


def _package_facts(core) -> set[tuple[int, str]]:
    errors = core["core.crawl_errors"]
    return {(r["package_id"], r["kind"]) for r in errors.filter(
        pl.col("kind").is_in(["gone", "not_found", "endpoint"])).iter_rows(named=True)}


@pytest.mark.parametrize(("fault", "broken"), [
    ({"graphql_status": 404}, {("github", "graphql_repo")}),
    ({"graphql_status": 401}, {("github", "graphql_repo")}),
    ({"graphql_status": 502}, {("github", "graphql_repo")}),
    ({"simple_absent": True}, {("pypi", "pypi_simple")}),
    ({"htmlproxy": "pypi"}, {("pypi", "pypi_json"), ("pypi", "pypi_simple")}),
    ({"refused": "pypi"}, {("pypi", "pypi_json"), ("pypi", "pypi_simple")}),
], ids=["graphql404", "graphql401", "graphql502", "simple-absent", "htmlproxy-pypi", "refused-pypi"])
@pytest.mark.slow
def test_a_broken_endpoint_changes_no_package_fact(make_simulator, tmp_path, fault, broken):
    server = make_simulator(packages=60, seed=7, faults=ROOMY)
    settings = sim_settings(server, tmp_path, tokens=("tok-chaos",))
    catalogue = {name.removeprefix("catalogue."): frame for name, frame in
                 build_catalogue(read_catalogue(settings.catalogue)).tables().items()}
    packages = catalogue["packages"]
    run_crawl(settings, packages, run_id="good", tuning=FAST, force=True)
    before = _core(catalogue, settings)
    assert before["core.endpoint_errors"].is_empty()

    faulty = settings
    if "refused" in fault:  # the configured URL points at a closed port
        urls = dict(settings.source_urls) | {fault["refused"]: f"http://127.0.0.1:{_free_port()}"}
        faulty = settings.model_copy(update={"source_urls": urls})
    else:
        for name, value in fault.items():
            setattr(server.sim.faults, name, value)
    report = run_crawl(faulty, packages, run_id="fault", tuning=FAST, force=True)
    during = _core(catalogue, settings)
    assert {(e.source, e.endpoint) for e in report.endpoint_errors} == broken
    endpoint_rows = during["core.endpoint_errors"]
    assert set(zip(endpoint_rows["source"], endpoint_rows["endpoint"], strict=True)) == broken
    assert (endpoint_rows["kind"] == "endpoint").all() and (endpoint_rows["requests"] > 0).all()
    assert _package_facts(during) == _package_facts(before)  # no gone / not_found from the endpoint
    for name, frame in _published(before).items():
        assert_frame_equal(_published(during)[name], frame, check_row_order=False)
    if ("github", "graphql_repo") in broken:  # repository metadata came through REST, same run
        assert report.requests_by_source["github"] > 0
        assert server.stats()["by_route"].get("github.repo", 0) > 0

    for name in fault:
        if name != "refused":
            setattr(server.sim.faults, name, type(getattr(server.sim.faults, name))())
    report = run_crawl(settings, packages, run_id="after", tuning=FAST, force=True)
    after = _core(catalogue, settings)
    assert not report.endpoint_errors
    assert after["core.endpoint_errors"].is_empty()
    for name, frame in _published(before).items():
        assert_frame_equal(_published(after)[name], frame, check_row_order=False)
    assert _package_facts(after) == _package_facts(before)


@pytest.mark.parametrize("spec", ["graphql=404", "graphql=401", "graphql=502", "simple=absent", "htmlproxy=pypi"])
def test_endpoint_fault_specs_parse(spec):
    from simulator.faults import parse_faults

    faults = parse_faults(spec, ("gitlab", "bitbucket", "codeberg"))
    assert faults.graphql_status or faults.simple_absent or faults.htmlproxy == "pypi"
    with pytest.raises(ValueError):
        parse_faults(spec.split("=")[0] + "=nope", ("gitlab",))
