"""A published snapshot of the small sample warehouse, shared by the API conformance tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.sample import write_sample_published

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="session")
def sample_published(tmp_path_factory) -> Path:
    """published.duckdb of the sample world (9 packages, 2 grids, 2 categories), never modified."""
    return write_sample_published(tmp_path_factory.mktemp("sample_published"), NOW, refresh_id="r1")
