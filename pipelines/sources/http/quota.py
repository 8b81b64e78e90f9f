"""Rate limits: GitHub's primary quota per account, when to give up waiting, and back-offs.

Hitting a limit costs more than respecting it (403s, then back-offs of a minute or more), so the
crawl keeps its own account: requests in flight are reserved against the quota the last answer
reported, tokens of one account (the same `GET /user` login) share one quota view, as GitHub counts
them, and an upstream's concurrency halves when a secondary limit trips anyway. The per-minute
secondary limit itself is kept by the shared pace (`pipelines.sources.http.pace`), which the
transport applies to every request. Every wait is checked against the crawl's time budget first; a
wait that would overrun it raises `BudgetExceeded` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import SecretStr

# Waits a user should see even when step logs are hidden (`pulse refresh` without -v shows this
# logger's records on the console): a quota reset being waited for, a secondary-limit back-off, a
# source stopped by the time budget. Never a token: messages name tokens by count only.
NOTICE = logging.getLogger("pulse.notice")
NOTICE.addHandler(logging.NullHandler())  # nobody listening (Dagster UI, tests): no stderr fallback


def notify(log: logging.Logger | logging.LoggerAdapter | Any, message: str) -> None:
    """`message` as a warning on the crawl's own log (Dagster's step log) and on `NOTICE`."""
    log.warning(message)
    if log is not NOTICE:
        NOTICE.warning(message)


def utc_clock(epoch: float) -> str:
    """An epoch time as `HH:MM:SS UTC` (when a reset happens, for the wait messages)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


class BudgetExceeded(Exception):
    """Waiting (for a quota reset or a secondary limit) would overrun the crawl's time budget."""


def header_int(value: str | None) -> int | None:
    """A rate-limit header as an int (some upstreams send `60.0`); absent or garbage -> None."""
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds (`120`) or an HTTP-date (RFC 9110 10.2.3);
    absent or garbage -> None, a date in the past -> 0."""
    seconds = header_int(value)
    if seconds is not None or value is None:
        return None if seconds is None else float(max(0, seconds))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# --------------------------------------------------------------------------------------------
# Primary rate limits (GitHub): one state per token and resource ("core", "graphql")


@dataclass
class _Quota:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds
    in_flight: int = 0

    def available(self, now: float) -> float:
        if self.remaining is None or (self.reset_at is not None and now >= self.reset_at):
            # unknown (or a new window): assume a full quota, so ties spread over the tokens
            return (self.limit or 5000) - self.in_flight
        return self.remaining - self.in_flight


class TokenPool:
    """Chooses a token per request by remaining quota and waits (or stops) when all are spent.

    Requests in flight are reserved against `remaining`, so the crawl throttles *before* the
    quota runs out instead of provoking 403s. `tokens` may be empty (anonymous REST). Tokens of one
    account share one quota (`set_accounts`); `estimate(index, resource)`, when given, says how long
    the token's account would wait for its pace, so a token whose account has room is preferred.
    """

    def __init__(
        self,
        tokens: Sequence[SecretStr] = (),
        *,
        deadline: float | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._tokens: list[SecretStr | None] = list(tokens) or [None]
        self._group: list[int] = list(range(len(self._tokens)))  # token -> first token of its account
        self.estimate: Callable[[int, str], float] | None = None
        self._quota: dict[tuple[int, str], _Quota] = {}
        self.deadline = deadline  # monotonic
        self.log = log or logging.getLogger(__name__)
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._logged_wait: float | None = None
        self.waited_s = 0.0  # seconds of distinct reset waits (not multiplied by the waiting requests)
        self.used: Counter[int] = Counter()

    def clock(self) -> float:
        return self._clock()

    @property
    def authenticated(self) -> bool:
        return self._tokens[0] is not None

    @property
    def size(self) -> int:
        """How many identities requests rotate over (1 for anonymous access)."""
        return len(self._tokens)

    def observe(self, index: int, resource: str, limit: Any, remaining: Any, reset: Any) -> None:
        """What GitHub says a token has left (`GET /rate_limit`), before any request spends it."""
        if not all(isinstance(v, int | float) for v in (limit, remaining, reset)):
            return
        quota = self.quota(index, resource)
        quota.limit, quota.remaining, quota.reset_at = int(limit), int(remaining), float(reset)

    def set_accounts(self, accounts: Sequence[str | None]) -> None:
        """Which account each token belongs to (None: unknown, its own): one quota per account."""
        first: dict[str, int] = {}
        self._group = [index if account is None else first.setdefault(account, index)
                       for index, account in enumerate(accounts)]

    @property
    def accounts(self) -> list[int]:
        """The first token of each account (one per distinct quota)."""
        return sorted(set(self._group))

    def quota(self, index: int, resource: str) -> _Quota:
        return self._quota.setdefault((self._group[index], resource), _Quota())

    def auth_header(self, index: int) -> dict[str, str]:
        token = self._tokens[index]
        return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}

    async def acquire(self, resource: str) -> int:
        while True:
            now = self._clock()
            best, best_avail, best_delay = 0, float("-inf"), float("inf")
            for index in range(len(self._tokens)):
                avail = self.quota(index, resource).available(now)
                if avail <= 0:
                    continue
                delay = self.estimate(index, resource) if self.estimate is not None else 0.0
                if (delay, -avail) < (best_delay, -best_avail):
                    best, best_avail, best_delay = index, avail, delay
            if best_avail > 0:  # the transport waits for the pace of the token's account
                self.quota(best, resource).in_flight += 1
                self.used[best] += 1
                return best
            if any(q.in_flight for (_, res), q in self._quota.items() if res == resource):
                # the last requests are out: their answers (a free 304, a new window) may free quota
                await self._sleep(0.05)
                continue
            resets = [
                q.reset_at for (_, res), q in self._quota.items() if res == resource and q.reset_at is not None
            ]
            reset_at = min(resets) if resets else now + 60
            wait = max(0.0, reset_at - now) + 1.0
            who = (f"all {len(self._tokens)} token(s)" if self.authenticated
                   else "anonymous access (set GITHUB_TOKEN for 5,000 requests an hour per token)")
            name = "REST" if resource == "core" else "GraphQL" if resource == "graphql" else resource
            await self.wait(wait, f"github: {name} quota spent on {who}")

    async def wait(self, seconds: float, why: str) -> None:
        """Sleep `seconds`, or raise BudgetExceeded when that overruns the deadline.

        The first request to wait for a given reset says so (`notify`: visible in `pulse refresh`
        without -v); the others waiting for the same reset wait silently.
        """
        if self.deadline is not None and self._monotonic() + seconds > self.deadline:
            raise BudgetExceeded(f"{why}; waiting {seconds:.0f} s would exceed the time budget")
        until = self._clock() + seconds
        key = round(until)
        if self._logged_wait is None or abs(self._logged_wait - key) > 1:
            self._logged_wait = key
            self.waited_s += seconds
            hint = ("within the time budget" if self.deadline is not None
                    else "use --time-budget to stop instead")
            notify(self.log, f"{why} — waiting {seconds:.0f} s until {utc_clock(until)} for the reset; {hint}")
        await self._sleep(seconds)

    def release(self, index: int, resource: str, headers: Mapping[str, str] | None) -> None:
        quota = self.quota(index, resource)
        quota.in_flight = max(0, quota.in_flight - 1)
        if headers is None:
            return
        remaining = header_int(headers.get("x-ratelimit-remaining"))
        reset = header_int(headers.get("x-ratelimit-reset"))
        limit = header_int(headers.get("x-ratelimit-limit"))
        if remaining is None:
            return
        if limit is not None:
            quota.limit = limit
        if reset is not None and (quota.reset_at is None or reset > quota.reset_at):
            quota.reset_at, quota.remaining = float(reset), remaining  # a new window
        elif quota.remaining is None or reset is None or reset == quota.reset_at:
            quota.remaining = remaining if quota.remaining is None else min(quota.remaining, remaining)

    def exhausted(self, index: int, resource: str, reset: int | None) -> None:
        quota = self.quota(index, resource)
        quota.remaining = 0
        now = self._clock()
        if reset is not None:
            quota.reset_at = max(float(reset), now + 1.0)  # clock skew: never a reset in the past
        elif quota.reset_at is None or quota.reset_at <= now:
            quota.reset_at = now + 60

    def exhausted_headers(self, resource: str, headers: Mapping[str, str]) -> None:
        """Mark every token's `resource` quota spent (GraphQL RATE_LIMITED names no token)."""
        reset = header_int(headers.get("x-ratelimit-reset"))
        accounts = self.accounts
        for index in accounts:
            quota = self.quota(index, resource)
            if (quota.remaining is not None and quota.remaining < 5) or len(accounts) == 1:
                self.exhausted(index, resource, reset)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"token": index, "resource": res, "remaining": q.remaining, "reset_at": q.reset_at}
            for (index, res), q in sorted(self._quota.items())
        ]


# --------------------------------------------------------------------------------------------
# Secondary rate limits: fewer requests in flight after each one


class AdaptiveGate:
    """A semaphore that backs off and recovers (AIMD, like TCP's congestion window).

    Halved on each secondary rate limit (not below 1); grown back by one after every
    `regrow_after` answers in a row that were not rate limited, up to the configured `limit`, so
    one burst of 403s does not slow the rest of a long crawl for good.
    """

    def __init__(self, limit: int, regrow_after: int = 50) -> None:
        self.max_limit = max(1, limit)
        self.limit = self.max_limit
        self.regrow_after = max(1, regrow_after)
        self.active = 0
        self.peak = 0  # most requests ever in flight at once (tests, diagnostics)
        self._successes = 0
        self._grown = 0  # slots added since the last release: wake that many more waiters
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1
            self.peak = max(self.peak, self.active)

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify(1 + self._grown)
            self._grown = 0

    def shrink(self) -> int:
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        return self.limit

    def success(self) -> int:
        """One answer that was not rate limited; returns the (possibly grown) limit."""
        if self.limit < self.max_limit:
            self._successes += 1
            if self._successes >= self.regrow_after:
                self._successes = 0
                self.limit += 1
                self._grown += 1
        return self.limit
