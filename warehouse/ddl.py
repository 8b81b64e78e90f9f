"""The declared warehouse model (`warehouse/schema/*.sql`) and the migrations that keep a file on it.

The SQL files are the source of truth for table columns, types and keys (`-- key: a, b` above each
`CREATE TABLE`). Opening the warehouse for writing (`apply_schema`) creates what is missing, adds
columns a declared table gained since the file was written (an additive migration, no manual drop),
runs the ordered one-off `MIGRATIONS` not yet recorded, and (re)creates the views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

SCHEMA_DIR = Path(__file__).parent / "schema"
SCHEMAS = ("catalogue", "raw", "core", "health", "history", "marts")
SQL_FILES = ("core.sql", "health.sql", "history.sql", "marts.sql")  # tables first, views last


def sql_literal(text: str) -> str:
    """`text` as a SQL string literal (quotes doubled): for the values DuckDB takes only inline, such
    as file paths in ATTACH, COPY and read_parquet, and json_transform structures."""
    return "'" + text.replace("'", "''") + "'"

# One-off migrations, applied once in order and recorded in main.pulse_migrations. Additive column
# changes need no entry here (apply_schema adds declared columns); renames, type changes and
# back-fills do. Each entry: (id, description, SQL).
MIGRATIONS: list[tuple[int, str, str]] = []

_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+([\w.]+)", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+([\w.]+)", re.IGNORECASE)


@dataclass(frozen=True)
class TableSpec:
    name: str  # schema.table
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) in declared order
    sql: str


@dataclass(frozen=True)
class ViewSpec:
    name: str
    sql: str
    key: tuple[str, ...] = ()


# Keys of the relations whose shape is defined in code rather than in the SQL files: the raw views
# (`create_raw_views`) and the catalogue tables (`assets.catalogue.transform`). Documented in
# warehouse/README.md like the declared ones; `()` = no key.
CODE_KEYS: dict[str, tuple[str, ...]] = {
    "raw.responses": (),
    "raw.latest_attempts": ("request_key",),
    "catalogue.categories": ("id",),
    "catalogue.grids": ("id",),
    "catalogue.grid_packages": ("grid_id", "package_id"),
    "catalogue.packages": ("id",),
    "catalogue.rejects": (),
}


def _statements(text: str) -> list[str]:
    return [s.strip() for s in text.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def _key(stmt: str) -> tuple[str, ...]:
    key_line = re.search(r"--\s*key:\s*(.+)", stmt)
    return tuple(k.strip() for k in key_line.group(1).split(",")) if key_line else ()


@cache
def declared_keys(file: str) -> dict[str, tuple[str, ...]]:
    """The `-- key:` of every table in one SQL file, read from the text alone: no DuckDB, so code can
    take its keys from the schema at import time instead of repeating them."""
    return {match.group(1): _key(stmt) for stmt in _statements((SCHEMA_DIR / file).read_text())
            if (match := _CREATE_TABLE.search(stmt))}


@cache
def declared() -> tuple[dict[str, TableSpec], dict[str, ViewSpec]]:
    """Tables and views declared in the SQL files (types resolved by DuckDB itself)."""
    tables: dict[str, TableSpec] = {}
    views: dict[str, ViewSpec] = {}
    scratch = duckdb.connect()
    try:
        for schema in SCHEMAS:
            scratch.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for file in SQL_FILES:
            for stmt in _statements((SCHEMA_DIR / file).read_text()):
                key = _key(stmt)
                if match := _CREATE_TABLE.search(stmt):
                    name = match.group(1)
                    scratch.execute(stmt)
                    schema, table = name.split(".")
                    cols = scratch.execute(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                        [schema, table],
                    ).fetchall()
                    tables[name] = TableSpec(name, key, tuple((c, t) for c, t in cols), stmt)
                elif match := _CREATE_VIEW.search(stmt):
                    views[match.group(1)] = ViewSpec(match.group(1), stmt, key)
    finally:
        scratch.close()
    return tables, views


def table_spec(name: str) -> TableSpec | None:
    return declared()[0].get(name)


def relation_keys() -> dict[str, tuple[str, ...]]:
    """Every relation's key: declared tables and views (SQL files) and the code-defined ones."""
    tables, views = declared()
    return {**{n: t.key for n, t in tables.items()}, **{n: v.key for n, v in views.items()}, **CODE_KEYS}


def existing_columns(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    schema, table = name.split(".")
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return dict(rows)


def apply_schema(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the open warehouse up to the declared model; returns what was changed (for logs)."""
    changes: list[str] = []
    tables, views = declared()
    con.execute("BEGIN TRANSACTION")
    try:
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for spec in tables.values():
            have = existing_columns(con, spec.name)
            if not have:
                con.execute(spec.sql)
                changes.append(f"created {spec.name}")
                continue
            for column, dtype in spec.columns:
                if column not in have:
                    con.execute(f'ALTER TABLE {spec.name} ADD COLUMN "{column}" {dtype}')
                    changes.append(f"added {spec.name}.{column} {dtype}")
        con.execute(  # no DEFAULT now() on applied_at: DuckLake takes literal defaults only
            "CREATE TABLE IF NOT EXISTS main.pulse_migrations "
            "(id INTEGER, description VARCHAR, applied_at TIMESTAMPTZ)"
        )
        done = {row[0] for row in con.execute("SELECT id FROM main.pulse_migrations").fetchall()}
        for mig_id, description, sql in MIGRATIONS:
            if mig_id not in done:
                con.execute(sql)
                con.execute(
                    "INSERT INTO main.pulse_migrations (id, description, applied_at) VALUES (?, ?, now())",
                    [mig_id, description]
                )
                changes.append(f"migration {mig_id}: {description}")
        for view in views.values():
            con.execute(view.sql)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return changes


def create_raw_views(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> bool:
    """`raw.responses`: every archived response (a view over the Parquet batches). False if none yet."""
    files = sorted(raw_dir.glob("*/*.parquet"))
    if not files:
        return False
    pattern = sql_literal(str(raw_dir.resolve() / "*" / "*.parquet"))
    con.execute(
        f"CREATE OR REPLACE VIEW raw.responses AS SELECT * FROM read_parquet({pattern}, union_by_name = true)"
    )
    con.execute(
        "CREATE OR REPLACE VIEW raw.latest_attempts AS "
        "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER "
        "(PARTITION BY request_key ORDER BY fetched_at DESC) AS rn FROM raw.responses) WHERE rn = 1"
    )
    return True
