"""GitHub's cap on requests in flight, shared by every crawl process on the machine.

GitHub's documentation ("Rate limits for the REST API", "About secondary rate limits"): "No more than
100 concurrent requests are allowed. This limit is shared across the REST API and GraphQL API." Like
the other secondary limits it counts per user for authenticated requests and per IP address without a
token. Each crawl process caps its own requests (`Upstream.semaphore`, REST + GraphQL at most
`MAX_CONCURRENCY`), but the shards of `pulse refresh --processes 4` are four processes: together they
could have 4 x 68 requests in flight for one account. This module makes the cap one for the machine.

How: a counting semaphore made of lock files, `<PULSE_HOME>/state/inflight/<api host>/<account>/
slot-<i>.lock`, one per slot. A request takes a free slot with a non-blocking `flock(2)` on a descriptor
this process keeps open, and gives it back with `LOCK_UN`. The kernel drops a process's locks when it
exits, however it exits (a crash, SIGKILL, an OOM kill): a dead process never keeps a slot.
Two processes configured with different caps over one directory together stay within the larger.

Never blocking the event loop: a lock is only ever *tried* (LOCK_NB, a few microseconds). When every
slot is taken, the request waits in this process's queue for the account, and one poller task per
account tries the slots again every few milliseconds (backing off to `max_poll_s`) while the queue
is not empty; a slot released in this process goes straight to the next waiter without touching
the file (no system call, and no slot lost to a race). Locks held by another process are only
discovered by polling: a process's own waiters are served first, which is fine for throughput
(every slot is busy either way) and each process's own cap (`Upstream.semaphore`) stops one process
from taking every slot.

Accounts as in `pipelines.sources.http.pace`: the login of the token, `anonymous` without one. A
request of a token whose login is not known yet (`unidentified`: the first `GET /user`) cannot be
counted against its account, so those take slots from a small reserve of their own, and every account
gets the cap less that reserve: an unknown account's requests and its known ones together stay
within the cap.

Cost (benchmarks/inflight.py): one uncontended acquire and release is two `flock` calls on kept
descriptors, ~5 us a request against ~1 us for `asyncio.Semaphore` (a GitHub request takes
100-500 ms). A descriptor per slot tried stays open until the crawl closes its clients: at most the
cap per account (100) per process, far under the usual limits on open files.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no machine-wide cap, each process keeps its own
    fcntl = None  # type: ignore[assignment]

from pipelines.sources.http.pace import UNIDENTIFIED, safe_key


def slots_available() -> bool:
    """Whether this platform has `flock(2)` (the cap across processes needs it)."""
    return fcntl is not None


def reserve_for(limit: int) -> int:
    """Slots kept for requests of not-yet-identified tokens: 1 in 20 of the cap, at least 1."""
    return max(1, limit // 20)


class Slots:
    """At most `limit` requests in flight per account key, among every process using `directory`.

    `acquire(key)` returns a slot number once this process holds it; `release(key, slot)` gives it
    back. Bound to the event loop that first waits on it (one crawl's).
    """

    def __init__(self, directory: Path, limit: int, *, poll_s: float = 0.002, max_poll_s: float = 0.05) -> None:
        if limit < 2:
            raise ValueError(f"a machine-wide cap on requests in flight needs at least 2 slots (got {limit})")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.limit = int(limit)
        self.reserve = reserve_for(self.limit)
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self._fds: dict[str, list[int | None]] = {}
        self._held: dict[str, set[int]] = {}
        self._cursor: dict[str, int] = {}
        self._waiters: dict[str, collections.deque[asyncio.Future[int]]] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self.waits = 0  # requests that found every slot taken (and queued)
        self.waited_s = 0.0  # seconds those requests waited for a slot (summed over requests)
        self.peak = 0  # most slots this process held at once, over every key
        self._closed = False

    def size(self, key: str) -> int:
        """Slots of `key`: the reserve for unidentified tokens, the rest for every account."""
        return self.reserve if key == UNIDENTIFIED else self.limit - self.reserve

    def held(self, key: str) -> int:
        return len(self._held.get(key, ()))

    def _try(self, key: str) -> int | None:
        """Lock a slot of `key` no one holds (this process's own held slots skipped: `flock` on a
        descriptor that holds the lock would succeed again), or None when all are taken."""
        size = self.size(key)
        fds = self._fds.get(key)
        if fds is None:
            folder = self.directory / safe_key(key)
            folder.mkdir(parents=True, exist_ok=True)
            fds = self._fds[key] = [None] * size
            self._held[key] = set()
            self._cursor[key] = random.randrange(size)  # processes start apart: fewer collisions
        held = self._held[key]
        if len(held) >= size:
            return None
        start = self._cursor[key]
        for step in range(size):
            slot = (start + step) % size
            if slot in held:
                continue
            fd = fds[slot]
            if fd is None:
                fd = fds[slot] = os.open(self.directory / safe_key(key) / f"slot-{slot:04d}.lock",
                                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            held.add(slot)
            self._cursor[key] = (slot + 1) % size
            self.peak = max(self.peak, sum(len(h) for h in self._held.values()))
            return slot
        return None

    async def acquire(self, key: str) -> int:
        """A slot of `key`, waiting (asynchronously) while every one is taken."""
        waiters = self._waiters.setdefault(key, collections.deque())
        if not waiters:
            slot = self._try(key)
            if slot is not None:
                return slot
        self.waits += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        waiters.append(future)
        poller = self._pollers.get(key)
        if poller is None or poller.done():
            self._pollers[key] = loop.create_task(self._poll(key))
        queued = loop.time()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a slot as it was cancelled
                self.release(key, future.result())
            else:
                with contextlib.suppress(ValueError):
                    waiters.remove(future)
            raise
        finally:
            self.waited_s += loop.time() - queued

    async def _poll(self, key: str) -> None:
        """Try the slots for `key`'s waiters until none is left (slots other processes hold come
        back only through here)."""
        waiters = self._waiters[key]
        delay = self.poll_s
        while not self._closed:
            while waiters and waiters[0].done():  # cancelled meanwhile
                waiters.popleft()
            if not waiters:
                return
            slot = self._try(key)
            if slot is None:
                await asyncio.sleep(delay)
                delay = min(self.max_poll_s, delay * 1.5)
                continue
            delay = self.poll_s
            waiters.popleft().set_result(slot)

    def release(self, key: str, slot: int) -> None:
        """Give `slot` back: to this process's next waiter for `key` if there is one, else to everyone."""
        if self._closed:
            return
        waiters = self._waiters.get(key)
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(slot)  # still locked: it changes hands inside this process
                return
        fds = self._fds[key]
        fd = fds[slot]
        self._held[key].discard(slot)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close every descriptor (which releases its lock) and stop polling."""
        if self._closed:
            return
        self._closed = True
        for task in self._pollers.values():
            task.cancel()
        for fds in self._fds.values():
            for fd in fds:
                if fd is not None:
                    os.close(fd)
        self._fds.clear()
        self._held.clear()
