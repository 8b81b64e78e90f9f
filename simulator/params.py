"""Query-string and time helpers the simulated forges share."""

from __future__ import annotations

from datetime import UTC, datetime

from simulator.world import gh_time


def int_param(q: dict, name: str, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(q.get(name, [default])[0])))
    except ValueError:
        return default


def norm_time(value: str) -> str:
    """An ISO `since`/`until` parameter as the world's UTC stamps (unparsable: as given)."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return gh_time(dt if dt.tzinfo else dt.replace(tzinfo=UTC)) or value
