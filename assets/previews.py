"""Markdown previews for the Dagster UI: the rows a person opens an asset to look at.

Each is one small query on the open warehouse connection, rendered as a Markdown table for
`dg.MetadataValue.md`. Cells are cut short and pipes escaped, so one odd value cannot break the table.
Values come from the warehouse, which never holds a token (crawl messages and URLs are token-free).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg
import duckdb

CELL_CHARS = 120


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        value = value.isoformat(timespec="minutes") if hasattr(value, "hour") else value.isoformat()
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…"


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "No rows.") -> str:
    """A Markdown table of `rows` under `columns`; `empty` when there is no row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n" if len(lines) > 2 else empty


def most_starred(con: duckdb.DuckDBPyConnection, limit: int = 10) -> dg.MetadataValue:
    """The most-starred packages of `core.packages` (ties by id), with what the crawl knows of them."""
    columns = ["id", "slug", "repo_watchers", "repo_forks", "repo_host", "pypi_version", "last_updated"]
    rows = con.execute(f"SELECT {', '.join(columns)} FROM core.packages "
                       "ORDER BY repo_watchers DESC NULLS LAST, id LIMIT ?", [limit]).fetchall()
    return dg.MetadataValue.md(markdown_table(["id", "slug", "stars", "forks", "host", "PyPI version",
                                              "last commit"], rows, "No packages."))


def newest_crawl_errors(con: duckdb.DuckDBPyConnection, limit: int = 10) -> dg.MetadataValue:
    """The most recently seen failures of `core.crawl_errors` (severity `error`; notices left out)."""
    rows = con.execute(
        "SELECT e.last_seen, e.source, e.kind, e.http_status, p.slug, e.message "
        "FROM core.crawl_errors e LEFT JOIN core.packages p ON p.id = e.package_id "
        "WHERE e.severity = 'error' ORDER BY e.last_seen DESC NULLS LAST, e.package_id, e.request_key LIMIT ?",
        [limit]).fetchall()
    return dg.MetadataValue.md(markdown_table(["last seen", "source", "kind", "status", "package", "message"],
                                              rows, "No crawl errors."))


def endpoint_errors(con: duckdb.DuckDBPyConnection) -> dg.MetadataValue:
    """Every source endpoint not working as a whole (`core.endpoint_errors`: few rows, usually none)."""
    rows = con.execute("SELECT seen_at, source, endpoint, http_status, requests, message "
                       "FROM core.endpoint_errors ORDER BY seen_at DESC, source, endpoint").fetchall()
    return dg.MetadataValue.md(markdown_table(["seen", "source", "endpoint", "status", "answers", "message"],
                                              rows, "Every endpoint answered."))


def table_sizes(con: duckdb.DuckDBPyConnection, schemas: Sequence[str]) -> dg.MetadataValue:
    """Rows of every table in `schemas` (what a published snapshot holds). Views are left out: counting
    one runs its query, and the marts step reports theirs already."""
    names = [name for (name,) in con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' AND list_contains(?, table_schema) "
        "ORDER BY 1", [list(schemas)]).fetchall()]
    rows = [(name, con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]) for name in names]
    return dg.MetadataValue.md(markdown_table(["table", "rows"], rows, "No tables."))
