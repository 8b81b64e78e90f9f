"""ISO 8601 timestamps as the upstreams and the catalogue write them: the one parser.

Hosts disagree on the spelling (`Z` or `+01:00`, with or without fractions, GitHub's stamps without
an offset in a few old bodies, the catalogue's `T` or space), so every stamp is read here and
compared or stored as UTC. `parse_iso` reads one value (the crawl, the catalogue); `iso_column` is
the same reading over a polars column (core assembly), where a value it cannot read becomes null
rather than failing a whole build.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl


def parse_iso(value: object, *, strict: bool = False) -> datetime | None:
    """An ISO 8601 string (offset, `Z` or naive = UTC; `T` or space) or a datetime -> aware UTC
    datetime. None and "" are None; anything else unreadable is None, or a ValueError if `strict`."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            if strict:
                raise
            return None
    elif strict:
        raise ValueError(f"not a datetime string: {value!r}")
    else:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def utc_stamp(value: object) -> str:
    """A timestamp as UTC 'YYYY-MM-DDTHH:MM:SSZ', comparable as text; missing or unreadable -> ''."""
    when = parse_iso(value)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def iso_column(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 text with an offset ("...Z", "...+01:00", with or without fractions) -> UTC datetime
    in microseconds; null when absent or unreadable (a host's odd stamp must not fail a build)."""
    return expr.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False, time_unit="us"
    )
