"""Simulator throughput and memory.

Run: ``uv run python -m benchmarks.simulator_throughput [--seconds 5] [--connections 8]``

Starts ``pulse simulate`` (``python -m simulator.cli``) in a subprocess, hits simple routes over
keep-alive connections from this process (aiohttp client), and reports requests/second per route mix.
Then starts a 100,000-package world, touches a few thousand packages across every upstream and
reports the server's RSS. The last line printed is one JSON object with all the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time

import aiohttp
import psutil

TOKEN = {"Authorization": "Bearer bench-token"}


def start_server(packages: int, faults: str = "burst=0,quota=100000000") -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "simulator.cli", "--port", "0", "--packages", str(packages), "--faults", faults]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    deadline = time.time() + 180
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.match(r"export PULSE_CATALOGUE=(\S+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("simulator did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def hammer(url: str, paths: list[str], seconds: float, connections: int) -> dict:
    conn = aiohttp.TCPConnector(limit=connections, force_close=False)
    counts = {"ok": 0, "other": 0}
    stop_at = time.perf_counter() + seconds
    async with aiohttp.ClientSession(base_url=url, connector=conn, headers=TOKEN) as session:
        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < stop_at:
                async with session.get(paths[i % len(paths)]) as r:
                    await r.read()
                    counts["ok" if r.status == 200 else "other"] += 1
                i += connections
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(k) for k in range(connections)])
        elapsed = time.perf_counter() - t0
    total = counts["ok"] + counts["other"]
    return {"requests": total, "seconds": round(elapsed, 2), "rps": round(total / elapsed, 1),
            "non_200": counts["other"]}


def paths_for(url: str, packages: int) -> dict[str, list[str]]:
    from simulator.hosts import REPO_HOSTS
    from simulator.world import World

    w = World(1, packages, hosts=REPO_HOSTS)
    healthy = w.select("healthy", limit=50)
    on_pypi = w.select("on_pypi", limit=50)
    return {
        "catalogue_root": ["/api/v4/"],
        "v4_package_detail": [f"/api/v4/packages/{i}/" for i in range(1, 51)],
        "github_repo": [f"/api/v3/repos/{p.full_name}" for p in healthy],
        "github_participation": [f"/api/v3/repos/{p.full_name}/stats/participation" for p in healthy],
        # the display name: what PyPI answers 200 for (other spellings get a 301 to it)
        "pypi_json": [f"/pypi/{p.pypi_name}/json" for p in on_pypi],
    }


def memory_100k(packages: int, touches: int) -> dict:
    from simulator.hosts import REPO_HOSTS
    from simulator.world import World

    t0 = time.perf_counter()
    proc, url = start_server(packages)
    startup = time.perf_counter() - t0
    try:
        rss_idle = psutil.Process(proc.pid).memory_info().rss
        w = World(1, packages, hosts=REPO_HOSTS)
        rng = random.Random(7)
        paths = []
        for _ in range(touches):
            p = w.package(rng.randrange(1, packages + 1))
            paths.append(f"/api/v4/packages/{p.id}/")
            if p.host == "github":
                paths.append(f"/api/v3/repos/{p.full_name}")
                paths.append(f"/api/v3/repos/{p.full_name}/contributors?per_page=100")
            if p.pypi_name and p.pypi_status == "ok":
                paths.append(f"/pypi/{p.pypi_name}/json")
        paths.append("/api/v4/packages/?limit=1000&offset=50000")
        paths.append("/api/v4/search/?q=admin")

        async def walk() -> float:
            conn = aiohttp.TCPConnector(limit=8)
            async with aiohttp.ClientSession(base_url=url, connector=conn, headers=TOKEN) as s:
                t = time.perf_counter()
                sem = asyncio.Semaphore(8)

                async def one(path: str) -> None:
                    async with sem, s.get(path) as r:
                        await r.read()
                await asyncio.gather(*[one(x) for x in paths])
                return time.perf_counter() - t

        walked = asyncio.run(walk())
        rss = psutil.Process(proc.pid).memory_info().rss
    finally:
        stop(proc)
    return {"packages": packages, "startup_s": round(startup, 2), "requests": len(paths),
            "walk_s": round(walked, 2), "rss_idle_mb": round(rss_idle / 2**20, 1),
            "rss_after_mb": round(rss / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per route mix")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    ap.add_argument("--packages", type=int, default=250)
    ap.add_argument("--big", type=int, default=100_000, help="world size for the memory measurement")
    ap.add_argument("--touches", type=int, default=2000)
    args = ap.parse_args()

    proc, url = start_server(args.packages)
    results: dict[str, dict] = {}
    try:
        mixes = paths_for(url, args.packages)
        asyncio.run(hammer(url, mixes["catalogue_root"], 0.5, args.connections))  # warm-up
        for name, paths in mixes.items():
            results[name] = asyncio.run(hammer(url, paths, args.seconds, args.connections))
            r = results[name]
            print(f"{name:24s} {r['rps']:9.1f} req/s  ({r['requests']} requests in {r['seconds']} s, "
                  f"{r['non_200']} non-200, {args.connections} keep-alive connections)")
    finally:
        stop(proc)
    mem = memory_100k(args.big, args.touches)
    print(f"memory with {mem['packages']} packages: {mem['rss_idle_mb']} MB after start-up "
          f"({mem['startup_s']} s), {mem['rss_after_mb']} MB after {mem['requests']} requests "
          f"({mem['walk_s']} s)")
    simple = results["catalogue_root"]["rps"]
    summary = {
        "benchmark": "simulator_throughput", "cpus": os.cpu_count(), "connections": args.connections,
        "simple_rps": simple, "rps": {k: v["rps"] for k, v in results.items()},
        "target_rps": 2000, "meets_target": simple >= 2000,
        "memory": mem, "memory_target_mb": 1024, "meets_memory_target": mem["rss_after_mb"] < 1024,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
