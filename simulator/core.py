"""Shared server state and response helpers."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from simulator.model import gh_time

if TYPE_CHECKING:  # neither imports this module (nor the host modules that do)
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
    fault: str | None = None  # a per-repository fault (repo5xx, stats202forever) that produced it


def json_resp(obj: object, status: int = 200, headers: dict[str, str] | None = None,
              etag: str | None = None, content_type: str = JSON) -> Resp:
    return Resp(status, orjson.dumps(obj), headers or {}, content_type, etag)


def query_int(q: dict, name: str, default: int, lo: int, hi: int) -> int:
    """A paging parameter from ``parse_qs`` output, clamped to ``lo..hi`` (``default`` when not a number)."""
    try:
        return max(lo, min(hi, int(q.get(name, [default])[0])))
    except ValueError:
        return default


def norm_time(value: str) -> str:
    """An ISO 8601 query time as ``gh_time`` renders one, to compare with commit dates (as given if unparsable)."""
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return gh_time(dt if dt.tzinfo else dt.replace(tzinfo=UTC)) or str(value)


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


LOG_FIELDS = ("method", "path", "route", "status", "client", "fault", "token", "if_none_match",
              "if_modified_since", "accept", "user_agent", "resource", "charged", "cost", "at", "account")


def busiest_window(times: list[float], window_s: float) -> int:
    """The most of `times` (seconds) within any `window_s` seconds (a sliding window, both ends in)."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] > window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class SimState:
    """Everything the server remembers between requests (thread-safe reads through ``lock``)."""

    def __init__(self, world: World, faults: Faults, latency_ms: float, log_cap: int = 100_000) -> None:
        self.world = world
        self.faults = faults
        self.latency_ms = latency_ms
        self.log_cap = max(1, int(log_cap))
        self.lock = threading.Lock()
        self.windows: dict[tuple[str, str], RateWindow] = {}
        self.inflight: Counter[str] = Counter()
        self.bursts: dict[str, deque[float]] = {}
        self.stats_calls: Counter[tuple[int, str]] = Counter()
        self.seen: Counter[str] = Counter()
        self.host_seen: Counter[str] = Counter()  # requests per upstream host (5xxburst cycles)
        self.in_flight: Counter[str] = Counter()  # requests being answered, per route
        self.reset_stats()

    def reset_stats(self) -> None:
        with self.lock:
            self.total = 0
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.by_token: Counter[str] = Counter()
            self.by_route_status: Counter[str] = Counter()
            self.quota_spent: Counter[str] = Counter()
            self.quota_by_resource: dict[str, Counter[str]] = {"core": Counter(), "graphql": Counter()}
            self.faults_injected: Counter[str] = Counter()
            self.log: deque[tuple] = deque(maxlen=self.log_cap)
            self.dropped = 0
            self.peak_in_flight = sum(self.in_flight.values())

    # ------------------------------------------------------------------ in flight
    def begin(self, route: str) -> None:
        with self.lock:
            self.in_flight[route] += 1
            now = sum(self.in_flight.values())
            if now > self.peak_in_flight:
                self.peak_in_flight = now

    def end(self, route: str) -> None:
        with self.lock:
            self.in_flight[route] -= 1
            if self.in_flight[route] <= 0:
                del self.in_flight[route]

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
               quota: int = 0, fault: str | None = None, resource: str | None = None,
               headers: Mapping[str, str] | None = None, at: float | None = None,
               account: str | None = None) -> None:
        """Count one answered request and log what was asked (``who``: token fingerprint or "anonymous";
        ``at``: when it arrived, epoch seconds; ``account``: the login of its token, or "anonymous")."""
        h = headers or {}
        entry = (method, path, route, status, who, fault, who if who.startswith("tok_") else None,
                 h.get("If-None-Match"), h.get("If-Modified-Since"), h.get("Accept"), h.get("User-Agent"),
                 resource, quota, quota if resource == "graphql" else None, at, account)
        with self.lock:
            self.total += 1
            self.by_route[route] += 1
            self.by_status[str(status)] += 1
            self.by_token[who] += 1
            self.by_route_status[f"{route} {status}"] += 1
            if quota:
                self.quota_spent[who] += quota
                self.quota_by_resource.setdefault(resource or "core", Counter())[who] += quota
            if fault:
                for name in fault.split("+"):
                    self.faults_injected[name] += 1
            if len(self.log) == self.log.maxlen:
                self.dropped += 1
            self.log.append(entry)

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests": self.total,
                "by_route": dict(sorted(self.by_route.items())),
                "by_status": dict(sorted(self.by_status.items())),
                "by_token": dict(sorted(self.by_token.items())),
                "by_route_status": dict(sorted(self.by_route_status.items())),
                # GitHub points spent per client, REST (core) and GraphQL together ...
                "quota_spent": dict(sorted(self.quota_spent.items())),
                # ... and split by resource: {"core": {client: n}, "graphql": {client: points}}
                "quota_spent_by_resource": {res: dict(sorted(c.items()))
                                            for res, c in sorted(self.quota_by_resource.items())},
                "faults_injected": dict(sorted(self.faults_injected.items())),
                "in_flight": dict(sorted(self.in_flight.items())),
                "peak_in_flight": self.peak_in_flight,
                "log": {"kept": len(self.log), "dropped": self.dropped, "cap": self.log_cap},
                "rate_limits": {
                    f"{k} {res}": {"limit": w.limit, "used": w.used, "remaining": w.remaining,
                                   "reset": w.reset}
                    for (k, res), w in sorted(list(self.windows.items()))
                },
                "world": {"seed": self.world.seed, "packages": self.world.n,
                          "now": self.world.now.isoformat()},
            }

    def requests(self) -> list[dict]:
        """The request log, oldest first (at most ``log_cap`` entries; see ``snapshot()["log"]``)."""
        with self.lock:
            entries = list(self.log)
        return [dict(zip(LOG_FIELDS, e, strict=True)) for e in entries]
