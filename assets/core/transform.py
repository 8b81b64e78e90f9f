"""Raw archive + catalogue frames -> core tables (pure polars, no I/O beyond reading the archive).

The public entry point; the work is split by idea:

- `columns.py`: the declared core tables (`CORE_COLUMNS`, `CORE_KEYS`, `CORE_TABLES`, mirrored by
  `warehouse/schema/core.sql`). Every output is cast to them and sorted by its key, so the same
  archive gives bit-identical tables.
- *parse* (`parse.py`, using `decode.py`): the newest good body of every request is decoded by
  DuckDB against the structures its source declares and read by that source (`Source.read`, in
  `pipelines/sources/<host>.py`) into per-subject `Facts` (`pipelines/sources/facts.py`). A body
  that is not JSON or not the declared shape becomes a `malformed` crawl error instead of failing
  the batch.
- *assemble* (`assemble.py`): the facts are joined onto the catalogue packages; packages sharing a
  repository each get its data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from assets.core.assemble import assemble_core
from assets.core.parse import parse_archive, parse_responses


def build_core(
    catalogue: Mapping[str, pl.DataFrame],
    responses: pl.LazyFrame | pl.DataFrame,
    *,
    archive: pl.LazyFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Catalogue frames + `latest_responses()` -> {"core.<table>": frame}.

    `archive` (`scan_archive()`) lets crawl errors count first/last seen and attempts over the whole
    archive; without it they describe the newest attempt only. The tables depend only on the inputs,
    so the same archive gives bit-identical tables.
    """
    facts = parse_responses(responses)
    return assemble_core(catalogue, facts, archive=archive)


def build_core_from_archive(catalogue: Mapping[str, pl.DataFrame], raw_dir: Path) -> dict[str, pl.DataFrame]:
    """`build_core` reading the archive directly (streaming; what the Dagster asset uses)."""
    facts, attempts = parse_archive(raw_dir)
    return assemble_core(catalogue, facts, archive=attempts)
