"""The generator against the real directory: the djangopackages catalogue CSV of May 2022.

Tolerances (stated here, documented in simulator/README.md):
- stars (repositories that answer): p50 and p90 within 20 %, p99 within 35 % of the real ones;
- inactive share (no commit in the 52 weeks before the snapshot): within 6 points;
- grids: median size within 2 packages, about one grid per 14 packages (within 25 %);
- hosts: GitHub share within 6 points, GitHub + GitLab within 3 points (the real file has turned
  every other host into an empty URL), GitLab at most 4 % (kept above the real 0.7 % so small test
  worlds have GitLab packages);
- mixed-case repository URLs: between half and twice the real share.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from simulator.hosts import REPO_HOSTS
from simulator.world import World
from tests.simulator.helpers import client

CSV = Path(__file__).resolve().parents[3] / "shared" / "reference" / "djangopackages_catalogue_2022-05.csv"


def _quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture(scope="module")
def real() -> dict:
    if not CSV.exists():
        pytest.skip(f"reference file absent: {CSV}")
    with CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    stars = [int(r["repo_stars"]) for r in rows if r["repo_stars"].strip()]
    last = [datetime.strptime(r["repo_last_commit_date"][:19], "%Y-%m-%dT%H:%M:%S")
            for r in rows if r["repo_last_commit_date"].strip()]
    snapshot = max(last)
    grids = Counter(g.strip() for r in rows for g in r["dp_grids"].split(",") if g.strip())
    hosts = Counter()
    for r in rows:
        m = re.match(r"https?://(?:www\.)?([^/]+)", r["dp_repo_url"].strip().lower())
        hosts[m.group(1) if m else "other"] += 1
    return {
        "n": len(rows),
        "stars": stars,
        "inactive": sum(snapshot - d > timedelta(weeks=52) for d in last) / len(last),
        "grid_sizes": list(grids.values()),
        "github": hosts["github.com"] / len(rows),
        "gitlab": hosts["gitlab.com"] / len(rows),
        "mixed_case": sum(r["dp_repo_url"] != r["dp_repo_url"].lower() for r in rows) / len(rows),
    }


@pytest.fixture(scope="module")
def synthetic(real) -> dict:
    w = World(seed=1, packages=real["n"], hosts=REPO_HOSTS)  # a world the size of the real directory
    packages = [w.package(i) for i in w.ids()]
    answering = [p for p in packages if p.host in ("github", "gitlab") and p.status not in (
        "deleted", "blocked_dmca", "blocked_tos")]
    with_activity = [p for p in packages if p.traits & {"active", "inactive"}]
    n = len(packages)
    return {
        "stars": [p.stars for p in answering],
        "inactive": sum("inactive" in p.traits for p in with_activity) / len(with_activity),
        "grid_sizes": [len(g[8]) for g in w.grids()],
        "github": sum(p.host == "github" for p in packages) / n,
        "gitlab": sum(p.host == "gitlab" for p in packages) / n,
        "mixed_case": sum(p.repo_url != p.repo_url.lower() for p in packages) / n,
    }


@pytest.mark.parametrize(("q", "tolerance"), [(0.5, 0.20), (0.9, 0.20), (0.99, 0.35)])
def test_star_quantiles(real, synthetic, q, tolerance):
    want, got = _quantile(real["stars"], q), _quantile(synthetic["stars"], q)
    assert abs(got - want) <= tolerance * want, (q, want, got)


def test_inactive_share(real, synthetic):
    assert abs(synthetic["inactive"] - real["inactive"]) <= 0.06, (real["inactive"], synthetic["inactive"])


def test_grid_sizes_and_count(real, synthetic):
    assert abs(statistics.median(synthetic["grid_sizes"]) - statistics.median(real["grid_sizes"])) <= 2
    assert abs(len(synthetic["grid_sizes"]) - len(real["grid_sizes"])) <= 0.25 * len(real["grid_sizes"])
    assert min(synthetic["grid_sizes"]) >= 2


def test_host_shares(real, synthetic):
    assert abs(synthetic["github"] - real["github"]) <= 0.06, (real["github"], synthetic["github"])
    both_real, both_synthetic = real["github"] + real["gitlab"], synthetic["github"] + synthetic["gitlab"]
    assert abs(both_synthetic - both_real) <= 0.03, (both_real, both_synthetic)
    assert 0 < synthetic["gitlab"] <= 0.04


def test_mixed_case_urls_as_often_as_in_reality(real, synthetic):
    assert real["mixed_case"] / 2 <= synthetic["mixed_case"] <= real["mixed_case"] * 2


def test_the_served_catalogue_has_uppercase_and_whitespace_urls(simulator):
    """Noise the crawler must survive, as served by /api/v4/packages/ (not only in the world object)."""
    with client(simulator) as c:
        records = c.get("/api/v4/packages/", params={"limit": simulator.world.n}).json()["results"]
    urls = [r["repo_url"] for r in records]
    assert len(urls) == simulator.world.n
    uppercase = [u for u in urls if re.search(r"github\.com/[A-Z0-9_.-]+/[A-Z0-9_.-]+", u.strip())
                 and u.strip() != u.strip().lower()]
    whitespace = [u for u in urls if u and u != u.strip()]
    assert uppercase and whitespace, (len(uppercase), len(whitespace))
    assert all(u.strip() for u in whitespace)  # padding around a real URL, not empty values
