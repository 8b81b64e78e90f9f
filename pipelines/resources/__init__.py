"""Dagster resources (the real implementations; test fakes live in tests/fakes.py)."""

from pipelines.resources.crawler import CrawlConfig, CrawlerResource
from pipelines.resources.pulse import PulseResource
from pipelines.resources.warehouse import WRITER_POOL, WarehouseResource

__all__ = ["WRITER_POOL", "CrawlConfig", "CrawlerResource", "PulseResource", "WarehouseResource"]
