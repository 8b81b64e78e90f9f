"""The catalogue guard end to end: the real `pulse refresh` on a warehouse that holds a good refresh,
against a catalogue that fails as a whole service (simulator faults), then after the fault clears.

One good refresh is made once (module fixture) and copied for each test. A faulted catalogue is a
second simulator with the same seed and the fault, serving only PULSE_CATALOGUE; the other upstreams
stay the clean simulator's, whose URLs the warehouse already knows.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import orjson
import pytest

from simulator.catalogue import dropped_packages
from simulator.server import start_in_thread
from tests.e2e.conftest import good_home, pulse_env, query_file, run_pulse

pytestmark = pytest.mark.slow  # real `pulse` refreshes in subprocesses, against the simulator

SEED, PACKAGES = 11, 240
PUBLIC_URL = "http://pulse.test"  # the same whatever simulator serves: exports are comparable byte for byte


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    with good_home(tmp_path_factory, packages=PACKAGES, seed=SEED, public_url=PUBLIC_URL) as found:
        yield found


@pytest.fixture
def home(good, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(good[1], copy)
    return copy


def _env(sim, home: Path, catalogue_sim=None, **extra: str) -> dict[str, str]:
    env = pulse_env(sim, home, PULSE_PUBLIC_URL=PUBLIC_URL, **extra)
    env["DAGSTER_HOME"] = str(home / "dagster")  # the copy's own instance (not the original's)
    if catalogue_sim is not None:
        env["PULSE_CATALOGUE"] = catalogue_sim.url
    return env


def _published(home: Path) -> dict[str, str]:
    """sha256 of every file a reader sees: the published snapshot and the export tree."""
    files = [home / "published.duckdb", *sorted((home / "export").rglob("*"))]
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}




def _stored_catalogue(home: Path) -> list[tuple]:
    return query_file(home / "warehouse.duckdb", "SELECT * FROM catalogue.packages ORDER BY id")


def _lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


FAULTS = {
    "empty": ("catalogue=empty", "catalogue refused: 0 packages (an empty catalogue is never applied)"),
    "truncated": ("catalogue=truncated", "catalogue refused, incomplete read: packages: 216 records read where "
                                         "the API announced count 240"),
    "500after1": ("catalogue=500after1,catalogue_max_limit=50",
                  "catalogue refused, incomplete read: catalogue packages read stopped after 50 of 240 records: "
                  "catalogue unreachable: GET "),
    "html": ("catalogue=html", "catalogue refused, read failed: GET "),
}


# The recovery run after the fault is the same code path whatever the fault was: it is checked after a
# partial read and after a proxy's page (the two that reach furthest into the read), not after all four.
CLEARED = ("500after1", "html")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_catalogue_changes_nothing_published_and_exits_degraded(good, home, fault):
    sim = good[0]
    spec, reason = FAULTS[fault]
    before, catalogue_before = _published(home), _stored_catalogue(home)
    assert len(catalogue_before) == PACKAGES
    with start_in_thread(packages=PACKAGES, seed=SEED, faults=spec) as broken:
        result = run_pulse("refresh", env=_env(sim, home, broken))
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "no upstream errors" not in result.stderr
    said = [line for line in _lines(result) if line.startswith("pulse: ")]
    assert len(said) == 1, result.stderr[-3000:]
    assert said[0].startswith(f"pulse: refresh degraded: {reason}"), said[0]
    assert said[0].endswith(f"kept the stored catalogue ({PACKAGES} packages), the published snapshot and the "
                            "export tree unchanged (nothing downstream ran)")
    if fault == "html":
        assert "an HTML page 'Down for maintenance' instead of JSON" in said[0]
    assert _published(home) == before  # byte for byte
    assert _stored_catalogue(home) == catalogue_before

    if fault not in CLEARED:
        return
    # the fault cleared: the next refresh is exact again (nothing was due, so nothing changes)
    again = run_pulse("refresh", env=_env(sim, home))
    assert again.returncode == 0, again.stderr[-3000:]
    after = _published(home)
    exports = {k: v for k, v in before.items() if k.startswith("export/")}
    assert {k: v for k, v in after.items() if k.startswith("export/")} == exports


def test_a_refused_first_catalogue_is_fatal(good, tmp_path):
    with start_in_thread(packages=PACKAGES, seed=SEED, faults="catalogue=empty") as broken:
        result = run_pulse("refresh", env=_env(good[0], tmp_path / "fresh", broken))
    assert result.returncode == 1, result.stderr[-3000:]
    assert _lines(result)[-1].startswith("pulse: refresh failed after ")
    assert "catalogue refused: 0 packages" in _lines(result)[-1] and "no catalogue is stored yet" in _lines(result)[-1]
    assert not (tmp_path / "fresh" / "published.duckdb").exists()


def test_a_big_shrink_is_refused_then_applied_when_accepted(good, home):
    sim = good[0]
    before = _published(home)
    with start_in_thread(packages=PACKAGES, seed=SEED, faults="catalogue_drop=60") as shrunk:
        refused = run_pulse("refresh", env=_env(sim, home, shrunk))
        assert refused.returncode == 3, refused.stderr[-3000:]
        assert ("catalogue refused: 180 packages where 240 are stored (-25%, more than "
                "PULSE_CATALOGUE_MAX_SHRINK=0.1)") in refused.stderr
        assert _published(home) == before
        accepted = run_pulse("refresh", "--accept-catalogue-change", env=_env(sim, home, shrunk))
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    listing = orjson.loads((home / "export/api/v4/packages/index.json").read_bytes())
    assert listing["count"] == 180


def test_a_small_shrink_is_applied_and_history_stays(good, home):
    sim = good[0]
    gone = sorted(dropped_packages(PACKAGES, 0, 5))
    assert all((home / f"export/api/v4/packages/{pid}/index.json").exists() for pid in gone)
    history_before = query_file(home / "published.duckdb",
                            f"SELECT * FROM history.package_metrics WHERE package_id IN ({','.join(map(str, gone))}) "
                            "ORDER BY ALL")
    assert len(history_before) == len(gone)
    with start_in_thread(packages=PACKAGES, seed=SEED, faults="catalogue_drop=5,catalogue_max_limit=50") as shrunk:
        result = run_pulse("refresh", env=_env(sim, home, shrunk))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refresh completed" in result.stderr
    for pid in gone:
        assert not (home / f"export/api/v4/packages/{pid}/index.json").exists()
    listing = orjson.loads((home / "export/api/v4/packages/index.json").read_bytes())
    assert listing["count"] == PACKAGES - 5
    assert not {pid for pid in gone} & {r["id"] for r in listing["results"]}
    published = home / "published.duckdb"
    ids = ",".join(map(str, gone))
    assert query_file(published, f"SELECT count(*) FROM core.packages WHERE id IN ({ids})") == [(0,)]
    history_after = query_file(published,
                               f"SELECT * FROM history.package_metrics WHERE package_id IN ({ids}) ORDER BY ALL")
    assert history_after == history_before  # their rows stay; no new ones
    for grid in (home / "export/api/v4/grids").glob("*/index.json"):
        members = orjson.loads(grid.read_bytes()).get("packages", [])
        assert not [url for url in members if int(url.rstrip("/").rsplit("/", 1)[1]) in gone]
