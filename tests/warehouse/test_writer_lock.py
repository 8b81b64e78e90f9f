"""One writer at a time, whatever the Dagster instance: the warehouse's exclusive file lock."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipelines.resources import WarehouseResource
from warehouse.db import WriterLockTimeout, connect_reader, lock_path, open_writer, writer_lock

ROOT = Path(__file__).resolve().parents[2]

# each child: open the warehouse for writing (through the Dagster resource, as an asset would), hold
# it for a while, write a row, and report when it held the connection
CHILD = textwrap.dedent("""
    import sys, time
    from pipelines.resources import WarehouseResource
    home, name = sys.argv[1], sys.argv[2]
    with WarehouseResource(home=home, lock_timeout_s=60).writer() as con:
        start = time.time()
        con.execute("CREATE TABLE IF NOT EXISTS main.writes (name VARCHAR, start DOUBLE, stop DOUBLE)")
        time.sleep(1.0)
        con.execute("INSERT INTO main.writes VALUES (?, ?, ?)", [name, start, time.time()])
        con.execute("CHECKPOINT")
    print("ok", name)
""")


@pytest.mark.slow  # two Python processes
def test_two_processes_writing_concurrently_both_succeed_one_after_the_other(tmp_path):
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), name], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err  # without the lock, one fails on DuckDB's "Could not set lock"
        assert out.startswith("ok")
    con = connect_reader(tmp_path / "warehouse.duckdb")
    try:
        spans = con.execute("SELECT name, start, stop FROM main.writes ORDER BY start").fetchall()
    finally:
        con.close()
    assert sorted(name for name, _, _ in spans) == ["a", "b"]
    (_, _, first_stop), (_, second_start, _) = spans
    assert first_stop <= second_start  # serialized: the second writer waited for the first


def test_threads_with_separate_connections_are_serialized(tmp_path):
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with open_writer(tmp_path / "warehouse.duckdb") as con:
                start = time.monotonic()
                con.execute("CREATE TABLE IF NOT EXISTS main.t (n INTEGER)")
                con.execute("INSERT INTO main.t VALUES (?)", [n])
                time.sleep(0.3)
                spans.append((start, time.monotonic()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    spans.sort()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    with open_writer(tmp_path / "warehouse.duckdb") as con:
        assert con.execute("SELECT count(*) FROM main.t").fetchall()[0][0] == 3


def _another_thread_can_take(path: Path) -> bool:
    took: list[bool] = []

    def attempt() -> None:
        try:
            with writer_lock(path, timeout=0.2):
                took.append(True)
        except WriterLockTimeout:
            took.append(False)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return took == [True]


def test_the_lock_is_reentrant_within_a_thread(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with open_writer(path, lock_timeout=1) as outer:
        # a non-re-entrant lock would time out here after 1 s instead of opening
        with open_writer(path, lock_timeout=1) as inner:
            outer.execute("CREATE TABLE main.x (a INTEGER)")
            inner.execute("INSERT INTO main.x VALUES (1)")
        # leaving the inner writer must not release the lock the outer one still holds
        assert not _another_thread_can_take(path)
        assert outer.execute("SELECT a FROM main.x").fetchall() == [(1,)]
    assert _another_thread_can_take(path)


def test_waiting_is_bounded_and_the_error_names_the_lock_file(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with writer_lock(path):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        resource = WarehouseResource(home=str(tmp_path), lock_timeout_s=0.3)
        with pytest.raises(WriterLockTimeout, match=r"warehouse\.duckdb\.writer\.lock") as caught, resource.writer():
            pass
        assert 0.25 <= time.monotonic() - started < 5
        assert str(lock_path(path)) in str(caught.value)
        assert "PULSE_WRITER_LOCK_TIMEOUT" in str(caught.value)
        # the environment sets the default wait
        monkeypatch.setenv("PULSE_WRITER_LOCK_TIMEOUT", "0.2")
        with pytest.raises(WriterLockTimeout), open_writer(path):
            pass
    finally:
        release.set()
        thread.join()
    with open_writer(path, lock_timeout=1):  # free again once the holder is done
        pass
