"""Crawl benchmark (issue 4): the crawler against the simulator, plus a plain sequential baseline.

    uv run python -m benchmarks.crawl --packages 5000 --latency-ms 50

The simulator runs in a child process (its own core and GIL), with GitHub's hourly quota and the
per-minute secondary limit lifted so that the measured time is the crawler's, not the quota's (with
real limits one token allows 5,000 requests an hour: see the quota figures for that budget). Runs:

1. first crawl with a token (GraphQL + REST): `seconds`, `github_quota_per_package`;
2. the same again, forced, nothing changed: `refresh_304_ratio`, `github_quota_per_package_refresh`;
3. first crawl without a token (REST only): `github_quota_per_package_rest`;
4. a plain sequential crawler (one request at a time, same endpoints, no ETags) over a sample,
   scaled to the package count: `baseline_seconds`.

Quota figures are per GitHub package (REST calls + GraphQL points, as the simulator charged them).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import polars as pl
from pydantic import SecretStr

from assets.raw.crawl import run_crawl
from pipelines.clients.http import Tuning
from pipelines.settings import Settings

RELAXED = "quota=100000000,anon_quota=100000000,graphql_quota=100000000,burst=0"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(packages: int, seed: int, latency_ms: float, faults: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (
        "from simulator.server import serve_forever\n"
        f"serve_forever(packages={packages}, seed={seed}, latency_ms={latency_ms}, faults={faults!r}, "
        f"port={port}, host='127.0.0.1')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_sim/stats", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("simulator did not start")


def sim_stats(url: str) -> dict:
    return httpx.get(f"{url}/_sim/stats", timeout=30).json()


def settings_for(url: str, home: Path, tokens: tuple[str, ...]) -> Settings:
    return Settings(
        home=home, catalogue=url, public_url="http://localhost:8000", timezone="UTC",
        github_api_url=f"{url}/api/v3", github_graphql_url=f"{url}/api/graphql",
        github_tokens=tuple(SecretStr(t) for t in tokens), pypi_url=url,
        gitlab_api_url=f"{url}/api/v4", bitbucket_api_url=f"{url}/2.0", codeberg_api_url=f"{url}/api/v1",
    )


def catalogue_packages(url: str) -> pl.DataFrame:
    """The simulator's catalogue, parsed the way the catalogue asset does (world side)."""
    from simulator.world import World  # the same deterministic world the child process serves

    stats = sim_stats(url)["world"]
    world = World(seed=stats["seed"], packages=stats["packages"])
    rows = []
    for pid in world.ids():
        p = world.package(pid)
        host = p.host if p.host in ("github", "gitlab", "bitbucket", "codeberg") else None
        rows.append({
            "id": pid, "slug": p.slug, "repo_host": host,
            "repo_owner": p.url_owner if host else None, "repo_name": p.url_name if host else None,
            "repo_key": f"{host}:{p.url_owner}/{p.url_name}".lower() if host else None,
            "pypi_name": _pep503(p.pypi_name) if p.pypi_name else None,
            "repo_url_problem": None if host or p.host == "none" else "unsupported host",
        })
    return pl.DataFrame(rows)


def _pep503(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def quota_spent(url: str) -> float:
    return float(sum(sim_stats(url)["quota_spent"].values()))


def reset_stats(url: str) -> None:
    httpx.post(f"{url}/_sim/reset", timeout=30)


def baseline(url: str, packages: pl.DataFrame, sample: int) -> float:
    """A plain sequential crawler: one request at a time, no concurrency, no conditional requests."""
    rows = packages.filter(pl.col("repo_host") == "github").head(sample).to_dicts()
    names = packages.filter(pl.col("pypi_name").is_not_null())["pypi_name"].head(sample).to_list()
    started = time.monotonic()
    with httpx.Client(timeout=30, headers={"Authorization": "Bearer baseline-token"}) as client:
        for row in rows:
            base = f"{url}/api/v3/repos/{row['repo_owner']}/{row['repo_name']}"
            repo = client.get(base, follow_redirects=True)
            if repo.status_code != 200:
                continue
            full = repo.json()["full_name"]
            base = f"{url}/api/v3/repos/{full}"
            for _ in range(4):
                if client.get(f"{base}/stats/participation").status_code != 202:
                    break
            page = f"{base}/contributors?per_page=100"
            while page:
                answer = client.get(page)
                page = answer.links.get("next", {}).get("url") if answer.status_code == 200 else None
            client.get(f"{base}/commits?per_page=1&sha={repo.json()['default_branch']}")
        for name in names:
            client.get(f"{url}/pypi/{name}/json", follow_redirects=True)
            client.get(f"{url}/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    elapsed = time.monotonic() - started
    n_github = packages.filter(pl.col("repo_host") == "github").height
    n_pypi = packages.filter(pl.col("pypi_name").is_not_null()).height
    # scale each part by its own sample ratio (the sample is split roughly evenly in time)
    return elapsed * max(n_github / max(1, len(rows)), n_pypi / max(1, len(names)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-sample", type=int, default=60)
    parser.add_argument("--faults", default=RELAXED, help="simulator fault/limit spec")
    args = parser.parse_args()

    proc, url = start_simulator(args.packages, args.seed, args.latency_ms, args.faults)
    try:
        packages = catalogue_packages(url)
        n_github = packages.filter(pl.col("repo_host") == "github").height
        tuning = Tuning(github_rest_per_minute=None)  # the simulator's secondary limit is off here
        out: dict[str, object] = {"packages": args.packages, "github_packages": n_github,
                                  "latency_ms": args.latency_ms}
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "token"
            before = quota_spent(url)
            token_settings = settings_for(url, home, ("bench-token-1",))
            first = run_crawl(token_settings, packages, run_id="bench-1", tuning=tuning)
            out["seconds"] = round(first.seconds, 2)
            out["github_quota_per_package"] = round((quota_spent(url) - before) / n_github, 3)
            out["crawler_quota_per_package"] = round(first.github_quota_spent / n_github, 3)
            out["errors_first_crawl"] = dict(Counter(error[2] for error in first.errors))

            before = quota_spent(url)
            refresh = run_crawl(token_settings, packages, run_id="bench-2", force=True, tuning=tuning)
            answered = sum(v for k, v in refresh.responses_by_status.items() if k)
            graphql_posts = -(-n_github // tuning.graphql_batch)
            out["refresh_seconds"] = round(refresh.seconds, 2)
            out["refresh_304_ratio"] = round(
                refresh.responses_by_status.get(304, 0) / max(1, answered - graphql_posts), 3)
            out["github_quota_per_package_refresh"] = round((quota_spent(url) - before) / n_github, 3)

            # a fresh simulator, so the REST crawl meets its own 202s ("stats being computed")
            proc.terminate()
            proc.wait(timeout=10)
            proc, url = start_simulator(args.packages, args.seed, args.latency_ms, args.faults)
            before = quota_spent(url)
            rest = run_crawl(settings_for(url, Path(tmp) / "rest", ()), packages, run_id="bench-3",
                             tuning=tuning)
            out["rest_seconds"] = round(rest.seconds, 2)
            out["github_quota_per_package_rest"] = round((quota_spent(url) - before) / n_github, 3)

        out["baseline_seconds"] = round(baseline(url, packages, args.baseline_sample), 1)
        out["speedup"] = round(float(out["baseline_seconds"]) / float(out["seconds"]), 1)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["simulator_limits"] = args.faults
        out["cpus"] = os.cpu_count()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
