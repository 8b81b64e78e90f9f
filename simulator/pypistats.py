"""pypistats.org: recent download counts and the daily series, modelled on its Flask API
(github.com/crflynn/pypistats.org, ``pypistats/views/api.py`` and ``views/error.py``).

- ``/api/packages/<package>/recent[?period=day|week|month]``: ``{"data": {"last_day", "last_month",
  "last_week"}, "package", "type": "recent_downloads"}``; a bad period is a 404.
- ``/api/packages/<package>/overall[?mirrors=true|false]``: ``{"data": [{"category", "date",
  "downloads"}, ...], "package", "type": "overall_downloads"}``, ordered by category then date,
  180 days ending yesterday (the data is updated once a day).
- The name is normalised as the real one does (``.`` and ``_`` become ``-``) but not lower-cased:
  its table holds PEP 503 names, so ``Django`` is a 404 and ``django`` is not. An unknown project is
  a 404 whose body is the text ``404`` (Flask's error handler), not JSON. Its 429 (IP rate limit,
  body linking the etiquette) is the ``429`` fault (``simulator.faults``), with ``retry-after``.

Numbers: every project on PyPI (``pypi_status == "ok"``) has downloads, drawn from its own RNG keyed
by (seed, package id), never from the world's streams (so worlds stay byte-identical): monthly
downloads lognormal around a median that grows with stars (many tiny packages, a few huge), a
per-package trend and a weekend dip; the last 30 days sum to ``last_month`` exactly, the last 7 to
``last_week``, the last one is ``last_day``; ``with_mirrors`` is a few percent above. The answers
carry a weak ETag (as a CDN in front would), so the crawler's conditional path is exercised.
"""

from __future__ import annotations

import math
import random
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from simulator.core import Resp, SimState, json_resp
from simulator.model import Package, PackageHost
from simulator.world import _seed_int, pep503

NAME = "pypistats"
DAYS = 180
_PATH = re.compile(r"^/api/packages/([^/]+)/(recent|overall)/?$")
RECENT_PERIODS = ("day", "week", "month")
RATE_LIMITED = b'<a href="https://pypistats.org/api/#etiquette">429 RATE LIMIT EXCEEDED</a>'


def route(state: SimState, method: str, path: str, query: str, base: str):
    m = _PATH.match(path)
    if not m or method not in ("GET", "HEAD"):
        return f"{NAME}.other", not_found
    endpoint = m.group(2)
    return f"{NAME}.{endpoint}", lambda: answer(state, unquote(m.group(1)), endpoint, query)


def not_found() -> Resp:
    return Resp(404, b"404", {}, "text/html; charset=utf-8")


def rate_limited(retry_after: int) -> Resp:
    return Resp(429, RATE_LIMITED, {"Retry-After": str(retry_after)}, "text/html; charset=utf-8")


def monthly_median(stars: int) -> float:
    """The median monthly downloads of a package with ``stars`` stars."""
    return 25.0 * (max(0, stars) + 4) ** 0.95


def series(seed: int, today: date, p: Package) -> list[tuple[date, int]]:
    """The package's daily downloads without mirrors, oldest first: ``DAYS`` days ending yesterday."""
    rng = random.Random(_seed_int(seed, NAME, p.id))
    last_month = min(80_000_000, int(monthly_median(p.stars) * math.exp(rng.gauss(0.0, 1.1))))
    trend = rng.gauss(0.0, 0.004)  # log growth per day
    weekend = rng.uniform(0.55, 0.85)
    end = today - timedelta(days=1)
    days = [end - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    weights = [math.exp(trend * (i - DAYS + 1) + rng.gauss(0.0, 0.25)) * (weekend if d.weekday() >= 5 else 1.0)
               for i, d in enumerate(days)]
    scale = last_month / sum(weights[-30:])
    raw = [w * scale for w in weights]
    counts = [round(x) for x in raw[:-30]]
    recent = [int(x) for x in raw[-30:]]
    short = last_month - sum(recent)  # largest remainders first: the month adds up exactly
    for i in sorted(range(30), key=lambda i: raw[DAYS - 30 + i] - recent[i], reverse=True)[:short]:
        recent[i] += 1
    return list(zip(days, counts + recent, strict=True))


def _with_mirrors(n: int, i: int) -> int:
    return n + n // 25 + i % 3


def answer(state: SimState, name: str, endpoint: str, query: str) -> Resp:
    w = state.world
    package = name if name == "__all__" else name.replace(".", "-").replace("_", "-")
    p = w.find_pypi(package) if package == pep503(package) else None  # its table holds PEP 503 names
    if p is None or p.pypi_status != "ok":
        return not_found()
    days = series(w.seed, w.now.date(), p)
    q = parse_qs(query)
    if endpoint == "recent":
        period = q.get("period", [None])[0]
        totals = {"day": days[-1][1], "week": sum(n for _, n in days[-7:]), "month": sum(n for _, n in days[-30:])}
        if period is None:
            data = {f"last_{k}": totals[k] for k in ("day", "month", "week")}
        elif period in RECENT_PERIODS:
            data = {f"last_{period}": totals[period]}
        else:
            return not_found()
        return json_resp({"data": data, "package": package, "type": "recent_downloads"}, etag="weak")
    mirrors = q.get("mirrors", [None])[0]  # "true", "false", anything else: both series
    rows = []
    if mirrors != "false":
        rows += [{"category": "with_mirrors", "date": d.isoformat(), "downloads": _with_mirrors(n, i)}
                 for i, (d, n) in enumerate(days)]
    if mirrors != "true":
        rows += [{"category": "without_mirrors", "date": d.isoformat(), "downloads": n} for d, n in days]
    return json_resp({"data": rows, "package": package, "type": "overall_downloads"}, etag="weak")


def baseline(seq: Any, name: str) -> None:
    """The crawl benchmark's sequential baseline for one PyPI project: its two requests."""
    seq.client.get(f"{seq.url}/api/packages/{name}/recent")
    seq.client.get(f"{seq.url}/api/packages/{name}/overall?mirrors=false")


HOST = PackageHost(name=NAME, prefix="/api/packages/", env=(("PYPISTATS_URL", ""),), route=route,
                   baseline=baseline)
