"""Suite-wide pytest configuration: the simulator fixtures, and how xdist shares work out.

Scheduling (pyproject: `-n 3 --dist loadgroup`). Several fixtures build something expensive once for
many tests: a real `pulse refresh` into a home (`refreshed`, the fault tests' `good`, `resumed`, ...),
a Dagster webserver, a crawl. A pytest worker builds a module- or session-scoped fixture for itself,
so when the tests that share one are spread over three workers, the refresh runs three times (it did:
the session's `refreshed` home was built by every worker, the fault tests' good home by two or three).
`pytest_collection_modifyitems` therefore puts every test that uses a module-scoped fixture of the
suite in one xdist group per module, and every test that uses the session's `refreshed` home in one
group: loadgroup sends a group to a single worker, biggest groups first, then the other tests one by
one to whichever worker is free. Tests marked `slow` are collected first (stable order otherwise),
(whole modules) so that a long test does not start last and end the run alone on one worker.

Nothing here changes what a test does or asserts; without xdist's loadgroup only the order applies.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["simulator.pytest_plugin"]

# session-scoped fixtures that are expensive to build (a real refresh): their tests share one worker
SHARED_SESSION_FIXTURES = ("refreshed",)


def _shared_group(item: pytest.Item) -> str | None:
    """The xdist group of a test that shares an expensive build with others, else None."""
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    if fixtureinfo is None:
        return None
    for name in SHARED_SESSION_FIXTURES:
        if name in fixtureinfo.names_closure:
            return name
    for name in fixtureinfo.names_closure:
        defs = fixtureinfo.name2fixturedefs.get(name)
        if not defs:
            continue
        fixturedef = defs[-1]
        # a module-scoped fixture of this suite (not of a plugin): one build for the module's tests
        if fixturedef.scope == "module" and str(getattr(fixturedef.func, "__module__", "")).startswith("tests."):
            return item.nodeid.split("::", 1)[0].removeprefix("tests/")  # e.g. e2e/test_resume.py
    return None


def _suffix_group(item: pytest.Item, group: str) -> None:
    """Give the test's id the `@group` suffix that loadgroup schedules by.

    xdist (3.8) writes the suffix to `item._nodeid`, which pytest 9 no longer reads (the id is
    `item._id`), so without this the groups are silently ignored and every test is scheduled alone.
    Does nothing when the id already ends with the group (an xdist that sets it itself).
    """
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9: the id is `_nodeid`, which xdist sets itself
        return
    if not item.nodeid.endswith(f"@{group}"):
        item._id = NodeId.parse(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # set on xdist's workers under --dist loadgroup; the groups mean nothing otherwise (-n 0, -p no:xdist)
    if config.getoption("loadgroup", False):
        for item in items:
            group = _shared_group(item)
            if group is None or any(True for _ in item.iter_markers("xdist_group")):
                continue
            item.add_marker(pytest.mark.xdist_group(group))
            _suffix_group(item, group)
    # modules with long tests first, whole (a module's tests stay together, so its module-scoped
    # fixtures are built once also without xdist); sorted is stable: the collection order otherwise
    slow = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in slow)
