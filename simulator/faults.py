"""Fault and limit configuration: the ``--faults`` grammar.

A spec is a comma separated list of ``key=value`` items (see simulator/README.md)::

    5xx=0.05,timeout=0.01,reset=0.01,malformed=0.01,truncated=0.01,
    stats202forever=0.02,slow=0.05:2000,ratelimit=exhaust,5xxburst=200:20

The same keys are accepted as a dict (``{"5xx": 0.05, "slow": "0.05:2000"}``).
Every decision is deterministic: a hash of (fault seed, fault, method, path+query, n-th time that
request was seen) for per-request faults, and of (fault seed, fault, repository) for per-repository
ones, so the same crawl against the same world meets the same faults. 5xx bursts (``5xxburst=N:K``)
are correlated: they follow the count of requests to a host, from a phase drawn from (seed, host).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

PER_REQUEST = ("5xx", "500", "502", "503", "429", "timeout", "reset", "malformed", "truncated", "slow")
PER_REPO = ("stats202forever", "repo5xx")
# whole-catalogue faults (``catalogue=<mode>``, every djangopackages list answer; simulator/catalogue.py)
CATALOGUE_MODES = ("empty", "truncated", "500after1", "html")


def fault_hosts(repo_hosts: Iterable[str]) -> tuple[str, ...]:
    """The hosts faults can hit by name, with the registry's repository and package hosts
    (``simulator.hosts.FAULT_HOST_NAMES``) passed in; by default faults hit all but the last, the catalogue."""
    return ("github", "pypi", *repo_hosts, "catalogue")


@dataclass
class Faults:
    rates: dict[str, float] = field(default_factory=dict)  # fault -> probability
    slow_ms: float = 2000.0
    timeout_ms: float = 30_000.0
    retry_after: int = 1  # seconds a "429" fault's Retry-After asks for
    seed: int = 0
    hosts: tuple[str, ...] | None = None  # the hosts faults hit (None: every one but the catalogue)
    # GitHub limits
    ratelimit: str = ""  # "" | exhaust | exhaust429
    ratelimit_status: int = 403
    quota: int = 5000  # per token per hour (REST core)
    anon_quota: int = 60  # per client without a token per hour
    graphql_quota: int = 5000  # points per token per hour
    concurrency: int = 100  # in-flight requests per token before a secondary limit
    burst: int = 900  # REST points per account per `burst_window` s before a secondary limit (0: off)
    graphql_burst: int = 2000  # GraphQL points (queries) per account per `burst_window` s (0: off)
    burst_window: float = 60.0  # seconds (GitHub: a minute; tests scale it down)
    # correlated failures ("5xxburst=N:K"): per host, after every N requests the next K answer 502/503
    outage_every: int = 0
    outage_length: int = 0
    # the djangopackages catalogue as a whole service (simulator/catalogue.py)
    catalogue: str = ""  # "" | empty | truncated | 500after1 | html (CATALOGUE_MODES)
    catalogue_drop: int = 0  # packages really gone from the catalogue (a real shrink), drawn from the seed
    catalogue_max_limit: int = 0  # the largest page the lists serve, whatever `limit` asks (DRF max_limit; 0: none)
    catalogue_edit: int = 0  # packages an editor changed since the world's `now`, drawn from the seed
    # whole-endpoint faults (every request, whatever ``hosts`` says): ``graphql=404|401|403|502`` (the
    # GraphQL endpoint answers that to every query), ``simple=absent`` (the PyPI Simple API answers
    # 404 for every project while /pypi/<name>/json works), ``htmlproxy=<host>`` (a proxy's HTML 502
    # page for every request to that host)
    graphql_status: int = 0
    simple_absent: bool = False
    htmlproxy: str = ""

    def outage_at(self, host: str, n: int) -> bool:
        """Whether the ``n``-th request (0-based) to ``host`` falls into a 5xx burst.

        Requests to a host run in cycles of N good then K failing; where in its cycle a host starts is
        drawn from (fault seed, host), so hosts fail at different moments, the same way for a seed.
        """
        every, length = self.outage_every, self.outage_length
        if every <= 0 or length <= 0:
            return False
        cycle = every + length
        phase = int(unit_hash(self.seed, "5xxburst", host) * cycle)
        return (n + phase) % cycle >= every

    def applies_to(self, host: str) -> bool:
        return host != "catalogue" if self.hosts is None else host in self.hosts

    def roll(self, fault: str, *key: object) -> bool:
        rate = self.rates.get(fault, 0.0)
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return unit_hash(self.seed, fault, *key) < rate


def unit_hash(*parts: object) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _float(key: str, value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"fault {key!r}: {value!r} is not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault {key!r}: probability {rate} is not within 0..1")
    return rate


def parse_faults(spec: str | dict | Faults | None, repo_hosts: Iterable[str] = ()) -> Faults:
    """Parse a fault spec string or dict into :class:`Faults` (raises ValueError when invalid).

    ``repo_hosts``: the registry's host names (``h.name for h in simulator.hosts.REPO_HOSTS``), which
    ``hosts=`` may name besides github, pypi and the catalogue.
    """
    if isinstance(spec, Faults):
        return spec
    faults = Faults()
    if not spec:
        return faults
    if isinstance(spec, str):
        items: list[tuple[str, str]] = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ValueError(f"fault item {part!r} is not key=value")
            k, v = part.split("=", 1)
            items.append((k.strip(), v.strip()))
    else:
        items = [(str(k), str(v)) for k, v in spec.items()]
    int_fields = {f.name for f in fields(Faults) if f.type in ("int",)}
    for key, value in items:
        if key in PER_REQUEST or key in PER_REPO:
            if key in ("slow", "timeout") and ":" in value:
                rate, ms = value.split(":", 1)
                faults.rates[key] = _float(key, rate)
                setattr(faults, f"{key}_ms", float(ms))
            else:
                faults.rates[key] = _float(key, value)
        elif key == "5xxburst":
            every, sep, length = value.partition(":")
            try:
                faults.outage_every, faults.outage_length = int(every), int(length) if sep else 1
            except ValueError:
                raise ValueError("5xxburst must be N:K (after every N requests to a host, K fail)") from None
            if faults.outage_every < 1 or faults.outage_length < 0:
                raise ValueError("5xxburst: N must be >= 1 and K >= 0")
        elif key == "ratelimit":
            if value not in ("exhaust", "exhaust429", ""):
                raise ValueError("ratelimit must be exhaust or exhaust429")
            faults.ratelimit = value
            if value == "exhaust429":
                faults.ratelimit_status = 429
        elif key == "ratelimit_status":
            if value not in ("403", "429"):
                raise ValueError("ratelimit_status must be 403 or 429")
            faults.ratelimit_status = int(value)
        elif key == "catalogue":
            if value not in (*CATALOGUE_MODES, ""):
                raise ValueError(f"catalogue must be one of {', '.join(CATALOGUE_MODES)}")
            faults.catalogue = value
        elif key == "graphql":
            if value not in ("401", "403", "404", "502"):
                raise ValueError("graphql must be 401, 403, 404 or 502")
            faults.graphql_status = int(value)
        elif key == "simple":
            if value != "absent":
                raise ValueError("simple must be absent")
            faults.simple_absent = True
        elif key == "htmlproxy":
            if value not in fault_hosts(repo_hosts):
                raise ValueError(f"htmlproxy: unknown host {value!r}; known: {fault_hosts(repo_hosts)}")
            faults.htmlproxy = value
        elif key == "hosts":
            hosts = tuple(h for h in value.replace("+", " ").replace("|", " ").split() if h)
            known = fault_hosts(repo_hosts)
            bad = [h for h in hosts if h not in known]
            if bad:
                raise ValueError(f"unknown hosts {bad}; known: {known}")
            faults.hosts = hosts
        elif key == "burst_window":
            try:
                faults.burst_window = float(value)
            except ValueError:
                raise ValueError("burst_window must be a number of seconds") from None
            if faults.burst_window <= 0:
                raise ValueError("burst_window must be > 0")
        elif key in int_fields:
            try:
                setattr(faults, key, int(value))
            except ValueError:
                raise ValueError(f"{key} must be an integer") from None
        else:
            raise ValueError(f"unknown fault {key!r}")
    return faults
