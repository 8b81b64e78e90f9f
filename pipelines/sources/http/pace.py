"""GitHub's secondary rate limit as a pace shared by every crawl process on the machine.

The rules, from GitHub's documentation ("Rate limits for the REST API", section "About secondary
rate limits" and "Calculating points for the secondary rate limit", docs.github.com/rest/using-the-
rest-api/rate-limits-for-the-rest-api; the same text in "Rate limits and query limits for the
GraphQL API"):

- no more than 900 points per minute for REST API endpoints and 2,000 points per minute for the
  GraphQL API endpoint. The docs say "to a single endpoint"; we count every REST request against
  the 900 (the stricter reading, and the one the crawl can keep without knowing how GitHub groups
  endpoints);
- points: most REST `GET`, `HEAD` and `OPTIONS` requests 1, most `POST`, `PATCH`, `PUT` and `DELETE`
  5; a GraphQL request without mutations 1 (with mutations 5; the crawl sends none);
- authenticated requests count for the user the token belongs to (every personal access token of one
  account shares that account's limits), unauthenticated ones for the client's IP address ("Primary
  rate limit for unauthenticated users": "associated with the originating IP address").

So a pace is keyed by account: the login `GET /user` answers for a token (`pipelines.sources.github`),
`anonymous` for requests without a token (one machine, one IP), and `unidentified` for a token whose
login is not known (yet): its stamps count against *every* account as well, so a `GET /user` sent
before the login is known never pushes an account past its limit.

How: a sliding-window log of the last `limit` point stamps per key, kept in a small binary ring file
`<PULSE_HOME>/state/pace/<api host>/<rest|graphql>/<limit>-per-<window>s/<key>.ring`, mapped in
memory by every process using it (`mmap`), and changed under one lock per
directory (`flock(2)` on `.lock`; the `filelock` library where there is no `fcntl`), so shards
crawling in parallel processes share one pace instead of multiplying it. A request may go when the
oldest of the stamps it would push out of the ring is older than the window: then the window never
holds more than `limit` points, whatever the number of processes. The check reads a few bytes (O(1)
per request, not O(limit)): stamping and settling a request cost two lock round trips and a few
memory reads and writes, about 50 us a request measured on a loaded 2-core machine.

pyrate-limiter's SQLite bucket with its file lock was the candidate library: measured here at about
0.5 ms per acquire (a COUNT over the window and a commit per request, under a blocking lock taken in
the event loop's thread), and its non-blocking acquire fails with filelock 4 (it calls
`acquire(False)`, which filelock 4 reads as a timeout). filelock 4 alone measured about 1 ms per
acquire and release here, `flock(2)` on a descriptor kept open about 4 us; so the lock is `flock`
(filelock only as the portable fallback) over a memory-mapped ring file.

Stamps are wall-clock seconds, taken when the request is handed to the connection (not when a token
is chosen, so nothing queued behind a semaphore or a back-off is stamped early) and replaced by the
time of the answer when it comes (`done`): GitHub counts a request when it arrives, somewhere between
the two, and a busy event loop or a new connection can put that well after the first stamp. A margin
(2% of the window, at least 0.25 s) covers the rest. A slot of a request still in flight is never
reused, so a slow request cannot leave the count before it arrived.
"""

from __future__ import annotations

import asyncio
import logging
import math
import mmap
import os
import re
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from filelock import FileLock, Timeout

from pipelines.sources.http.quota import BudgetExceeded

ANONYMOUS = "anonymous"
UNIDENTIFIED = "unidentified"
_HEADER = struct.Struct("<4sIQd")  # magic, ring size, head (next slot to overwrite), newest stamp
_MAGIC = b"PACE"
_SLOT = struct.Struct("<d")
_KEY = re.compile(r"[^a-z0-9_.-]")


def safe_key(key: str) -> str:
    """A file-name-safe key (GitHub logins are letters, digits and hyphens already)."""
    return _KEY.sub("_", key.lower())[:64] or "_"


class _Ring:
    """One key's ring file, mapped in memory (shared with every process mapping it): the last `size`
    stamps, the oldest at `head`. Created or repaired under the directory lock."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        length = _HEADER.size + 8 * size
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            magic, ring_size, _, _ = _HEADER.unpack(os.pread(fd, _HEADER.size, 0).ljust(_HEADER.size, b"\0"))
            if os.fstat(fd).st_size != length or magic != _MAGIC or ring_size != size:
                os.ftruncate(fd, 0)  # new or not ours: empty slots (0.0) count as long gone
                os.ftruncate(fd, length)
                os.pwrite(fd, _HEADER.pack(_MAGIC, size, 0, 0.0), 0)
            self.mm = mmap.mmap(fd, length)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.mm.close()

    def header(self) -> tuple[int, float]:
        """(head, newest stamp)."""
        _, _, head, newest = _HEADER.unpack_from(self.mm, 0)
        return head, newest

    def slots(self, start: int, n: int) -> list[float]:
        """`n` stamps from slot `start` on (wrapping)."""
        start %= self.size
        first = min(n, self.size - start)
        stamps = list(struct.unpack_from(f"<{first}d", self.mm, _HEADER.size + 8 * start))
        if n > first:
            stamps += struct.unpack_from(f"<{n - first}d", self.mm, _HEADER.size)
        return stamps

    def settle(self, start: int, points: int, stamp: float, done: float) -> None:
        """Replace a request's send stamps by when its answer came (if the slots are still its own)."""
        for i in range(points):
            offset = _HEADER.size + 8 * ((start + i) % self.size)
            if _SLOT.unpack_from(self.mm, offset)[0] == -stamp:
                _SLOT.pack_into(self.mm, offset, done)
        head, newest = self.header()
        if done > newest:
            _HEADER.pack_into(self.mm, 0, _MAGIC, self.size, head, done)

    def count_since(self, head: int, newest: float, since: float) -> int:
        """How many stamps are newer than `since`, counted back from the newest to the first older one
        (stamps are pushed in time order; only a request answered after a younger one's answer left
        the window could be missed: this is for the unidentified ring's few `GET /user`s)."""
        if newest <= since:
            return 0
        count = 0
        for back in range(1, self.size + 1):
            if _effective(_SLOT.unpack_from(self.mm, _HEADER.size + 8 * ((head - back) % self.size))[0],
                          since) <= since:
                break
            count += 1
        return count

    def push(self, head: int, stamp: float, points: int) -> None:
        """Stamp `points` slots from `head` as in flight (negative until `settle`)."""
        for i in range(points):  # points <= size (checked by the caller)
            _SLOT.pack_into(self.mm, _HEADER.size + 8 * ((head + i) % self.size), -stamp)
        _HEADER.pack_into(self.mm, 0, _MAGIC, self.size, (head + points) % self.size, stamp)


class Pace:
    """`limit` points per `window_s` seconds per key, shared through `directory` by every process.

    `acquire(key, points)` returns once the points are stamped, after waiting when the window is
    full; a wait past `deadline` (monotonic) raises `BudgetExceeded` instead. Waiters of one key in
    this process queue in order (one asyncio lock per key), so only the first polls the file.
    """

    def __init__(
        self,
        directory: Path,
        limit: int,
        window_s: float = 60.0,
        *,
        what: str = "requests",
        deadline: float | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"a pace needs a limit >= 1 and a window > 0 (got {limit} per {window_s} s)")
        self.limit = int(limit)
        self.window_s = float(window_s)
        # one folder per limit and window: processes pacing alike share it (a ring's size is the limit)
        self.directory = Path(directory) / f"{self.limit}-per-{self.window_s:g}s"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.span = self.window_s + max(0.02 * self.window_s, 0.25)  # the window plus the margin
        self.what = what
        self.deadline = deadline
        self.log = log or logging.getLogger(__name__)
        self._clock = clock
        self._sleep = sleep
        self._lock = _DirLock(self.directory / ".lock")
        self._rings: dict[str, _Ring] = {}
        self._queues: dict[str, asyncio.Lock] = {}
        self._free_at: dict[str, float] = {}  # when this process last saw the key's next slot free
        self.waited_s = 0.0  # seconds spent waiting for the pace (summed over waits of every key)
        self.stamped = 0  # points stamped by this process
        self._told = False
        self._ticket: tuple[int, int, float] = (0, 0, 0.0)
        self._closed = False
        self._lock.acquire()
        try:  # every process maps the unidentified ring from the start: checking it is a memory read
            self._unknown = self._ring(UNIDENTIFIED)
        finally:
            self._lock.release()

    def _ring(self, key: str) -> _Ring:
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring(self.directory / f"{safe_key(key)}.ring", self.limit)
        return ring

    def close(self) -> None:
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        self._lock.close()
        self._closed = True

    def estimate(self, key: str) -> float:
        """Seconds until `key` has room, as this process last saw it (no file access): for choosing
        between accounts, never for letting a request go."""
        return max(0.0, self._free_at.get(key, 0.0) - self._clock())

    def _try(self, key: str, points: int) -> float:
        """Stamp `points` for `key` now and return 0, or return how long to wait (under the file lock)."""
        self._lock.acquire()
        try:
            now = self._clock()
            since = now - self.span
            ring = self._ring(key)
            head, newest = ring.header()
            if key == UNIDENTIFIED:
                # a stamp of an unknown account counts against every account: each must have room
                unknown = ring.count_since(head, newest, since)
                wait = _room(ring, head, unknown + points, since, self.span)
                for path in self.directory.glob("*.ring"):
                    other = path.stem
                    if other != safe_key(UNIDENTIFIED):
                        o_ring = self._ring(other)
                        o_head, _ = o_ring.header()
                        wait = max(wait, _room(o_ring, o_head, unknown + points, since, self.span))
            else:
                u_head, u_newest = self._unknown.header()
                unknown = self._unknown.count_since(u_head, u_newest, since)
                wait = _room(ring, head, unknown + points, since, self.span)
            if wait > 0:
                self._free_at[key] = now + wait
                return wait
            stamp = max(now, newest)
            ring.push(head, stamp, points)
            self._free_at[key] = 0.0 if points + unknown < self.limit else now + self.span
            self.stamped += points
            self._ticket = (head, points, stamp)
            return 0.0
        finally:
            self._lock.release()

    def done(self, key: str, ticket: tuple[int, int, float]) -> None:
        """The request of `ticket` was answered (or failed): its stamps become the time of the answer.

        GitHub counts a request when it arrives, somewhere between our stamp and the answer; queueing
        in the event loop or opening a connection can put that well after the stamp. Stamping the
        answer's time instead keeps the window honest whatever happened in between.
        """
        if self._closed:  # a request cancelled while the crawl closed its clients
            return
        self._lock.acquire()
        try:
            self._ring(key).settle(*ticket, max(self._clock(), ticket[2]))
        finally:
            self._lock.release()

    async def acquire(self, key: str, points: int = 1) -> tuple[int, int, float]:
        """Wait until `points` fit in `key`'s window and stamp them; the ticket is for `done`."""
        points = min(max(1, points), self.limit)
        queue = self._queues.setdefault(key, asyncio.Lock())
        async with queue:
            while (wait := self._try(key, points)) > 0:
                if self.deadline is not None and time.monotonic() + wait > self.deadline:
                    raise BudgetExceeded(f"pacing GitHub {self.what} below the secondary rate limit "
                                         "would exceed the time budget")
                if not self._told:
                    self._told = True
                    self.log.info("GitHub: pacing %s at %d points per %g s per account (shared by every "
                                  "crawl on this machine)", self.what, self.limit, self.window_s)
                self.waited_s += wait
                await self._sleep(wait + 0.001)
            return self._ticket


class _DirLock:
    """An exclusive lock between processes, held for microseconds: `flock` on a descriptor kept open
    (one per `Pace`, so two paces of one process exclude each other too), else `filelock`."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if fcntl is not None else None
        self._portable = FileLock(str(path), thread_local=False) if fcntl is None else None

    def acquire(self) -> None:
        while True:
            try:
                if self.fd is not None:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:
                    self._portable.acquire(timeout=0)
                return
            except (BlockingIOError, Timeout):  # another process is inside for microseconds
                time.sleep(0.0002)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        else:
            self._portable.release()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _room(ring: _Ring, head: int, needed: int, since: float, span: float) -> float:
    """0 when `needed` more stamps fit in `ring`'s window, else the seconds until they do.

    The stamps pushed out must all be out of the window (a ring only remembers `size` stamps, so one
    pushed out while still in the window could no longer be counted). Answers settle out of order,
    so the ring is not sorted: the latest of those stamps decides.
    """
    if needed > ring.size:
        return span  # only the other keys' stamps leaving the window can make room
    latest = max(_effective(stamp, since) for stamp in ring.slots(head, needed))
    if latest == math.inf:  # a request still in flight: its arrival is unknown, ask again shortly
        return 0.05
    return 0.0 if latest <= since else latest - since


IN_FLIGHT_S = 300.0  # a request unanswered for longer was lost (a process killed mid-request)


def _effective(stamp: float, since: float) -> float:
    """A slot's stamp for the window: an answered request's answer time; a request in flight (a
    negative stamp) may arrive any moment (inf), unless it was sent so long ago that it was lost."""
    if stamp >= 0:
        return stamp
    sent = -stamp
    return sent if sent < since - IN_FLIGHT_S else math.inf
