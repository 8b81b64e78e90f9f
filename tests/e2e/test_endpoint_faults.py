"""A source endpoint failing as a whole, end to end: the real `pulse refresh --force` on a warehouse that
holds a good refresh, against upstreams whose GraphQL endpoint, Simple API or whole PyPI host is broken
(simulator faults), then after the fault clears.

What must hold (issue 12): the run says so in one line and exits 3 (degraded); one endpoint-level row
per broken endpoint, not one error per package; the published API records stay what the good run
published (only `last_fetched` moves, for the healthy sources that answered again); and the next
refresh, the fault cleared, is exact again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulator.server import start_in_thread
from tests.e2e.conftest import good_home, pulse_env, query_file, run_pulse, without_last_fetched

pytestmark = pytest.mark.slow  # real `pulse` refreshes in subprocesses, against the simulator

SEED, PACKAGES = 13, 90
PUBLIC_URL = "http://pulse.test"

# fault spec -> (source, endpoint) rows expected in core.endpoint_errors
FAULTS = {
    "graphql=404": {("github", "graphql_repo")},
    "graphql=502": {("github", "graphql_repo")},
    "simple=absent": {("pypi", "pypi_simple")},
    "htmlproxy=pypi": {("pypi", "pypi_json"), ("pypi", "pypi_simple")},
}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    with good_home(tmp_path_factory, packages=PACKAGES, seed=SEED, public_url=PUBLIC_URL) as found:
        yield found


def _env(sim, home: Path) -> dict[str, str]:
    env = pulse_env(sim, home, PULSE_PUBLIC_URL=PUBLIC_URL)
    env["DAGSTER_HOME"] = str(home / "dagster")
    return env


def _records(home: Path) -> dict[str, object]:
    """The API v4 records a client reads (details and list pages), without `last_fetched`."""
    root = home / "export" / "api" / "v4"
    return {str(p.relative_to(root)): without_last_fetched(p.read_bytes()) for p in sorted(root.rglob("*.json"))
            if p.parent.name not in ("health", "score")}




def _package_errors(home: Path) -> set[tuple]:
    return set(query_file(home / "published.duckdb",
                      "SELECT package_id, source, kind FROM core.crawl_errors WHERE severity = 'error'"))


# The recovery run is the same code path whatever the fault was: checked once per source (GitHub's
# GraphQL answering 502, PyPI behind a proxy's HTML page), not after all four faults.
CLEARED = ("graphql=502", "htmlproxy=pypi")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_broken_endpoint_degrades_the_run_and_publishes_no_false_facts(good, tmp_path, fault):
    sim, good_home = good
    home = tmp_path / "home"
    shutil.copytree(good_home, home)
    records, errors = _records(home), _package_errors(home)
    with start_in_thread(packages=PACKAGES, seed=SEED, faults=fault) as broken:
        env = _env(broken, home)
        env["PULSE_CATALOGUE"] = sim.url  # the catalogue is healthy; only the upstreams are broken
        result = run_pulse("refresh", "--force", env=env)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "no upstream errors" not in result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("pulse: ")]
    assert len(said) == 1 and said[0].startswith("pulse: refresh degraded: "), result.stderr[-3000:]
    sources = sorted({source for source, _ in FAULTS[fault]})
    assert said[0].startswith(f"pulse: refresh degraded: {', '.join(sources)} unavailable"), said[0]

    endpoints = set(query_file(home / "published.duckdb", "SELECT source, endpoint FROM core.endpoint_errors"))
    assert endpoints == FAULTS[fault]
    assert _package_errors(home) == errors  # no package became gone / not_found because of the outage
    assert _records(home) == records  # what clients read is what the good run published

    if fault not in CLEARED:
        return
    again = run_pulse("refresh", "--force", env=_env(sim, home))  # the fault cleared
    assert again.returncode == 0, again.stderr[-3000:]
    assert query_file(home / "published.duckdb", "SELECT count(*) FROM core.endpoint_errors") == [(0,)]
    assert _package_errors(home) == errors
    assert _records(home) == records
