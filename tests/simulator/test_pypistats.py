"""pypistats.org in the simulator: shapes, 404s, consistency, determinism, correlation with stars, 429."""

from __future__ import annotations

import math
from datetime import date, timedelta

from simulator.hosts import REPO_HOSTS
from simulator.pypistats import series
from simulator.server import start_in_thread
from simulator.world import World, pep503
from tests.simulator.helpers import client


def _on_pypi(world, status="ok"):
    return [p for p in (world.package(i) for i in world.ids()) if p.pypi_status == status]


def test_shapes_consistency_and_404(simulator):
    p = _on_pypi(simulator.world)[0]
    name = pep503(p.pypi_name)
    with client(simulator) as c:
        recent = c.get(f"/api/packages/{name}/recent")
        assert recent.status_code == 200 and recent.headers["etag"].startswith("W/")
        body = recent.json()
        assert set(body) == {"data", "package", "type"} and body["type"] == "recent_downloads"
        assert body["package"] == name and set(body["data"]) == {"last_day", "last_week", "last_month"}
        overall = c.get(f"/api/packages/{name}/overall?mirrors=false").json()
        assert overall["type"] == "overall_downloads" and overall["package"] == name
        rows = overall["data"]
        assert len(rows) == 180 and {r["category"] for r in rows} == {"without_mirrors"}
        days = [date.fromisoformat(r["date"]) for r in rows]
        assert days == sorted(days) and days[-1] == simulator.world.now.date() - timedelta(days=1)
        counts = [r["downloads"] for r in rows]
        data = body["data"]
        assert (sum(counts[-30:]), sum(counts[-7:]), counts[-1]) == (data["last_month"], data["last_week"],
                                                                     data["last_day"])
        both = c.get(f"/api/packages/{name}/overall").json()["data"]
        assert [r["category"] for r in both] == ["with_mirrors"] * 180 + ["without_mirrors"] * 180
        assert c.get(f"/api/packages/{name}/recent?period=month").json()["data"] == {
            "last_month": data["last_month"]}
        assert c.get(f"/api/packages/{name}/recent?period=year").status_code == 404
        # `.`/`_` are normalised but case is not: the real table holds PEP 503 names
        assert c.get(f"/api/packages/{name.upper()}/recent").status_code == 404
        for missing in ["no-such-project", *(pep503(q.pypi_name) for q in _on_pypi(simulator.world, "missing")[:2])]:
            answer = c.get(f"/api/packages/{missing}/recent")
            assert (answer.status_code, answer.text) == (404, "404")
        again = c.get(f"/api/packages/{name}/recent", headers={"If-None-Match": recent.headers["etag"]})
        assert again.status_code == 304


def test_deterministic_separate_stream_heavy_tailed_and_correlated_with_stars():
    world = World(seed=3, packages=3000, hosts=REPO_HOSTS)
    today = world.now.date()
    packages = _on_pypi(world)
    months = {p.id: sum(n for _, n in series(world.seed, today, p)[-30:]) for p in packages}
    again = World(seed=3, packages=3000, hosts=REPO_HOSTS)
    assert all(sum(n for _, n in series(3, today, again.package(i))[-30:]) == m for i, m in list(months.items())[:50])
    other = {p.id: sum(n for _, n in series(4, today, p)[-30:]) for p in packages[:50]}
    assert other != {i: months[i] for i in other}  # the seed matters
    values = sorted(months.values())
    median, top = values[len(values) // 2], values[-1]
    assert median < 5_000 and top > 100 * median  # many small packages, a few huge
    assert sum(v < 1_000 for v in values) > len(values) // 4

    def ranks(xs):
        order = sorted(range(len(xs)), key=xs.__getitem__)
        out = [0] * len(xs)
        for r, i in enumerate(order):
            out[i] = r
        return out

    stars = ranks([p.stars for p in packages])
    downloads = ranks([months[p.id] for p in packages])
    n = len(packages)
    mean = (n - 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(stars, downloads, strict=True))
    var = sum((a - mean) ** 2 for a in stars)
    assert cov / var > 0.5  # Spearman: downloads follow stars, with lognormal scatter
    assert not any(math.isnan(v) for v in values)


def test_429_fault_with_retry_after():
    with start_in_thread(packages=60, seed=1, faults={"429": 1.0, "retry_after": 7, "hosts": "pypistats"}) as sim:
        p = _on_pypi(sim.world)[0]
        with client(sim) as c:
            answer = c.get(f"/api/packages/{pep503(p.pypi_name)}/recent")
            assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
            assert "RATE LIMIT EXCEEDED" in answer.text
            assert c.get(f"/pypi/{p.pypi_name}/json", follow_redirects=True).status_code == 200  # other hosts
        assert sim.stats()["faults_injected"] == {"429": 1}
        assert sim.env()["PYPISTATS_URL"] == sim.url
