"""The parse stage: the newest good body of every request -> `Facts`, from memory or the archive.

Two entry points give the same facts. `parse_responses` takes `latest_responses()` (bodies in
memory; the reference, and what small tests use). `parse_archive` streams the Parquet archive so
memory stays bounded at any scale (what the refresh uses). Both feed the same `decode_sql` and the
same source readers, which is what keeps them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from assets.core.decode import decode_sql, endpoint_docs, row_bodies
from pipelines.sources.facts import UTC_US, Facts
from pipelines.sources.reading import Bodies
from pipelines.sources.registry import SOURCES
from warehouse.archive import RAW_SCHEMA, batch_files
from warehouse.ddl import sql_literal

RESPONSE_COLUMNS = (
    "request_key",
    "source",
    "endpoint",
    "subject",
    "status",
    "error_kind",
    "error",
    "attempts",
    "fetched_at",
    "body",
    "good_status",
    "good_fetched_at",
)

FAILING_SQL = "(error_kind IS NOT NULL OR NOT (status BETWEEN 200 AND 299 OR status = 304))"


def parse_decoded(decoded: pl.DataFrame, requests: pl.DataFrame) -> Facts:
    """Decoded bodies (`decode_sql`'s output) + the newest attempt per request -> per-subject facts:
    each source reads its own bodies, and their facts are merged."""
    parts = [
        source.read(Bodies(docs={endpoint: endpoint_docs(decoded, source.name, endpoint)
                                 for endpoint in source.structures},
                           rows=row_bodies(decoded, source.name)))
        for source in SOURCES
    ]
    problems = decoded.filter(pl.col("problem").is_not_null()).select(
        "request_key", pl.format("{} body: {}", "endpoint", "problem").alias("reason")
    )
    # a source can describe one repository twice (two APIs): keep the newest good description,
    # on a tie the later row
    repos = (
        pl.concat([part.repos for part in parts])
        .with_row_index("_order")
        .sort("subject", "good_fetched_at", "_order", nulls_last=False)
        .unique("subject", keep="last", maintain_order=True)
        .drop("_order")
    )
    return Facts(
        repos=repos,
        commits=pl.concat([part.commits for part in parts]).unique("subject", keep="first", maintain_order=True),
        weeks=pl.concat([part.weeks for part in parts]),
        participants=pl.concat([part.participants for part in parts]),
        pypi=pl.concat([part.pypi for part in parts]),
        releases=pl.concat([part.releases for part in parts]),
        malformed=pl.concat([problems, *(part.malformed for part in parts)]).sort("request_key"),
        requests=requests.sort("request_key"),
        simple=pl.concat([part.simple for part in parts]),
        downloads=pl.concat([part.downloads for part in parts]),
        daily_downloads=pl.concat([part.daily_downloads for part in parts]),
    )


def parse_responses(responses: pl.LazyFrame | pl.DataFrame) -> Facts:
    """The parse stage for `latest_responses()`-shaped input (bodies in memory)."""
    frame = responses.lazy().select(RESPONSE_COLUMNS).sort("request_key").collect()
    con = duckdb.connect()
    try:
        con.register("src_frame", frame.filter(pl.col("body").is_not_null()))
        decoded = _query(con, decode_sql("SELECT * FROM src_frame", SOURCES))
    finally:
        con.close()
    return parse_decoded(decoded, frame.drop("body"))


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """A DuckDB result as polars, timestamps in UTC (DuckDB hands TIMESTAMPTZ back in its session zone)."""
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    zoned = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone not in (None, "UTC")]
    return frame.with_columns(pl.col(zoned).dt.convert_time_zone("UTC")) if zoned else frame


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(sql_literal(str(p)) for p in paths) + "]"


def parse_archive(
    raw_dir: Path,
    *,
    only_subjects: pl.DataFrame | None = None,
    threads: int | None = None,
) -> tuple[Facts, pl.LazyFrame]:
    """The parse stage straight from the Parquet archive, streaming (bounded memory at any scale).

    Same semantics as `latest_responses()` + `parse_responses()`: the newest attempt per request key
    (ties broken by file and row order) and the newest good body. Pass 1 reads only the small
    columns to find, per key, the file and row holding the newest good body; pass 2 streams the
    bodies of those rows through `decode_sql`. `only_subjects` (a frame with `subject`) limits the
    work to the requests about those subjects (incremental updates). Returns the facts and the
    failing keys' attempts (for crawl-error streaks).
    """
    files = batch_files(raw_dir)
    empty_attempts = pl.LazyFrame(
        schema={"request_key": pl.String, "status": pl.Int32, "error_kind": pl.String, "attempts": pl.Int32,
                "fetched_at": UTC_US}
    )
    if not files:
        empty = pl.DataFrame(schema={c: RAW_SCHEMA.get(c, UTC_US) for c in RESPONSE_COLUMNS})
        return parse_responses(empty), empty_attempts
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        keys_filter = ""
        if only_subjects is not None:
            con.register("only_subjects", only_subjects.select("subject").unique())
            keys_filter = "WHERE subject IN (SELECT subject FROM only_subjects)"
        con.execute(
            f"""CREATE TEMP TABLE idx AS
            SELECT request_key, source, endpoint, subject, status, error_kind, error, attempts, fetched_at,
                   filename, file_row_number
            FROM read_parquet({_sql_list(files)}, filename = true, file_row_number = true) {keys_filter}"""
        )
        order = "ORDER BY fetched_at DESC, filename DESC, file_row_number DESC"
        con.execute(
            f"""CREATE TEMP TABLE newest AS SELECT * EXCLUDE (filename, file_row_number) FROM idx
            QUALIFY row_number() OVER (PARTITION BY request_key {order}) = 1"""
        )
        con.execute(
            f"""CREATE TEMP TABLE good AS
            SELECT request_key, status AS good_status, fetched_at AS good_fetched_at, filename, file_row_number
            FROM idx WHERE status BETWEEN 200 AND 299 AND error_kind IS NULL
            QUALIFY row_number() OVER (PARTITION BY request_key {order}) = 1"""
        )
        requests = _query(
            con,
            """SELECT n.*, g.good_status, g.good_fetched_at FROM newest n
            LEFT JOIN good g USING (request_key) ORDER BY request_key""",
        )
        winner_files = [Path(r[0]) for r in con.execute("SELECT DISTINCT filename FROM good ORDER BY 1").fetchall()]
        if winner_files:
            # a SEMI join keeps the Parquet scan as the streaming probe side (a plain join may build
            # its hash table from the bodies)
            src = f"""SELECT request_key, source, endpoint, subject, fetched_at AS good_fetched_at,
                    status AS good_status, body
                FROM read_parquet({_sql_list(winner_files)}, filename = true, file_row_number = true) p
                SEMI JOIN good g ON g.filename = p.filename AND g.file_row_number = p.file_row_number"""
            decoded = _query(con, decode_sql(src, SOURCES))
        else:
            decoded = _query(con, decode_sql("SELECT * FROM (SELECT NULL::VARCHAR AS request_key, NULL::VARCHAR "
                                             "AS source, NULL::VARCHAR AS endpoint, NULL::VARCHAR AS subject, "
                                             "NULL::TIMESTAMPTZ AS good_fetched_at, NULL::INTEGER AS good_status, "
                                             "NULL::VARCHAR AS body) WHERE FALSE", SOURCES))
        attempts = _query(
            con,
            f"""SELECT request_key, status, error_kind, attempts, fetched_at FROM idx
            WHERE request_key IN (SELECT request_key FROM newest WHERE {FAILING_SQL})""",
        )
    finally:
        con.close()
    requests = requests.select(
        [pl.col(c).cast(RAW_SCHEMA.get(c, UTC_US)) if c != "good_status" else pl.col(c).cast(pl.Int32)
         for c in RESPONSE_COLUMNS if c != "body"]
    )
    return parse_decoded(decoded, requests), attempts.lazy()
