"""Benchmark: all scores for N synthetic packages (core-shaped frames), in memory.

    uv run python -m benchmarks.health_scores --packages 100000

Times `health_inputs` (core frames -> one row per package), `score_health`, `grid_health` and
djangopackages' `score`/`weight` (with the breakdown JSON), in memory only; benchmarks.transform
times the wired stage (reading core, scoring, writing the health tables) as `health_seconds`. The
last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from assets.health.djangopackages import djangopackages_scores
from assets.health.health import health_inputs, score_health
from assets.marts.grids import grid_health

NOW = datetime(2026, 8, 18, tzinfo=UTC)


def synth(n: int, seed: int = 7) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    stars = np.floor(rng.pareto(1.2, n) * 20).astype(np.int64)
    commit_age = rng.exponential(300, n)
    specs = np.array([">=3.8", ">=3.10", None, ">=3.6", "<3", ">=3.9,<4"], dtype=object)
    pyv = [["3.10", "3.11", "3.12"], ["3.6", "3.7"], [], ["3.12", "3.13", "3.14"]]
    djv = [["4.2", "5.2"], ["2.2", "3.2"], [], ["5"]]
    packages = pl.DataFrame({
        "id": ids, "repo_key": [f"github:o/r{i}" for i in ids], "repo_watchers": stars,
        "repo_forks": stars // 5, "repo_description": ["d"] * n,
        "last_updated": [NOW - timedelta(days=float(d)) for d in commit_age],
        "pypi_version": ["1.0"] * n, "pypi_status": rng.choice(["active", "deprecated", None], n, p=[.9, .02, .08]),
        "pypi_requires_python": rng.choice(specs, n),
        "pypi_classifiers": [["Programming Language :: Python :: 3"]] * n,
        "python_versions": [pyv[i % 4] for i in range(n)], "django_versions": [djv[i % 4] for i in range(n)],
        "is_archived": rng.random(n) < 0.03, "pypi_inactive": rng.random(n) < 0.01,
        "pypi_downloads": (stars * rng.lognormal(3, 1.5, n)).astype(np.int64),
        "latest_vulnerabilities": rng.choice([0, 0, 0, 1], n),
    })
    weeks = pl.DataFrame({"package_id": np.repeat(ids, 52), "week_index": np.tile(np.arange(52), n),
                          "commits": rng.poisson(0.8, n * 52)}).with_columns(
        (pl.lit(NOW.date()) - pl.duration(days=(51 - pl.col("week_index")) * 7)).alias("week_start"))
    k = 8
    participants = pl.DataFrame({"package_id": np.repeat(ids, k), "position": np.tile(np.arange(k), n),
                                 "login": "x", "contributions": rng.zipf(1.8, n * k),
                                 "is_bot": rng.random(n * k) < 0.1})
    r = 10
    releases = pl.DataFrame({"package_id": np.repeat(ids, r), "version": [f"1.{j}" for j in range(r)] * n,
                             "upload_time": [NOW - timedelta(days=float(d)) for d in rng.exponential(400, n * r)],
                             "yanked": rng.random(n * r) < 0.02, "is_prerelease": rng.random(n * r) < 0.05})
    grid_packages = pl.DataFrame({"grid_id": rng.integers(1, n // 15 + 2, n), "package_id": ids})
    return {"packages": packages, "commit_weeks": weeks, "participants": participants, "releases": releases,
            "grid_packages": grid_packages}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=100_000)
    args = parser.parse_args()
    data = synth(args.packages)
    t0 = time.perf_counter()
    inputs = health_inputs(data["packages"], now=NOW, commit_weeks=data["commit_weeks"],
                           participants=data["participants"], releases=data["releases"])
    t1 = time.perf_counter()
    health = score_health(inputs, now=NOW)
    t2 = time.perf_counter()
    grid_health(health, data["grid_packages"])
    t3 = time.perf_counter()
    dp = data["packages"].join(inputs.select(pl.col("package_id").alias("id"), "latest_release_at"), on="id")
    djangopackages_scores(dp.rename({"pypi_downloads": "pypi_downloads", "latest_release_at": "last_released"})
                          .with_columns(pl.lit(3).alias("usage"), pl.lit(False).alias("deprecated")), now=NOW)
    t4 = time.perf_counter()
    print(json.dumps({"packages": args.packages, "inputs_seconds": round(t1 - t0, 3),
                      "score_seconds": round(t2 - t1, 3), "grid_seconds": round(t3 - t2, 3),
                      "health_seconds": round(t3 - t0, 3), "djangopackages_seconds": round(t4 - t3, 3)}))


if __name__ == "__main__":
    main()
