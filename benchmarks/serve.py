"""`pulse serve` under load: 64 keep-alive clients over a 5,000-package world; prints ONE JSON line.

    uv run python -m benchmarks.serve [--packages 5000] [--workers N] [--seconds 8] [--workdir DIR]

The world is the transform benchmark's synthetic archive (`benchmarks.synth`: simulator-shaped bodies,
5,000 packages in ~10 s) run through the real core/health/history transform and published; it is kept
in `--workdir` (default: a folder under the system temp dir named for the size) and reused when its
published.duckdb exists. The static export tree (`write_tree`, what `exports/api_v4` writes) beside it
is the baseline, served by the standard library's `ThreadingHTTPServer` (HTTP/1.1 keep-alive).

Each kind is measured alone (detail, list, search; then a mix of 50/30/20), after a one-second warm-up,
by a lean client in its own process (asyncio streams, uvloop when present, minimal parsing) so that
its CPU is accounted apart from the server's: `cpu` reports both in cores. Searches are a realistic
mix: 80% from a pool of 40 popular queries (repeated: the response cache answers them), 20% unique
(a new prefix/typo each time: always computed). Latencies in ms; targets from issue 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PULSE = str(Path(sys.executable).parent / "pulse")
TARGETS = {"detail_rps": 3000, "list_rps": 3000, "detail_p99_ms": 50, "list_p99_ms": 50, "search_p99_ms": 100}
SEED = 10


# --- the world ---------------------------------------------------------------------------------------


def build_world(home: Path, packages: int) -> dict:
    """Synthesise, transform and publish a world (skipped when published.duckdb is there), and write the
    static export tree from it."""
    import polars as pl

    from assets.exports.api_v4 import ApiContext, load_api_tables, render_all, write_tree
    from assets.exports.health_api import load_health_documents
    from benchmarks.transform import run_pipeline, synthesise
    from warehouse.db import connect_reader, connect_writer
    from warehouse.load import replace_tables

    started = time.perf_counter()
    built = False
    if not (home / "published.duckdb").exists():
        home.mkdir(parents=True, exist_ok=True)
        synthesise(home, packages)
        catalogue = {p.stem: pl.read_parquet(p) for p in sorted((home / "catalogue").glob("*.parquet"))}
        con = connect_writer(home / "warehouse.duckdb")
        try:
            replace_tables(con, {f"catalogue.{k}": v for k, v in catalogue.items()})
            run_pipeline(con, home, catalogue, "bench-serve")
        finally:
            con.close()
        built = True
    if built or not (home / "export" / "api" / "v4" / "index.json").exists():
        ctx = ApiContext.create("http://127.0.0.1:8000", "UTC")
        con = connect_reader(home / "published.duckdb")
        try:
            tables, documents = load_api_tables(con), load_health_documents(con, ctx)
        finally:
            con.close()
        write_tree(home / "export", render_all(tables, ctx), ctx, documents.items())
    return {"built": built, "seconds": round(time.perf_counter() - started, 1)}


def world_ids(home: Path) -> dict[str, list]:
    import duckdb

    con = duckdb.connect(str(home / "published.duckdb"), read_only=True)
    try:
        return {
            "packages": [r[0] for r in con.execute("SELECT id FROM core.packages").fetchall()],
            "slugs": [r[0] for r in con.execute("SELECT slug FROM core.packages").fetchall()],
            "titles": [r[0] for r in con.execute("SELECT title FROM core.packages").fetchall()],
            "grids": [r[0] for r in con.execute("SELECT id FROM core.grids").fetchall()],
            "categories": [r[0] for r in con.execute("SELECT id FROM core.categories").fetchall()],
        }
    finally:
        con.close()


def request_mix(ids: dict[str, list], kind: str, count: int, rng: random.Random) -> list[str]:
    """`count` request targets of one kind (detail, list, search), in a random but fixed order."""
    packages, grids, categories = ids["packages"], ids["grids"], ids["categories"]
    if kind == "detail":
        def one() -> str:
            roll = rng.random()
            if roll < 0.8:
                key = rng.choice(packages) if rng.random() < 0.7 else rng.choice(ids["slugs"])
                return f"/api/v4/packages/{key}/"
            if roll < 0.95:
                return f"/api/v4/grids/{rng.choice(grids)}/"
            return f"/api/v4/categories/{rng.choice(categories)}/"
    elif kind == "list":
        def one() -> str:
            roll = rng.random()
            if roll < 0.85:
                return f"/api/v4/packages/?limit=20&offset={20 * rng.randrange(len(packages) // 20)}"
            if roll < 0.95:
                return f"/api/v4/grids/?limit=20&offset={20 * rng.randrange(max(1, len(grids) // 20))}"
            return "/api/v4/categories/"
    else:
        words = sorted({w.lower() for t in ids["titles"] for w in t.split()} | set(ids["slugs"][:200]))
        popular = [rng.choice(words)[: rng.randint(3, 8)] for _ in range(40)]

        def one() -> str:
            if rng.random() < 0.8:
                query = rng.choice(popular)
            else:  # unique: a prefix with a typo and a random tail, never seen before
                word = rng.choice(words)
                cut = rng.randint(2, max(2, len(word)))
                query = word[:cut] + rng.choice("aeiouxyz") + str(rng.randrange(10**6))
            return f"/api/v4/search/?q={query}"
    return [one() for _ in range(count)]


# --- the baseline: the static tree over the standard library ----------------------------------------------


class TreeHandler(SimpleHTTPRequestHandler):
    """`http.server` on the export tree: `<dir>/` serves `<dir>/index.json`, keep-alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def translate_path(self, path: str) -> str:
        local = super().translate_path(path)
        return os.path.join(local, "index.json") if os.path.isdir(local) else local

    def log_message(self, format: str, *args: object) -> None:
        pass


class TreeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 refuses some of 64 connections opened at once


def start_baseline(export_dir: Path) -> tuple[ThreadingHTTPServer, int]:
    server = TreeServer(("127.0.0.1", 0), partial(TreeHandler, directory=str(export_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


# --- the load generator (its own process) ------------------------------------------------------------------


async def _connection(port: int, targets: list[bytes], stop_at: float, warm_until: float,
                      latencies: list[float], errors: list[str], done: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    n = len(targets)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                break
            writer.write(targets[i % n])
            i += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):  # closed by the server: count, reconnect
                errors.append("closed")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            status = head[9:12]
            at = head.lower().find(b"\r\ncontent-length:")
            length = int(head[at + 17: head.index(b"\r\n", at + 2)]) if at >= 0 else 0
            if length:
                await reader.readexactly(length)
            if status != b"200":
                errors.append(status.decode())
            done.append(1)
            if started >= warm_until:
                latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def _load(port: int, paths: list[str], connections: int, seconds: float, warmup: float) -> dict:
    targets = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: identity\r\n\r\n".encode()
               for p in paths]
    per = max(1, len(targets) // connections)
    latencies: list[float] = []
    errors: list[str] = []
    done: list[int] = []
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + seconds
    usage = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(_connection(port, targets[c * per:] + targets[: c * per], stop_at, warm_until,
                                       latencies, errors, done) for c in range(connections)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = seconds  # requests started inside the measured window; a straggler does not stretch it
    latencies.sort()
    count = len(latencies)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {
        "rps": round(count / elapsed),
        "p50_ms": round(latencies[count // 2] * 1000, 2) if count else None,
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] * 1000, 2) if count else None,
        "requests": count,
        "requests_with_warmup": len(done),
        "errors": len(errors),
        "client_cores": round(cpu / (elapsed + warmup), 2),
    }


def client_main(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    result = run(_load(spec["port"], spec["paths"], spec["connections"], spec["seconds"], spec["warmup"]))
    print(json.dumps(result))


def measure(port: int, paths: list[str], server_pids: list[int], args: argparse.Namespace, work: Path) -> dict:
    """One load phase from a client process; the server's CPU over the same time, in cores."""
    spec = work / "client-spec.json"
    spec.write_text(json.dumps({"port": port, "paths": paths, "connections": args.connections,
                                "seconds": args.seconds, "warmup": args.warmup}))
    processes = [psutil.Process(pid) for pid in server_pids]
    before = sum(sum(p.cpu_times()[:2]) for p in processes)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.serve", "--client", str(spec)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the load client failed: {done.stderr[-3000:]}")
    elapsed = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {result}", file=sys.stderr)
    used = sum(sum(p.cpu_times()[:2]) for p in processes) - before
    result["server_cores"] = round(used / elapsed, 2)
    # robust to a busy machine (other processes take cores, not CPU time per request): what one
    # fully available core would sustain at this cost per request
    total = result.pop("requests_with_warmup")
    result["server_cpu_us_per_request"] = round(used / total * 1e6) if total else None
    result["rps_per_server_core"] = round(total / used) if used else None
    return result


# --- the run ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pulse(home: Path, workers: int) -> tuple[subprocess.Popen, int, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_PUBLIC_URL", "DAGSTER_HOME")}
    env["PULSE_HOME"] = str(home)
    started = time.perf_counter()
    process = subprocess.Popen([PULSE, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"pulse serve exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /api/v4/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    # every worker listens once one answers? give the others their load time too
                    if workers > 1:
                        time.sleep(1.0)
                    return process, port, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("pulse serve did not start within 180 s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="pulse serve --workers (default: the number of cores, as pulse serve)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--client", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client_main(args.client)
        return

    load_before = os.getloadavg()[0]
    home = args.workdir or Path(tempfile.gettempdir()) / f"pulse-bench-serve-{args.packages}"
    world = build_world(home, args.packages)
    ids = world_ids(home)
    rng = random.Random(SEED)
    mixes = {kind: request_mix(ids, kind, 20_000, rng) for kind in ("detail", "list", "search")}
    mixed = [rng.choice(mixes[k]) for k in rng.choices(["detail", "list", "search"], [5, 3, 2], k=20_000)]

    process, port, startup = start_pulse(home, args.workers)
    try:
        pids = [process.pid] + [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        pulse = {kind: measure(port, paths, pids, args, home) for kind, paths in mixes.items()}
        pulse["mix"] = measure(port, mixed, pids, args, home)
    finally:
        process.terminate()
        process.wait(timeout=30)

    baseline_server, baseline_port = start_baseline(home / "export")
    try:
        # the static tree has one page per list (query strings are ignored by a file server)
        # ids only: the tree has no slug folders
        baseline = {kind: measure(baseline_port, [p for p in mixes[kind] if p.split("/")[4].isdigit()
                                                  or kind == "list"], [os.getpid()], args, home)
                    for kind in ("detail", "list")}
    finally:
        baseline_server.shutdown()

    met = {
        "detail_rps": pulse["detail"]["rps"] >= TARGETS["detail_rps"],
        "list_rps": pulse["list"]["rps"] >= TARGETS["list_rps"],
        "detail_p99_ms": pulse["detail"]["p99_ms"] < TARGETS["detail_p99_ms"],
        "list_p99_ms": pulse["list"]["p99_ms"] < TARGETS["list_p99_ms"],
        "search_p99_ms": pulse["search"]["p99_ms"] < TARGETS["search_p99_ms"],
    }
    print(json.dumps({
        "benchmark": "serve",
        "packages": len(ids["packages"]),
        "world": "synth (benchmarks.synth + core/health/history transform, published)",
        "world_build_s": world["seconds"],
        "cores": os.cpu_count(),
        "load_average_before": round(load_before, 2),  # > cores: other work competed for the CPU
        "connections": args.connections,
        "seconds_per_phase": args.seconds,
        "workers": args.workers,
        "startup_s": round(startup, 1),
        "pulse": pulse,
        "baseline_http_server": baseline,
        "targets": TARGETS,
        "met": met,
        "ok": all(met.values()),
    }))


if __name__ == "__main__":
    main()
