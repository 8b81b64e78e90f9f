"""Crawl benchmark (issue 4): the crawler against the simulator, plus a plain sequential baseline.

    uv run python -m benchmarks.crawl --packages 5000 --latency-ms 50

The simulator runs in a child process (its own core and GIL), with GitHub's hourly quota and the
per-minute secondary limit lifted so that the measured time is the crawler's, not the quota's (with
real limits one token allows 5,000 requests an hour: see the quota figures for that budget). Runs:

1. first crawl with a token (GraphQL + REST): `seconds`, `github_quota_per_package`;
2. the same again, forced, nothing changed: `refresh_304_ratio`, `github_quota_per_package_refresh`;
3. first crawl without a token (REST only), on a fresh simulator: `github_quota_per_package_rest`;
4. the first token crawl again with the idle-participation shortcut off (a repository with no push
   for 52 weeks + `Tuning.idle_margin_days` otherwise gets a derived all-zero participation without
   a request), fresh simulator: `github_quota_per_package_no_idle_shortcut`;
5. a plain sequential crawler (`simulator.sequential`: one request at a time, same endpoints, no
   ETags, 202s polled like the crawler polls them) on a fresh simulator, so it meets the same 202s
   as run 1: each source's part (every source of `pipelines.sources.registry`) timed on a sample and
   scaled by that source's own population: `baseline_seconds` (the parts in `baseline_parts`).

Quota figures are per GitHub package (REST calls + GraphQL points, as the simulator charged them).
The lifted limits and the shortcut are printed in words before the figures; the last line printed
is one JSON object.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
from packaging.utils import canonicalize_name

from pipelines.crawler.crawl import run_crawl
from pipelines.settings import Settings
from pipelines.sources.http.tuning import Tuning
from pipelines.sources.registry import SOURCES
from pipelines.sources.times import utc_stamp
from simulator.sequential import Sequential
from simulator.server import env_for

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
    return Settings.from_env({**env_for(url), "PULSE_HOME": str(home), "GITHUB_TOKEN": ",".join(tokens)})


REPOSITORY_SOURCES = tuple(source.name for source in SOURCES if source.kind == "repository")


def catalogue_packages(url: str) -> pl.DataFrame:
    """The simulator's catalogue, parsed the way the catalogue asset does (world side)."""
    from simulator.hosts import REPO_HOSTS
    from simulator.world import World  # the same deterministic world the child process serves

    stats = sim_stats(url)["world"]
    world = World(seed=stats["seed"], packages=stats["packages"], hosts=REPO_HOSTS)
    rows = []
    for pid in world.ids():
        p = world.package(pid)
        host = p.host if p.host in REPOSITORY_SOURCES else None
        rows.append({
            "id": pid, "slug": p.slug, "repo_host": host,
            "repo_owner": p.url_owner if host else None, "repo_name": p.url_name if host else None,
            "repo_key": f"{host}:{p.url_owner}/{p.url_name}".lower() if host else None,
            "pypi_name": canonicalize_name(p.pypi_name) if p.pypi_name else None,
            "repo_url_problem": None if host or p.host == "none" else "unsupported host",
        })
    return pl.DataFrame(rows)


def quota_spent(url: str) -> float:
    return float(sum(sim_stats(url)["quota_spent"].values()))


def reset_stats(url: str) -> None:
    httpx.post(f"{url}/_sim/reset", timeout=30)


def baseline(url: str, packages: pl.DataFrame, sample: int, tuning: Tuning) -> dict[str, object]:
    """Each source's part of a sequential crawl, timed on a sample and scaled by that source's population.

    Run it on a fresh simulator, so it meets the 202s the crawler met on its own fresh one.
    """
    since = (datetime.now(UTC) - timedelta(weeks=52)).strftime("%Y-%m-%dT%H:%M:%SZ")
    crawler = Sequential(url, computing_attempts=tuning.computing_attempts, computing_base_s=tuning.computing_base_s,
                         computing_max_s=tuning.computing_max_s,
                         in_window=lambda date: isinstance(date, str) and utc_stamp(date) >= since)
    parts: dict[str, dict[str, float]] = {}
    try:
        for source in SOURCES:
            if source.kind == "package":
                column = source.catalogue_column
                population = packages.filter(pl.col(column).is_not_null())[column].unique(
                    maintain_order=True).to_list()
            else:
                population = packages.filter(pl.col("repo_host") == source.name).unique(
                    "repo_key", maintain_order=True).to_dicts()
            units = population[:sample]
            waited_before = crawler.waited_202_s
            started = time.monotonic()
            for unit in units:
                crawler.fetch(source.name, unit)
            elapsed = time.monotonic() - started
            scale = len(population) / max(1, len(units))
            parts[source.name] = {"sample": len(units), "population": len(population),
                                  "sample_seconds": round(elapsed, 2), "scaled_seconds": round(elapsed * scale, 1),
                                  "scaled_202_wait_seconds": round((crawler.waited_202_s - waited_before) * scale, 1)}
    finally:
        crawler.close()
    seconds = sum(p["scaled_seconds"] for p in parts.values())
    waits = sum(p["scaled_202_wait_seconds"] for p in parts.values())
    return {"seconds": round(seconds, 1), "without_202_waits": round(seconds - waits, 1), "parts": parts,
            "met_202": crawler.met_202}


# pypistats is asked 2 at a time in real runs (a small volunteer service); the benchmark lifts that
# cap, as it lifts GitHub's quota, so the first-crawl figure measures the crawler, not the politeness
LIFTED_CONCURRENCY = {"pypistats": 48}


def lifted_limits(spec: str) -> str:
    """The simulator limits this benchmark lifts, in words (printed next to the figures)."""
    lifted = []
    faults = dict(item.split("=", 1) for item in spec.split(",") if "=" in item)
    names = {"quota": "REST quota per token per hour (GitHub: 5,000)",
             "anon_quota": "anonymous REST quota per hour (60)",
             "graphql_quota": "GraphQL points per token per hour (5,000)"}
    for key, what in names.items():
        if key in faults:
            lifted.append(f"{what} -> {faults[key]}")
    if faults.get("burst") == "0":
        lifted.append("REST requests per minute per token (secondary limit, 900) -> off, and the crawler's "
                      "own pacing below it off (github_rest_per_minute=None)")
    lifted.append("pypistats requests in flight (2, a volunteer service) -> "
                  f"{LIFTED_CONCURRENCY['pypistats']}")
    kept = "kept: 100 requests in flight per token, 202 'computing' answers, ETags/304s, the latency"
    return "; ".join(lifted) + f"; {kept}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-sample", type=int, default=60, help="packages per source timed sequentially")
    parser.add_argument("--faults", default=RELAXED, help="simulator fault/limit spec")
    args = parser.parse_args()

    def fresh() -> tuple[subprocess.Popen, str]:
        return start_simulator(args.packages, args.seed, args.latency_ms, args.faults)

    proc, url = fresh()
    try:
        packages = catalogue_packages(url)
        n_github = packages.filter(pl.col("repo_host") == "github").height  # the quota figures are per GitHub package
        # the simulator's secondary limit is off here, and pypistats' politeness cap (2 in flight: a
        # volunteer service) is lifted like GitHub's quota: the figure is the crawler's speed
        tuning = Tuning(github_rest_per_minute=None, concurrency=LIFTED_CONCURRENCY)
        out: dict[str, object] = {"packages": args.packages, "github_packages": n_github,
                                  "latency_ms": args.latency_ms}
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "token"
            before = quota_spent(url)
            token_settings = settings_for(url, home, ("bench-token-1",))
            first = run_crawl(token_settings, packages, run_id="bench-1", tuning=tuning)
            out["seconds"] = round(first.seconds, 2)
            out["github_quota_per_package"] = round((quota_spent(url) - before) / n_github, 3)
            out["crawler_quota_per_package"] = round(first.quota_spent / n_github, 3)
            out["errors_first_crawl"] = dict(Counter(error[2] for error in first.errors))
            out["requests_by_source"] = first.requests_by_source

            before = quota_spent(url)
            refresh = run_crawl(token_settings, packages, run_id="bench-2", force=True, tuning=tuning)
            answered = sum(v for k, v in refresh.responses_by_status.items() if k)
            graphql_posts = -(-n_github // tuning.graphql_batch)
            primes = 2  # GET /rate_limit (free) and GET /user (which account) per token
            out["refresh_seconds"] = round(refresh.seconds, 2)
            out["refresh_304_ratio"] = round(
                refresh.responses_by_status.get(304, 0) / max(1, answered - graphql_posts - primes), 3)
            out["github_quota_per_package_refresh"] = round((quota_spent(url) - before) / n_github, 3)

            # each of the following on a fresh simulator, so it meets its own 202s ("being computed")
            proc.terminate()
            proc.wait(timeout=10)
            proc, url = fresh()
            before = quota_spent(url)
            rest = run_crawl(settings_for(url, Path(tmp) / "rest", ()), packages, run_id="bench-3",
                             tuning=tuning)
            out["rest_seconds"] = round(rest.seconds, 2)
            out["github_quota_per_package_rest"] = round((quota_spent(url) - before) / n_github, 3)

            # the idle-participation shortcut switched off: what the quota figure owes to it
            proc.terminate()
            proc.wait(timeout=10)
            proc, url = fresh()
            before = quota_spent(url)
            no_shortcut = Tuning(github_rest_per_minute=None, derive_idle_participation=False,
                                 concurrency=LIFTED_CONCURRENCY)
            run_crawl(settings_for(url, Path(tmp) / "no-shortcut", ("bench-token-1",)), packages,
                      run_id="bench-4", tuning=no_shortcut)
            out["github_quota_per_package_no_idle_shortcut"] = round((quota_spent(url) - before) / n_github, 3)

        proc.terminate()
        proc.wait(timeout=10)
        proc, url = fresh()
        sequential = baseline(url, packages, args.baseline_sample, tuning)
        out["baseline_seconds"] = sequential["seconds"]
        out["baseline_seconds_without_202_waits"] = sequential["without_202_waits"]
        out["baseline_parts"] = sequential["parts"]
        out["baseline_met_202"] = sequential["met_202"]
        out["speedup"] = round(float(out["baseline_seconds"]) / float(out["seconds"]), 1)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["simulator_limits"] = args.faults
        out["idle_participation_shortcut"] = (
            f"on: repositories with no push for 52 weeks + {tuning.idle_margin_days:g} days get a derived "
            "all-zero participation without a request")
        out["cpus"] = os.cpu_count()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"simulator limits lifted: {lifted_limits(args.faults)}")
    print(f"idle-participation shortcut: {out['idle_participation_shortcut']}; with it off, "
          f"github_quota_per_package = {out['github_quota_per_package_no_idle_shortcut']} "
          f"(on: {out['github_quota_per_package']})")
    for host, part in sequential["parts"].items():
        print(f"baseline {host}: {part['sample']} of {part['population']} in {part['sample_seconds']} s "
              f"-> {part['scaled_seconds']} s scaled (of which 202 waits {part['scaled_202_wait_seconds']} s)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
