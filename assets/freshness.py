"""Freshness of what Package Pulse publishes, as `pulse status` reports it.

The same rule as the `FreshnessPolicy.time_window` the exports carry in the UI (assets/automation.py):
fresh while the last materialization is younger than PULSE_FRESHNESS_HOURS, stale from then on,
unknown before the first one. Pure: the clock is an argument, so tests pass a fake one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Freshness:
    state: str  # fresh | stale | unknown
    age_hours: float | None
    limit_hours: float
    last: datetime | None

    @property
    def line(self) -> str:
        if self.state == "unknown":
            return f"unknown: never materialized (stale after {self.limit_hours:g} h)"
        age = f"{self.age_hours * 60:.0f} min" if self.age_hours < 1 else f"{self.age_hours:.1f} h"
        return f"{self.state}: {age} old (stale after {self.limit_hours:g} h)"


def judge_freshness(last: datetime | None, now: datetime, limit_hours: float) -> Freshness:
    """`last`: the time of the last materialization (aware), None when there was none."""
    if last is None:
        return Freshness("unknown", None, limit_hours, None)
    age = now - last
    state = "stale" if age >= timedelta(hours=limit_hours) else "fresh"
    return Freshness(state, max(age.total_seconds(), 0.0) / 3600, limit_hours, last)
