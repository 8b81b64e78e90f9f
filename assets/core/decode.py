"""The one SQL pass that validates and decodes every stored body, built from the sources' declarations.

Bodies are decoded in DuckDB (yyjson, multi-threaded, ~3x polars' `json_decode` on these shapes)
against the structures each source declares (`Source.structures`): only the fields the core tables
need are materialised, and a body that is not JSON or not the declared shape (`Source.shapes`) is
reported in `problem` instead of failing the whole batch. Bodies a source reads row by row
(`Source.row_endpoints`) are only validated here and passed on as text in `row_body`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from pipelines.sources.base import Source
from warehouse.ddl import sql_literal

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def decoded_column(source: str, endpoint: str) -> str:
    """The column of `decode_sql`'s output holding (source, endpoint)'s decoded bodies."""
    column = f"d_{source}__{endpoint}"
    if not _NAME.match(column):
        raise ValueError(f"source/endpoint names must be lower-case identifiers: {source!r}, {endpoint!r}")
    return column


def _is(source: str, endpoints: Sequence[str]) -> str:
    """SQL: the row is one of `source`'s `endpoints`."""
    if len(endpoints) == 1:
        return f"(source = {sql_literal(source)} AND endpoint = {sql_literal(endpoints[0])})"
    return f"(source = {sql_literal(source)} AND endpoint IN ({', '.join(sql_literal(e) for e in endpoints)}))"


def _any(conditions: list[str]) -> str:
    return " OR ".join(conditions) if conditions else "FALSE"


def decode_sql(src: str, sources: Sequence[Source]) -> str:
    """One pass over the newest good bodies in `src` (request_key, source, endpoint, subject,
    good_fetched_at, good_status, body): whatever `src` is (a registered frame or a streamed Parquet
    scan), the bodies are validated and decoded the same way, so both parse paths agree."""
    # TRY: a body that is not JSON decodes to NULL (and is then reported by `problem`) instead of
    # failing the whole query; parsing once here is what makes a separate json_valid pass unneeded
    decoded = {
        decoded_column(s.name, endpoint): (s.name, endpoint, structure)
        for s in sources for endpoint, structure in s.structures.items()
    }
    transforms = [f"CASE WHEN {_is(source, [endpoint])} THEN TRY(json_transform(body, {sql_literal(structure)})) "
                  f"END AS {column}" for column, (source, endpoint, structure) in decoded.items()]
    finishes = [f"{s.finish[endpoint].replace('{d}', decoded_column(s.name, endpoint))} "
                f"AS {decoded_column(s.name, endpoint)}" for s in sources for endpoint in s.finish]
    objects = _any([_is(s.name, [e for e, shape in s.shapes.items() if shape == "object"]) for s in sources
                    if "object" in s.shapes.values()])
    lists = _any([_is(s.name, [e for e, shape in s.shapes.items() if shape == "list"]) for s in sources
                  if "list" in s.shapes.values()])
    row_read = _any([_is(s.name, s.row_endpoints) for s in sources if s.row_endpoints])
    any_decoded = _any([f"{column} IS NOT NULL" for column in decoded])
    return f"""
    SELECT * {f"REPLACE ({', '.join(finishes)})" if finishes else ""} FROM (
    WITH t AS (
        SELECT request_key, source, endpoint, subject, good_fetched_at, good_status, body,
               left(ltrim(body), 1) AS head
               {"".join(f", {c}" for c in transforms)}
        FROM ({src})
    ), v AS (
        -- a decoded body is valid JSON; only the others are parsed again to tell why (CASE evaluates
        -- json_valid for those rows only)
        SELECT *, CASE WHEN {any_decoded} THEN TRUE ELSE coalesce(json_valid(body), FALSE) END AS valid FROM t
    )
    SELECT request_key, source, endpoint, subject, good_fetched_at, good_status,
           CASE WHEN NOT valid THEN 'body is not valid JSON'
                WHEN ({objects}) AND head <> '{{' THEN 'body is not a JSON object'
                WHEN ({lists}) AND head <> '[' THEN 'body is not a JSON list'
           END AS problem
           {"".join(f", {c}" for c in decoded)},
           CASE WHEN valid AND ({row_read}) THEN body END AS row_body
    FROM v
    )
    """


def endpoint_docs(decoded: pl.DataFrame, source: str, endpoint: str) -> pl.DataFrame:
    """One endpoint's well-formed decoded bodies as `doc` (request_key, subject, good_fetched_at, doc)."""
    mask = (pl.col("source") == source) & (pl.col("endpoint") == endpoint) & pl.col("problem").is_null()
    # select before filtering: the decoded frame carries every endpoint's (nested) column
    return decoded.select(
        "request_key", "subject", "good_fetched_at", pl.col(decoded_column(source, endpoint)).alias("doc"),
        mask.alias("_keep"),
    ).filter("_keep").drop("_keep")


def row_bodies(decoded: pl.DataFrame, source: str) -> pl.DataFrame:
    """`source`'s well-formed bodies read row by row (request_key, endpoint, subject, good_fetched_at, body)."""
    mask = (pl.col("source") == source) & pl.col("row_body").is_not_null() & pl.col("problem").is_null()
    return decoded.select(
        "request_key", "endpoint", "subject", "good_fetched_at", pl.col("row_body").alias("body"), mask.alias("_keep")
    ).filter("_keep").drop("_keep")
