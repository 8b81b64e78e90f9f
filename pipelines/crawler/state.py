"""What the raw archive already holds: per request key, its ETag and when it was last good.

The crawl is incremental: a key fetched recently is skipped, a stale one is asked with its newest
good ETag (a 304 costs no quota), and facts from stored answers (a canonical name after a rename,
a default branch, the last push, where a redirect led: each source's `remember`) steer the next
requests. Reading only the columns this needs keeps planning cheap on a big archive.
"""

from __future__ import annotations

from typing import Any

import orjson
import polars as pl

from pipelines.sources.crawling import KeyState
from pipelines.sources.registry import BY_NAME, SOURCES
from warehouse.archive import scan_archive

DEFINITE = ("not_found", "gone")  # failures that are the upstream's answer, not a failure to answer


def load_state(raw_dir: Any) -> tuple[dict[str, KeyState], dict[str, dict[str, Any]]]:
    """Stored ETag/freshness per request key, and the facts sources remember from stored answers.

    Same rules as `warehouse.archive.latest_responses()` (newest attempt; newest good = 2xx without
    error_kind), but reading bodies only for the endpoints sources remember, so a big archive stays cheap.
    """
    scan = scan_archive(raw_dir, [source.name for source in SOURCES])
    good_row = pl.col("status").is_between(200, 299) & pl.col("error_kind").is_null()
    meta = scan.select("request_key", "status", "error_kind", "etag", "fetched_at")
    newest = meta.sort("fetched_at").group_by("request_key").agg(
        pl.col("status").last(), pl.col("error_kind").last(), pl.col("fetched_at").last())
    good = meta.filter(good_row).sort("fetched_at").group_by("request_key").agg(
        pl.col("etag").last().alias("good_etag"), pl.col("fetched_at").last().alias("good_fetched_at"))
    frame = newest.join(good, on="request_key", how="left").select(
        "request_key", "status", "error_kind", "fetched_at", "good_etag", "good_fetched_at").collect()
    states: dict[str, KeyState] = {}
    for key, status, error_kind, fetched_at, good_etag, good_fetched_at in frame.iter_rows():
        last_ok = good_fetched_at
        if status in (304, 409) and error_kind is None and fetched_at is not None:
            last_ok = fetched_at if last_ok is None else max(last_ok, fetched_at)
        answered = fetched_at if error_kind in DEFINITE else None
        states[key] = KeyState(etag=good_etag, last_ok=last_ok,
                               last_answer=max((t for t in (last_ok, answered) if t is not None), default=None),
                               failing=error_kind is not None)
    facts: dict[str, dict[str, Any]] = {}
    remembered = [e for source in SOURCES for e in source.remembered]
    bodies = (
        scan.filter(pl.col("endpoint").is_in(remembered) & good_row & pl.col("body").is_not_null())
        .select("request_key", "source", "endpoint", "body", "fetched_at")
        .sort("fetched_at")
        .group_by("request_key")
        .agg(pl.col("source").last(), pl.col("endpoint").last(), pl.col("body").last())
        .collect()
    )
    for key, source, endpoint, body in bodies.iter_rows():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict) and source in BY_NAME and endpoint in BY_NAME[source].remembered:
            found = BY_NAME[source].remember(endpoint, data)
            if found is not None:
                facts[key] = found
    redirected = [e for source in SOURCES for e in source.remembered_redirects]
    moved = (
        scan.filter(pl.col("endpoint").is_in(redirected) & pl.col("error_kind").is_null()
                    & pl.col("status").is_in([200, 304]) & pl.col("headers").str.contains('"location"', literal=True))
        .select("request_key", "source", "endpoint", "headers", "fetched_at")
        .sort("fetched_at")
        .group_by("request_key")
        .agg(pl.col("source").last(), pl.col("endpoint").last(), pl.col("headers").last())
        .collect()
    )
    for key, source, endpoint, headers in moved.iter_rows():
        try:
            location = orjson.loads(headers).get("location")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(location, str) and source in BY_NAME:
            found = BY_NAME[source].remember_redirect(endpoint, location)
            if found is not None:
                facts[key] = found
    return states, facts
