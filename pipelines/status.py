"""`pulse status`: what the last refresh did, how fresh the published data is, what failed, what quota
is left, and when the next scheduled run comes. Read-only, and fine on a home where nothing ran yet.

Where each part comes from:

- **last run / last crawl**: the Dagster instance of this home (PULSE_HOME/dagster, or DAGSTER_HOME:
  pipelines/runner.py), which holds the runs of `pulse refresh` and of the UI alike: the newest finished
  run (job, status, start, duration, assets materialized per group, what started it) and the newest
  crawl summary (the `crawl` metadata of the raw assets). Nothing is created when no instance exists.
- **core**: the newest row of core's bookkeeping (`main.core_refreshes`: version, full/incremental).
- **freshness**: the last materialization of `exports/published_warehouse` and `exports/api_v4`, judged
  as their `FreshnessPolicy` is (assets/freshness.py, PULSE_FRESHNESS_HOURS); without a Dagster record,
  the published file's modification time.
- **errors**: the published snapshot's `core.endpoint_errors` and `core.crawl_errors` by source and kind
  (and the last crawl's errors by kind, from its metadata).
- **accounts**: the GitHub login of each configured token, as the last crawl learned it (`GET /user`
  at its start; recorded under PULSE_HOME/state/accounts/ by a salted digest, never the token):
  tokens of one login grouped, `token #N` (its place in GITHUB_TOKEN) while its login is unknown.
- **quota**: `GET /rate_limit` of GitHub's REST API per configured token (GitHub: "does not count
  against your primary rate limit"), one row per account (its tokens share one quota: GitHub counts
  a token's requests for its user), or `anonymous`; never the token. `--offline` skips it.
- **schedule**: `daily_refresh`'s cron and time zone, whether it is on (a status set in the UI, stored in
  the instance, wins over PULSE_SCHEDULE) and its next tick (it fires only while the daemon runs: `pulse ui`).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import httpx

from assets.freshness import judge_freshness
from pipelines.alerts import redact
from pipelines.settings import Settings
from pipelines.sources.http.accounts import known_logins, logins_path

T = TypeVar("T")

FRESHNESS_ASSETS = (("exports", "published_warehouse"), ("exports", "api_v4"))
RAW_PREFIX = "raw"
# the daily schedule (pipelines/definitions.py builds it from these; here, `pulse status` does not load
# the whole code location to say when it runs)
SCHEDULE = "daily_refresh"
SCHEDULE_CRON = "0 4 * * *"
SCHEDULE_TIMEZONE = "UTC"


def _dagster_home(settings: Settings) -> Path:
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else settings.home / "dagster"


def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _instance(settings: Settings):
    """The home's Dagster instance, or None when it was never created (no run yet)."""
    import dagster as dg

    path = _dagster_home(settings)
    if not (path / "dagster.yaml").exists() and not (path / "history").exists():
        yield None
        return
    with dg.DagsterInstance.from_config(str(path)) as instance:
        yield instance


def last_run(instance) -> dict[str, Any] | None:
    import dagster as dg

    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    records = instance.get_run_records(dg.RunsFilter(statuses=finished), limit=1)
    if not records:
        return None
    record = records[0]
    run = record.dagster_run
    groups: Counter[str] = Counter()
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        groups[entry.dagster_event.asset_key.path[0]] += 1
    started, ended = record.start_time, record.end_time
    tags = run.tags
    if "pulse/trigger" in tags:
        trigger = tags["pulse/trigger"]
    elif "pulse/cli" in tags:
        trigger = "pulse " + tags["pulse/cli"]
    elif "dagster/schedule_name" in tags:
        trigger = "schedule " + tags["dagster/schedule_name"]
    elif "dagster/from_automation_condition" in tags or "dagster/auto_materialize" in tags:
        trigger = "automation"
    elif "dagster/sensor_name" in tags:
        trigger = "sensor " + tags["dagster/sensor_name"]
    else:
        trigger = "launched (UI)"
    return {
        "run_id": run.run_id, "job": run.job_name, "status": run.status.value, "trigger": trigger,
        "started": _iso(started), "ended": _iso(ended),
        "seconds": round(ended - started, 1) if started and ended else None,
        "materialized": dict(sorted(groups.items())),
    }


def _last_crawl(instance) -> dict[str, Any] | None:

    newest = None
    for key in instance.get_asset_keys(prefix=[RAW_PREFIX]):
        result = instance.fetch_materializations(key, limit=1)
        if result.records and (newest is None or result.records[0].timestamp > newest.timestamp):
            newest = result.records[0]
    if newest is None:
        return None
    metadata = newest.asset_materialization.metadata if newest.asset_materialization else {}
    summary = getattr(metadata.get("crawl"), "value", None)
    kinds = {}
    for key in instance.get_asset_keys(prefix=[RAW_PREFIX]):
        for record in instance.fetch_materializations(key, limit=1).records:
            if record.run_id == newest.run_id and record.asset_materialization is not None:
                value = getattr(record.asset_materialization.metadata.get("errors_by_kind"), "value", None)
                if isinstance(value, dict):
                    kinds.update(value)
    out = {"when": _iso(newest.timestamp), "run_id": newest.run_id, "errors_by_kind": kinds}
    if isinstance(summary, dict):
        out.update({k: summary.get(k) for k in ("planned", "archived", "not_modified", "errors", "quota_spent",
                                                "quota_wait_s", "stopped_by_budget", "seconds")})
        out["requests"] = sum((summary.get("requests_by_source") or {}).values())
    return out


def _last_materialized(instance, path: tuple[str, ...]) -> datetime | None:
    import dagster as dg

    if instance is None:
        return None
    result = instance.fetch_materializations(dg.AssetKey(list(path)), limit=1)
    return datetime.fromtimestamp(result.records[0].timestamp, UTC) if result.records else None


def last_published(settings: Settings, instance, path: tuple[str, ...] = FRESHNESS_ASSETS[0]
                   ) -> tuple[datetime | None, str | None]:
    """(when, "dagster" | "file") of the asset's last materialization, else of the published file's
    modification time; (None, None) before the first publication. `pulse status` and the staleness
    sensor judge the same time."""
    last = _last_materialized(instance, path)
    if last is not None:
        return last, "dagster"
    try:
        return datetime.fromtimestamp(settings.published_path.stat().st_mtime, UTC), "file"
    except OSError:
        return None, None


def freshness(settings: Settings, instance, now: datetime) -> dict[str, Any]:
    out = {}
    for path in FRESHNESS_ASSETS:
        last, source = last_published(settings, instance, path)
        verdict = judge_freshness(last, now, settings.freshness_hours)
        out["/".join(path)] = {"state": verdict.state, "age_hours": None if verdict.age_hours is None
                               else round(verdict.age_hours, 2), "limit_hours": verdict.limit_hours,
                               "last": _iso(verdict.last), "from": source, "line": verdict.line}
    return out


def _read_published(settings: Settings, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T | None:
    """`read` on the published snapshot; None when there is none yet, it cannot be opened, or it is an
    older snapshot without the tables asked for (status never fails for what it cannot see)."""
    if not settings.published_path.exists():
        return None
    try:
        con = duckdb.connect(str(settings.published_path), read_only=True)
    except duckdb.Error:
        return None
    try:
        return read(con)
    except duckdb.Error:
        return None
    finally:
        con.close()


def _core_refresh(settings: Settings) -> dict[str, Any] | None:
    row = _read_published(settings, lambda con: con.execute(
        "SELECT version, mode, refreshed_at FROM main.core_refreshes "
        "WHERE catalogue IS NOT NULL ORDER BY version DESC LIMIT 1").fetchone())
    return None if row is None else {"version": row[0], "mode": row[1], "refreshed_at": _iso(row[2])}


def errors(settings: Settings) -> dict[str, Any]:
    """From the published snapshot: unavailable endpoints, and packages with errors by source and kind
    (the same reading as `pulse refresh`'s closing lines)."""

    def read(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        by_kind = con.execute("SELECT source, kind, count(DISTINCT package_id) FROM core.crawl_errors "
                              "WHERE severity = 'error' GROUP BY ALL ORDER BY 3 DESC, 1, 2").fetchall()
        failing = con.execute("SELECT count(DISTINCT package_id) FROM core.crawl_errors "
                              "WHERE severity = 'error'").fetchone()[0]
        notices = con.execute("SELECT kind, count(DISTINCT package_id) FROM core.crawl_errors "
                              "WHERE severity = 'info' GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
        endpoints = con.execute("SELECT source, endpoint, message FROM core.endpoint_errors ORDER BY 1, 2").fetchall()
        return {
            "endpoints": [{"source": s, "endpoint": k, "message": redact(" ".join(str(m or "not working").split()))}
                          for s, k, m in endpoints],
            "packages_by_kind": [{"source": s, "kind": k, "packages": n} for s, k, n in by_kind],
            "failing_packages": failing,
            "notices": [{"kind": k, "packages": n} for k, n in notices],
        }

    found = _read_published(settings, read)
    return found if found is not None else {"endpoints": [], "packages_by_kind": [], "failing_packages": 0,
                                            "notices": []}


def accounts(settings: Settings) -> list[dict[str, Any]]:
    """The configured tokens grouped by the GitHub login the last crawl learned for them (`GET /user`
    at crawl start, recorded by `pipelines.sources.http.accounts.record_logins`): one entry per login,
    with how many tokens it has; a token whose login is not known is `token #N` (its place in
    GITHUB_TOKEN). No file, no network: fine offline. [] without a token."""
    tokens = list(settings.github_tokens)
    if not tokens:
        return []
    known = known_logins(logins_path(settings.home, settings.url("github")), tokens)
    groups: dict[str, dict[str, Any]] = {}
    for number, (login, learned) in enumerate(known, 1):
        name = login.lower() if login else f"token #{number}"
        group = groups.setdefault(name, {"account": name, "login_known": bool(login), "tokens": 0,
                                         "token_numbers": [], "learned": None})
        group["tokens"] += 1
        group["token_numbers"].append(number)
        if learned is not None and (group["learned"] is None or _iso(learned) > group["learned"]):
            group["learned"] = _iso(learned)
    return list(groups.values())


def _ask_rate_limit(http: httpx.Client, url: str, token: str | None, secrets: list[str]) -> dict[str, Any]:
    """{"core": {...}, "graphql": {...}} of one token's `GET /rate_limit`, or {"error": ...}."""
    headers = {"Accept": "application/vnd.github+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = http.get(url, headers=headers)
        body = response.json() if response.is_success else {}
    except (httpx.HTTPError, ValueError) as exc:
        return {"error": redact(f"{type(exc).__name__}: {exc}", secrets)}
    resources = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(resources, dict):
        return {"error": f"HTTP {response.status_code}"}
    out: dict[str, Any] = {}
    for name in ("core", "graphql"):
        data = resources.get(name)
        if isinstance(data, dict):
            out[name] = {"remaining": data.get("remaining"), "limit": data.get("limit"),
                         "reset": _iso(float(data["reset"])) if isinstance(data.get("reset"), int) else None}
    return out


def quota(settings: Settings, client: httpx.Client | None = None) -> list[dict[str, Any]]:
    """GitHub's `/rate_limit` per account: remaining/limit/reset of `core` and `graphql`.

    GitHub counts a token's requests for the user who owns it, so the tokens of one login share one
    quota: they are asked one by one (`/rate_limit` is free) and shown as one row named by the login
    (`accounts`), with the lowest `remaining` they answered (the newest view of the shared budget).
    A token whose login is not known is its own row, `token #N`; no token: `anonymous`."""
    url = settings.url("github").rstrip("/") + "/rate_limit"
    tokens = [t.get_secret_value() for t in settings.github_tokens]
    secrets = [t for t in tokens if t]
    groups = accounts(settings) or [{"account": "anonymous", "tokens": 0, "token_numbers": [None]}]
    rows = []
    with (contextlib.nullcontext(client) if client else httpx.Client(timeout=5.0)) as http:
        for group in groups:
            answers = [_ask_rate_limit(http, url, tokens[n - 1] if n else None, secrets)
                       for n in group["token_numbers"]]
            row: dict[str, Any] = {"account": group["account"], "tokens": group["tokens"]}
            for name in ("core", "graphql"):
                seen = [a[name] for a in answers if isinstance(a.get(name), dict)]
                if seen:
                    row[name] = min(seen, key=lambda q: q["remaining"] if isinstance(q["remaining"], int) else 1 << 62)
            if "core" not in row and "graphql" not in row:
                row["error"] = next(a["error"] for a in answers if "error" in a)
            rows.append(row)
    return rows


def schedule(settings: Settings, instance, now: datetime) -> dict[str, Any]:
    from dagster._utils.schedules import cron_string_iterator  # Dagster's own cron arithmetic

    on, source = settings.schedule_on, "PULSE_SCHEDULE"
    if instance is not None:
        from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

        for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE):
            if state.instigator_name == SCHEDULE and state.status != InstigatorStatus.DECLARED_IN_CODE:
                on, source = state.status == InstigatorStatus.RUNNING, "set in the UI"
    tick = next(cron_string_iterator(now.timestamp(), SCHEDULE_CRON, SCHEDULE_TIMEZONE))
    return {"name": SCHEDULE, "cron": SCHEDULE_CRON, "timezone": SCHEDULE_TIMEZONE,
            "on": on, "decided_by": source, "next": _iso(tick) if on else None, "next_if_on": _iso(tick)}


def collect(settings: Settings, *, now: datetime | None = None, online: bool = True,
            client: httpx.Client | None = None) -> dict[str, Any]:
    """Everything `pulse status` shows, as JSON-ready data."""
    now = now or datetime.now(UTC)
    status: dict[str, Any] = {"home": str(settings.home), "now": _iso(now)}
    with _instance(settings) as instance:
        status["last_run"] = last_run(instance) if instance is not None else None
        status["last_crawl"] = _last_crawl(instance) if instance is not None else None
        status["freshness"] = freshness(settings, instance, now)
        status["schedule"] = schedule(settings, instance, now)
    status["core"] = _core_refresh(settings)
    status["errors"] = errors(settings)
    status["accounts"] = accounts(settings)
    status["quota"] = quota(settings, client) if online else None
    return status


def _tokens(n: int) -> str:
    return f"{n} token" + ("" if n == 1 else "s")


def lines(status: dict[str, Any]) -> list[str]:
    """The human summary, one fact a line."""
    out = [f"home: {status['home']}"]
    run = status["last_run"]
    if run is None:
        out.append("last run: none yet (run `pulse refresh`, or the refresh job in `pulse ui`)")
    else:
        done = ", ".join(f"{group} {n}" for group, n in run["materialized"].items()) or "nothing"
        took = f"{run['seconds']:.1f} s" if run["seconds"] is not None else "?"
        out.append(f"last run: {run['job']} {run['status']} at {run['started']} in {took} ({run['trigger']}); "
                   f"materialized {done}; run {run['run_id']}")
    crawl = status["last_crawl"]
    if crawl is not None and crawl.get("requests") is not None:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(crawl["errors_by_kind"].items())) or "none"
        out.append(f"last crawl: {crawl['when']}: {crawl['requests']} requests, {crawl['archived']} archived "
                   f"({crawl['not_modified']} unchanged), quota spent {crawl['quota_spent']}, errors by kind: {kinds}"
                   + (" (stopped by its time budget)" if crawl.get("stopped_by_budget") else ""))
    if status["core"] is not None:
        core = status["core"]
        out.append(f"core: version {core['version']} ({core['mode']}) at {core['refreshed_at']}")
    for name, verdict in status["freshness"].items():
        out.append(f"freshness {name}: {verdict['line']}")
    errs = status["errors"]
    for endpoint in errs["endpoints"]:
        out.append(f"endpoint unavailable: {endpoint['source']} {endpoint['endpoint']}: {endpoint['message']}")
    if errs["packages_by_kind"]:
        detail = ", ".join(f"{e['source']}/{e['kind']} {e['packages']}" for e in errs["packages_by_kind"])
        out.append(f"errors: {errs['failing_packages']} packages ({detail})")
    else:
        out.append("errors: none recorded")
    if status.get("accounts"):
        named = ", ".join(f"{a['account']} ({_tokens(a['tokens'])})" for a in status["accounts"])
        unknown = "" if all(a["login_known"] for a in status["accounts"]) else \
            "; a `token #N`'s login is learned by the next crawl (GET /user)"
        out.append(f"github accounts: {named}{unknown}")
    if status["quota"] is None:
        out.append("quota: not asked (--offline)")
    else:
        for row in status["quota"]:
            who = row["account"] if row["tokens"] <= 1 else f"{row['account']} ({_tokens(row['tokens'])})"
            if "error" in row:
                out.append(f"quota {who}: unknown ({row['error']})")
                continue
            parts = [f"{name} {row[name]['remaining']}/{row[name]['limit']} (reset {row[name]['reset']})"
                     for name in ("core", "graphql") if name in row]
            out.append(f"quota {who}: {', '.join(parts) or 'unknown'}")
    sched = status["schedule"]
    state = "on" if sched["on"] else "off"
    next_run = (f"next run {sched['next']}" if sched["on"] else
                f"would run next at {sched['next_if_on']}; turn on with PULSE_SCHEDULE=on or `pulse ui --schedule`")
    out.append(f"schedule {sched['name']}: {sched['cron']} {sched['timezone']}, {state} ({sched['decided_by']}); "
               f"{next_run}")
    return out
