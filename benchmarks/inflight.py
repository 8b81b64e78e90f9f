"""What the machine-wide cap on GitHub requests in flight costs a request.

    uv run python -m benchmarks.inflight --requests 20000

`pipelines.sources.http.slots.Slots` (lock files, non-blocking `flock`, polling when full) against
the in-process semaphores it sits beside: `asyncio.Semaphore` and the crawl's `AdaptiveGate`
(`Upstream.semaphore`). Three measures, each the median of `--rounds` rounds:

1. **uncontended**: one task, acquire then release, `--requests` times: the floor a request pays;
2. **contended, one process**: `--tasks` tasks sharing a cap of `--cap`, each holding its slot over
   one event-loop turn (`asyncio.sleep(0)`), so most acquires wait: the cost under load, per request;
3. **contended, two processes**: the same in two processes at once over one directory (the shards of
   `--processes 2`), `Slots` only (the in-process semaphores cannot share a cap): throughput of the
   pair, and the most slots each held at once.

A real GitHub request takes 100-500 ms, so microseconds per request are what matters here. The last
line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.sources.http.quota import AdaptiveGate
from pipelines.sources.http.slots import Slots, reserve_for


class _SlotsGate:
    """`Slots` with the `async with` face of the other two."""

    def __init__(self, slots: Slots, key: str = "bench") -> None:
        self.slots, self.key, self._held = slots, key, []

    async def __aenter__(self) -> None:
        self._held.append(await self.slots.acquire(self.key))

    async def __aexit__(self, *exc: object) -> None:
        self.slots.release(self.key, self._held.pop())


async def _uncontended(gate, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        async with gate:
            pass
    return (time.perf_counter() - start) / requests * 1e6


async def _contended(gate, requests: int, tasks: int) -> float:
    per_task = requests // tasks

    async def worker() -> None:
        for _ in range(per_task):
            async with gate:
                await asyncio.sleep(0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return (time.perf_counter() - start) / (per_task * tasks) * 1e6


async def _baseline(requests: int, tasks: int) -> float:
    """The event loop's own cost of the contended loop, without any gate."""
    per_task = requests // tasks

    async def worker() -> None:
        for _ in range(per_task):
            await asyncio.sleep(0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return (time.perf_counter() - start) / (per_task * tasks) * 1e6


def _gates(kind: str, cap: int, directory: Path):
    """A gate of `kind` letting as many requests of one account through as `Slots(cap)` does."""
    if kind == "asyncio.Semaphore":
        return asyncio.Semaphore(cap - reserve_for(cap))
    if kind == "AdaptiveGate":
        return AdaptiveGate(cap - reserve_for(cap))
    return _SlotsGate(Slots(directory, cap))


def _two_process_child(directory: str, cap: int, requests: int, tasks: int, start_at: float, out) -> None:
    async def main() -> tuple[float, int]:
        slots = Slots(Path(directory), cap)
        gate = _SlotsGate(slots)
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        per_task = requests // tasks
        held_max = 0

        async def worker() -> None:
            nonlocal held_max
            for _ in range(per_task):
                async with gate:
                    held_max = max(held_max, slots.held("bench"))
                    await asyncio.sleep(0)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - began
        slots.close()
        return elapsed, held_max

    out.put(asyncio.run(main()))


def _two_processes(cap: int, requests: int, tasks: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        start_at = time.time() + 1.5
        procs = [context.Process(target=_two_process_child, args=(tmp, cap, requests, tasks, start_at, queue))
                 for _ in range(2)]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join()
    seconds = max(r[0] for r in results)
    return {"requests_per_s_both": round(2 * (requests // tasks) * tasks / seconds),
            "held_max_per_process": [r[1] for r in results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--cap", type=int, default=100, help="the machine-wide cap (an account gets 95 of 100)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("asyncio.Semaphore", "AdaptiveGate", "Slots"):
            uncontended, contended = [], []
            for i in range(args.rounds):
                gate = _gates(kind, args.cap, Path(tmp) / f"{kind}-{i}")
                uncontended.append(asyncio.run(_uncontended(gate, args.requests)))
                gate = _gates(kind, args.cap, Path(tmp) / f"{kind}-c{i}")
                contended.append(asyncio.run(_contended(gate, args.requests, args.tasks)))
                if isinstance(gate, _SlotsGate):
                    gate.slots.close()
            figures[kind] = {"uncontended_us": round(statistics.median(uncontended), 2),
                             "contended_us": round(statistics.median(contended), 2)}
            print(kind, figures[kind], flush=True)
    baseline = statistics.median(asyncio.run(_baseline(args.requests, args.tasks)) for _ in range(args.rounds))
    figures["event loop alone (contended loop, no gate)"] = {"contended_us": round(baseline, 2)}
    figures["Slots, two processes"] = _two_processes(args.cap, args.requests, args.tasks)
    print("Slots, two processes", figures["Slots, two processes"], flush=True)
    print(json.dumps({"requests": args.requests, "tasks": args.tasks, "cap": args.cap, **figures}))


if __name__ == "__main__":
    main()
