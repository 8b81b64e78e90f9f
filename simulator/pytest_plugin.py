"""pytest fixtures: ``simulator`` (session-wide default world) and ``make_simulator`` (factory).

Enable with ``pytest_plugins = ["simulator.pytest_plugin"]`` in the top-level conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from simulator.server import SimServer, start_in_thread

DEFAULT_PACKAGES = 250
DEFAULT_SEED = 1


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimServer]:
    """A simulator with the default world (250 packages, seed 1), shared by the whole session.

    Its stats are shared too: call ``simulator.reset_stats()`` first when a test asserts on them.
    """
    server = start_in_thread(packages=DEFAULT_PACKAGES, seed=DEFAULT_SEED)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., SimServer]]:
    """Factory: ``make_simulator(packages=50, seed=3, faults={"5xx": 0.2}, latency_ms=5)``.

    Every server it starts is stopped at the end of the test.
    """
    started: list[SimServer] = []

    def factory(**kwargs) -> SimServer:
        kwargs.setdefault("packages", DEFAULT_PACKAGES)
        kwargs.setdefault("seed", DEFAULT_SEED)
        server = start_in_thread(**kwargs)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
