"""What the raw archive already holds: per request key, its ETag and when it was last good.

The crawl is incremental: a key fetched recently is skipped, a stale one is asked with its newest
good ETag (a 304 costs no GitHub quota), and facts from stored repository bodies (canonical name
after a rename, default branch, last push) and PyPI redirects (the display name's path) steer the
next requests. Reading only the columns this needs keeps planning cheap on a big archive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import polars as pl

from pipelines.sources.times import parse_iso
from warehouse.archive import scan_archive

PYPI_JSON_PATH = re.compile(r"^/pypi/[A-Za-z0-9._%-]+/json$")  # where a PyPI 301 may lead us next time


@dataclass
class KeyState:
    etag: str | None
    last_ok: datetime | None  # newest good fetch, 304, or 409 (empty repository: commits = [])
    seen: bool = True


def load_state(raw_dir: Any) -> tuple[dict[str, KeyState], dict[str, dict[str, Any]]]:
    """Stored ETag/freshness per request key, and canonical facts from stored repository bodies.

    Same rules as `warehouse.archive.latest_responses()` (newest attempt; newest good = 2xx without
    error_kind), but reading bodies only for repository metadata, so a big archive stays cheap.
    """
    scan = scan_archive(raw_dir)
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
        states[key] = KeyState(etag=good_etag, last_ok=last_ok)
    facts: dict[str, dict[str, Any]] = {}
    bodies = (
        scan.filter(pl.col("endpoint").is_in(["repo", "graphql_repo", "gitlab_project"]) & good_row
                    & pl.col("body").is_not_null())
        .select("request_key", "endpoint", "body", "fetched_at")
        .sort("fetched_at")
        .group_by("request_key")
        .agg(pl.col("endpoint").last(), pl.col("body").last())
        .collect()
    )
    for key, endpoint, body in bodies.iter_rows():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        if endpoint == "repo":
            facts[key] = {"full_name": data.get("full_name"), "default_branch": data.get("default_branch"),
                          "last_activity": data.get("pushed_at"), "nonempty": rest_nonempty(data)}
        elif endpoint == "graphql_repo":
            ref = data.get("defaultBranchRef") or {}
            facts[key] = {"full_name": data.get("nameWithOwner"), "default_branch": ref.get("name"),
                          "last_activity": graphql_last_activity(data), "nonempty": graphql_nonempty(data)}
        else:
            facts[key] = {"project_id": data.get("id")}
    # PyPI answers /pypi/<normalised name>/json with a 301 to the project's display name
    # (/pypi/Django/json): remember where it led, so the next run asks there at once
    moved = (
        scan.filter((pl.col("endpoint") == "pypi_json") & pl.col("error_kind").is_null()
                    & pl.col("status").is_in([200, 304]) & pl.col("headers").str.contains('"location"', literal=True))
        .select("request_key", "headers", "fetched_at")
        .sort("fetched_at")
        .group_by("request_key")
        .agg(pl.col("headers").last())
        .collect()
    )
    for key, headers in moved.iter_rows():
        try:
            location = orjson.loads(headers).get("location")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(location, str) and PYPI_JSON_PATH.match(location):
            facts[key] = {"path": location}
    return states, facts


def rest_nonempty(repo: dict[str, Any]) -> bool | None:
    size = repo.get("size")
    return size > 0 if isinstance(size, int) else None


def graphql_nonempty(node: dict[str, Any]) -> bool | None:
    empty = node.get("isEmpty")
    return (not empty) if isinstance(empty, bool) else None


def graphql_last_activity(node: dict[str, Any]) -> str | None:
    """The later of `pushedAt` and the newest default-branch commit of a GraphQL repository node."""
    target = ((node.get("defaultBranchRef") or {}).get("target") or {})
    stamps = [node.get("pushedAt"), target.get("committedDate") if isinstance(target, dict) else None]
    parsed = [(t, parse_iso(t)) for t in stamps if isinstance(t, str)]
    parsed = [(t, p) for t, p in parsed if p is not None]
    return max(parsed, key=lambda tp: tp[1])[0] if parsed else None
