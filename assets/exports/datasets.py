"""Dataset files of the published snapshot: one file per core, health, history and marts
relation (the health scores and the marts health tables included, when the snapshot has them).

What `pulse export` writes. It reads the published snapshot (never the live warehouse), so it needs
no writer lock and exports exactly what `pulse query` shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from warehouse.db import connect_reader

DatasetFormat = Literal["parquet", "csv"]
DATASET_SCHEMAS = ("core", "health", "history", "marts")
_COPY_OPTIONS = {"parquet": "(FORMAT parquet, COMPRESSION zstd)", "csv": "(FORMAT csv, HEADER)"}


def export_datasets(published_db_path: Path, out_dir: Path, fmt: DatasetFormat = "parquet") -> list[Path]:
    """Write `<schema>.<table>.<fmt>` for every dataset relation into `out_dir`; returns the files written.

    Raises FileNotFoundError when there is no published snapshot yet.
    """
    if fmt not in _COPY_OPTIONS:
        raise ValueError(f"unknown dataset format {fmt!r} (parquet or csv)")
    out_dir = Path(out_dir).resolve()
    con = connect_reader(Path(published_db_path))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        relations = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN {DATASET_SCHEMAS} ORDER BY 1, 2"
        ).fetchall()
        written = []
        for schema, table in relations:
            target = out_dir / f"{schema}.{table}.{fmt}"
            con.execute(f"COPY (SELECT * FROM {schema}.{table}) TO '{target}' {_COPY_OPTIONS[fmt]}")
            written.append(target)
    finally:
        con.close()
    return written
