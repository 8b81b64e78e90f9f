"""A published snapshot of the small sample warehouse, shared by the API conformance tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.core.refresh import refresh_core
from assets.history.history import snapshot_history
from tests.fixtures.sample import sample_catalogue, write_sample
from warehouse.db import connect_writer
from warehouse.load import replace_tables
from warehouse.publish import publish

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="session")
def sample_published(tmp_path_factory) -> Path:
    """published.duckdb of the sample world (9 packages, 2 grids, 2 categories), never modified."""
    home = tmp_path_factory.mktemp("sample_published")
    write_sample(home / "raw")
    con = connect_writer(home / "warehouse.duckdb")
    try:
        replace_tables(con, {f"catalogue.{k}": v for k, v in sample_catalogue().items()})
        refresh_core(con, sample_catalogue(), home / "raw", now=NOW)
        snapshot_history(con, "r1", NOW)
        publish(home / "warehouse.duckdb", home / "published.duckdb", con=con)
    finally:
        con.close()
    return home / "published.duckdb"
