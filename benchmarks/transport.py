"""Does the aiohttp transport under httpx earn its place? The same crawl through both transports.

    uv run python -m benchmarks.transport --packages 300 --latency-ms 120

`pipelines.sources.http.transport.AiohttpTransport` replaces httpcore's connection pool under the
crawl's `httpx.AsyncClient`s because httpcore tops out at a few hundred requests a second under high
concurrency. Whether that matters depends on the pace the upstreams allow, so both transports crawl
the same simulated world twice, alternating (a fresh simulator per run, so each meets the same 202s):

1. **real limits and pace**: the simulator's default limits (5,000 requests an hour per token, its
   secondary per-minute limit on) at a realistic GitHub latency (120 ms), and the crawler's default
   pacing (900 REST requests a minute per token, GitHub's documented secondary limit). Over a long
   crawl GitHub's share is bound by that pace whatever the transport; PyPI, pypistats and the other
   hosts are not paced, so the transport still sets their speed.
2. **lifted limits**: the crawl benchmark's setting (quotas and pacing off, `--fast-latency-ms`), where
   only the client's own speed bounds the crawl.

Each run prints its seconds and requests; the last line is one JSON object with the medians and the
ratio httpcore / aiohttp per scenario (> 1: aiohttp is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmarks.crawl import RELAXED, catalogue_packages, settings_for, start_simulator
from pipelines.crawler.crawl import run_crawl
from pipelines.sources.http.tuning import Tuning


def one_crawl(packages: int, seed: int, latency_ms: float, faults: str, tuning: Tuning, home: Path) -> dict:
    proc, url = start_simulator(packages, seed, latency_ms, faults)
    try:
        catalogue = catalogue_packages(url)
        report = run_crawl(settings_for(url, home, ("bench-token-1",)), catalogue, run_id="bench", tuning=tuning)
        return {"seconds": report.seconds, "requests": sum(report.requests_by_source.values()),
                "quota_wait_s": report.quota_wait_s, "errors": len(report.errors)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def scenario(name: str, args: argparse.Namespace, latency_ms: float, faults: str, base: Tuning) -> dict:
    runs: dict[str, list[dict]] = {"aiohttp": [], "httpcore": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for transport in ("aiohttp", "httpcore"):  # alternating: drift in machine load hits both
                tuning = replace(base, aiohttp_transport=transport == "aiohttp")
                result = one_crawl(args.packages, args.seed, latency_ms, faults, tuning,
                                   Path(tmp) / f"{name}-{transport}-{round_}")
                runs[transport].append(result)
                print(f"{name:>13} {transport:>8} round {round_ + 1}: {result['seconds']:7.2f} s, "
                      f"{result['requests']} requests, {result['quota_wait_s']:.1f} s waiting for quota", flush=True)
    medians = {t: statistics.median(r["seconds"] for r in rs) for t, rs in runs.items()}
    return {
        "aiohttp_seconds": round(medians["aiohttp"], 2),
        "httpcore_seconds": round(medians["httpcore"], 2),
        "ratio_httpcore_over_aiohttp": round(medians["httpcore"] / medians["aiohttp"], 3),
        "requests": [r["requests"] for r in runs["aiohttp"]] + [r["requests"] for r in runs["httpcore"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=120, help="GitHub-like latency for the real pace")
    parser.add_argument("--fast-packages", type=int, default=2000)
    parser.add_argument("--fast-latency-ms", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    out: dict[str, object] = {"packages": args.packages, "latency_ms": args.latency_ms, "rounds": args.rounds}
    out["real_pace"] = scenario("real pace", args, args.latency_ms, "", Tuning())
    fast = argparse.Namespace(**{**vars(args), "packages": args.fast_packages})
    out["lifted_limits"] = scenario("lifted limits", fast, args.fast_latency_ms, RELAXED,
                                    Tuning(github_rest_per_minute=None))
    out["fast_packages"] = args.fast_packages
    print(json.dumps(out))


if __name__ == "__main__":
    main()
