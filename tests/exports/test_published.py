"""The readers of the published snapshot: dataset files (`pulse export`) and the live API (`pulse serve`)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from assets.exports.api_v4 import ApiContext
from assets.exports.datasets import export_datasets
from assets.exports.published_api import PublishedApi

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="module")
def published(sample_published):
    return sample_published  # read only (tests/exports/conftest.py)


def test_export_datasets_writes_one_file_per_relation(published, tmp_path):
    written = export_datasets(published, tmp_path / "csv", "csv")
    names = [p.name for p in written]
    assert names == sorted(names) and all(p.exists() for p in written)
    assert {"core.packages.csv", "history.package_metrics.csv", "marts.package_activity.csv"} <= set(names)
    assert not any(name.startswith(("catalogue.", "raw.", "main.")) for name in names)
    assert pl.read_csv(tmp_path / "csv" / "core.packages.csv").height == 9
    parquet = export_datasets(published, tmp_path / "parquet")
    assert [p.name.removesuffix(".parquet") for p in parquet] == [n.removesuffix(".csv") for n in names]
    assert pl.read_parquet(tmp_path / "parquet" / "history.package_metrics.parquet").height == 9


def test_export_datasets_without_a_snapshot_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="pulse refresh"):
        export_datasets(tmp_path / "published.duckdb", tmp_path / "out", "csv")
    with pytest.raises(ValueError, match="format"):
        export_datasets(tmp_path / "published.duckdb", tmp_path / "out", "xlsx")  # type: ignore[arg-type]


def test_published_api_documents(published):
    api = PublishedApi(published, ApiContext.create("https://example.org/", "UTC"))
    assert api.root()["packages"] == "https://example.org/api/v4/packages/"
    first = api.page("packages", limit=3, offset=0)
    assert first["count"] == 9 and len(first["results"]) == 3
    alpha = api.detail("packages", "1")
    assert alpha is not None and alpha["slug"] == "alpha"
    assert api.detail("packages", "alpha") == alpha
    assert api.detail("categories", "not-a-number") is None
    assert [row["slug"] for row in api.search("alpha")] == ["alpha", "beta"]  # beta: alpha's repo description
    assert api.search("  ") == []
