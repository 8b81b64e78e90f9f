"""Shared server state and response helpers."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import orjson

from simulator.faults import Faults
from simulator.world import World

JSON = "application/json; charset=utf-8"


@dataclass(slots=True)
class Resp:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = JSON
    etag: str | None = None  # "weak" | "strong" | None: compute an ETag and honour If-None-Match
    quota: bool = True  # whether a GitHub REST response is charged against the primary quota


def jdump(obj: object) -> bytes:
    return orjson.dumps(obj)


def json_resp(obj: object, status: int = 200, headers: dict[str, str] | None = None,
              etag: str | None = None, content_type: str = JSON) -> Resp:
    return Resp(status, orjson.dumps(obj), headers or {}, content_type, etag)


def fingerprint(token: str) -> str:
    """A short non-reversible fingerprint of a token, for stats and logs."""
    return "tok_" + hashlib.sha256(b"pulse-sim:" + token.encode()).hexdigest()[:10]


class RateWindow:
    __slots__ = ("limit", "reset", "used")

    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.used = 0
        self.reset = int(now) + 3600

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class SimState:
    """Everything the server remembers between requests (thread-safe reads through ``lock``)."""

    def __init__(self, world: World, faults: Faults, latency_ms: float) -> None:
        self.world = world
        self.faults = faults
        self.latency_ms = latency_ms
        self.lock = threading.Lock()
        self.windows: dict[tuple[str, str], RateWindow] = {}
        self.inflight: Counter[str] = Counter()
        self.bursts: dict[str, deque[float]] = {}
        self.stats_calls: Counter[tuple[int, str]] = Counter()
        self.seen: Counter[str] = Counter()
        self.reset_stats()

    def reset_stats(self) -> None:
        with self.lock:
            self.total = 0
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.by_token: Counter[str] = Counter()
            self.by_route_status: Counter[str] = Counter()
            self.quota_spent: Counter[str] = Counter()
            self.faults_injected: Counter[str] = Counter()
            self.log: deque[tuple] = deque(maxlen=100_000)

    # ------------------------------------------------------------------ rate limits
    def window(self, key: str, resource: str, limit: int) -> RateWindow:
        now = time.time()
        w = self.windows.get((key, resource))
        if w is None or now >= w.reset:
            w = RateWindow(limit, now)
            if self.faults.ratelimit and resource in ("core", "graphql"):
                w.used = limit
            self.windows[(key, resource)] = w
        return w

    def record(self, *, route: str, status: int, who: str, method: str, path: str,
               quota: int = 0, fault: str | None = None) -> None:
        with self.lock:
            self.total += 1
            self.by_route[route] += 1
            self.by_status[str(status)] += 1
            self.by_token[who] += 1
            self.by_route_status[f"{route} {status}"] += 1
            if quota:
                self.quota_spent[who] += quota
            if fault:
                self.faults_injected[fault] += 1
            self.log.append((method, path, route, status, who, fault))

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests": self.total,
                "by_route": dict(sorted(self.by_route.items())),
                "by_status": dict(sorted(self.by_status.items())),
                "by_token": dict(sorted(self.by_token.items())),
                "by_route_status": dict(sorted(self.by_route_status.items())),
                "quota_spent": dict(sorted(self.quota_spent.items())),
                "faults_injected": dict(sorted(self.faults_injected.items())),
                "rate_limits": {
                    f"{k} {res}": {"limit": w.limit, "used": w.used, "remaining": w.remaining,
                                   "reset": w.reset}
                    for (k, res), w in sorted(list(self.windows.items()))
                },
                "world": {"seed": self.world.seed, "packages": self.world.n,
                          "now": self.world.now.isoformat()},
            }

    def requests(self) -> list[dict]:
        with self.lock:
            entries = list(self.log)
        keys = ("method", "path", "route", "status", "client", "fault")
        return [dict(zip(keys, e, strict=True)) for e in entries]
