"""A requested stop (SIGTERM, SIGINT) of `pulse refresh`: the crawl finishes at a consistent point.

Container platforms stop a process with SIGTERM and kill it a grace period later; Ctrl-C sends
SIGINT. Dagster turns both into an interrupt raised inside whatever step runs (its
`capture_interrupts`), which is right for the short warehouse steps (their writes are transactions,
the published snapshot and the export tree are replaced by an atomic rename), but would cut the crawl
wherever it is. While the crawl runs, `stop_on_signals` takes the two signals over:

* the first one only records the request (`requested()`); the crawl checks it like its time budget:
  it stops taking new work, lets what is in flight finish for a moment, flushes the raw archive and
  then fails its step, so nothing downstream runs (`pipelines.crawler.crawl`);
* a second one is handed to the handler that was there before (Dagster's: the step is interrupted at
  once; the archive's buffer is still written on the way out).

`pulse refresh` exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM) after a stop;
`SignalLog` tells it which signal arrived, wherever in the run it arrived.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested: list[int] = []  # the signals received while `stop_on_signals` was active


def requested() -> int | None:
    """The signal that asked the running crawl to stop, if one did."""
    return _requested[0] if _requested else None


def name(signum: int) -> str:
    return signal.Signals(signum).name


def reset() -> None:
    _requested.clear()


@contextlib.contextmanager
def stop_on_signals(on_stop: Callable[[int], None] | None = None) -> Iterator[None]:
    """While inside, the first SIGINT/SIGTERM is a stop request; a second one goes to the previous handler.

    Outside the main thread (a crawl run from a notebook's worker thread) signals cannot be handled
    here: nothing changes.
    """
    reset()
    previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        if not _requested:
            _requested.append(signum)
            if on_stop is not None:
                on_stop(signum)
            return
        # asked twice: stop now, the way the process would have without us
        before = previous[signum]
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    with _handling(handler):
        yield


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def interrupt_on_signals() -> contextlib.AbstractContextManager[None]:
    """SIGTERM interrupts like SIGINT does (KeyboardInterrupt), for the parts of a command outside Dagster."""
    return _handling(_interrupt)


@contextlib.contextmanager
def _handling(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """`handler` for every stop signal while inside, the previous handlers restored after. Only the
    main thread may set handlers (a crawl run from a notebook's worker thread): elsewhere, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)


class SignalLog:
    """Which stop signals reached the process, even while another handler (Dagster's) handled them.

    The C-level handler writes every caught signal's number to the wakeup fd, whatever the Python
    handler is: a non-blocking pipe read after the run. Main thread only; a no-op elsewhere.
    """

    def __init__(self) -> None:
        self._read: int | None = None
        self._write: int | None = None
        self._previous_fd = -1
        self.seen: list[int] = []

    def __enter__(self) -> SignalLog:
        if threading.current_thread() is threading.main_thread():
            self._read, self._write = os.pipe()
            os.set_blocking(self._read, False)
            os.set_blocking(self._write, False)
            self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        return self

    def collect(self) -> list[int]:
        if self._read is not None:
            with contextlib.suppress(BlockingIOError):
                while data := os.read(self._read, 64):
                    self.seen += [signum for signum in data if signum in STOP_SIGNALS]
        return self.seen

    def first(self) -> int | None:
        seen = self.collect()
        return seen[0] if seen else None

    def __exit__(self, *exc: object) -> None:
        if self._read is None or self._write is None:
            return
        self.collect()
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._read)
        os.close(self._write)
        self._read = self._write = None
