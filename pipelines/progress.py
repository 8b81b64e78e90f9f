"""A process-wide progress hook: the CLI installs a display, assets report to it.

Dagster runs the steps in-process for `pulse refresh`, so a plain callback is enough; under
`dagster dev` nobody installs one and the reports go nowhere (the UI shows the step logs instead).
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]

_listener: ProgressFn | None = None


def install(listener: ProgressFn | None) -> None:
    global _listener
    _listener = listener


def report(stage: str, done: int, total: int) -> None:
    if _listener is not None:
        _listener(stage, done, total)
