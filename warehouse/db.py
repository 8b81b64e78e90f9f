"""DuckDB connections: one writer (migrated on open), any number of readers of the snapshot.

Where the warehouse lives is `PULSE_WAREHOUSE_URL` (`WarehouseTarget`, `parse_warehouse_url`):
unset, it is the DuckDB file `PULSE_HOME/warehouse.duckdb`, opened directly, exactly as before. Set,
it is attached: the writer is an in-memory DuckDB connection that loads the extension the target
needs (ducklake, motherduck), `ATTACH`es the warehouse and `USE`s it, so every statement written for
the file (schemas core., marts., ...) runs unchanged against it. Accepted forms:

- `duckdb:/path/file.duckdb` or a plain path: another DuckDB file, attached (the local alternative,
  and how the attached code path is exercised on a machine without the extensions);
- `ducklake:<metadata catalog>` (`ducklake:/path/meta.ducklake`, `ducklake:postgres:dbname=pulse host=..`,
  `ducklake:sqlite:..`, `ducklake:mysql:..`) with `PULSE_WAREHOUSE_DATA_PATH` (e.g. `s3://bucket/lake/`),
  required unless the catalog is a DuckDB file (DuckLake then keeps the data beside it);
- `md:<database>`: MotherDuck. Its token comes from `MOTHERDUCK_TOKEN`, which the extension reads
  itself: it never passes through this code, and a URL holding one is refused.

Extensions are only LOADed, never downloaded at run time (`autoinstall_known_extensions` is off on
our connections: only configured hosts are contacted); when one is missing, `connect_writer` fails
with one message naming the setting, the extension, the DuckDB version and what to do, and nothing
is created and nothing falls back to a local file.

One writer at a time is enforced twice. Dagster runs every writing step in the `warehouse_writer`
pool (limit 1 on an instance configured by `pulse`), and, whatever the instance, `open_writer` holds
an exclusive OS file lock (`<warehouse>.writer.lock`, via `filelock`) for as long as the read-write
connection is open: a second writer, in another process or thread, waits for it (bounded by
`PULSE_WRITER_LOCK_TIMEOUT` seconds, default 600) instead of failing on DuckDB's own lock. The lock
is re-entrant within a thread, and the kernel releases it when its process dies. For a remote
warehouse (DuckLake, MotherDuck) the lock file is `PULSE_HOME/state/warehouse.writer.lock`: it only
serialises writers on one machine; across pods the Dagster pool is what serialises them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
from filelock import FileLock, Timeout

from warehouse.ddl import apply_schema, sql_literal

LOCK_TIMEOUT_ENV = "PULSE_WRITER_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 600.0
URL_ENV = "PULSE_WAREHOUSE_URL"
DATA_PATH_ENV = "PULSE_WAREHOUSE_DATA_PATH"
TOKEN_ENV = "MOTHERDUCK_TOKEN"  # noqa: S105 - the variable's name; its value is never read into a message
CATALOG = "warehouse"  # the attached warehouse's catalog: the name a direct open of warehouse.duckdb gives it
HIDDEN = "(hidden: it may hold a secret)"

# DuckLake's metadata catalogs other than a DuckDB file, and the extension each needs beside ducklake
DUCKLAKE_CATALOGS = {"postgres": "postgres", "sqlite": "sqlite", "mysql": "mysql", "md": "motherduck",
                     "motherduck": "motherduck"}
# DuckLake data paths on object storage, and the extension that reads and writes them
DATA_PATH_EXTENSIONS = {"s3": "httpfs", "s3a": "httpfs", "s3n": "httpfs", "r2": "httpfs", "gs": "httpfs",
                        "gcs": "httpfs", "http": "httpfs", "https": "httpfs", "az": "azure", "azure": "azure",
                        "abfss": "azure"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")  # two letters at least: C:\ is a path
_SECRET_WORDS = ("password", "passwd", "pwd", "token", "secret", "credential", "apikey", "api_key",
                 "access_key", "key_id")


class WriterLockTimeout(RuntimeError):
    """Another writer held the warehouse's lock for longer than the timeout."""


class WarehouseUrlError(ValueError):
    """PULSE_WAREHOUSE_URL or PULSE_WAREHOUSE_DATA_PATH is unusable. The message names the variable and
    never repeats a value that may hold a secret."""


class WarehouseUnavailable(RuntimeError):
    """The configured warehouse cannot be opened (an extension that cannot be loaded, a failed ATTACH);
    nothing was created and nothing fell back to a local file."""


def looks_secret(value: str) -> bool:
    """A value that may carry a credential: a password/token/secret keyword or `user:password@`."""
    lowered = value.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    try:
        return urlsplit(value).password is not None
    except ValueError:
        return False


def shown(value: str) -> str:
    """`value` for an error message, unless it may hold a secret."""
    return HIDDEN if looks_secret(value) else repr(value)


@dataclass(frozen=True)
class WarehouseTarget:
    """Where the warehouse lives (`parse_warehouse_url`). `kind` is "file" (the default: the DuckDB file
    opened directly, as always), "duckdb" (a DuckDB file, attached), "ducklake" or "motherduck"."""

    kind: str
    path: Path | None = None  # the DuckDB file (file, duckdb)
    attach_uri: str = ""  # what ATTACH is given (may hold a secret: never logged; see `label`)
    data_path: str | None = None  # DuckLake's DATA_PATH
    catalog: str = CATALOG  # the attached catalog's name (MotherDuck: the database's own name)
    state_dir: Path | None = None  # PULSE_HOME/state: the writer lock and spill files of a remote warehouse
    extensions: tuple[str, ...] = ()  # DuckDB extensions to LOAD before attaching

    def __repr__(self) -> str:  # the dataclass repr would show attach_uri
        return f"WarehouseTarget({self.label})"

    @classmethod
    def file(cls, path: Path) -> WarehouseTarget:
        return cls(kind="file", path=Path(path))

    @property
    def attached(self) -> bool:
        return self.kind != "file"

    @property
    def label(self) -> str:
        """What the warehouse is, safe to print (no connection string, no token)."""
        if self.path is not None:
            return str(self.path) if self.kind == "file" else f"DuckDB file {self.path} (attached)"
        if self.kind == "motherduck":
            return f"MotherDuck database {self.catalog!r}"
        meta = self.attach_uri.removeprefix("ducklake:")
        scheme = _SCHEME.match(meta)
        where = f"{scheme.group(1)} catalog" if scheme else "DuckDB catalog file"
        data = f", data {self.data_path}" if self.data_path and not looks_secret(self.data_path) else ""
        return f"DuckLake ({where}{data})"

    @property
    def lock_base(self) -> Path:
        """The file the writer lock sits beside (`<it>.writer.lock`)."""
        if self.path is not None:
            return self.path
        assert self.state_dir is not None
        return self.state_dir / "warehouse"

    @property
    def temp_directory(self) -> Path:
        """Where DuckDB spills (an in-memory connection would default to `./.tmp`, the working folder)."""
        return self.lock_base.with_name(self.lock_base.name + ".tmp")

    def exists(self) -> bool | None:
        """The local file exists; None for a remote warehouse (not known without connecting)."""
        return self.path.exists() if self.path is not None else None


def _resolve(path: str) -> Path:
    return Path(path).expanduser().resolve()


def _local_file(value: str, published: Path | None) -> Path:
    if not value:
        raise WarehouseUrlError(f"{URL_ENV}: a DuckDB file path is missing after `duckdb:`")
    path = _resolve(value)
    if path.is_dir():
        raise WarehouseUrlError(f"{URL_ENV}={shown(value)} is a directory, not a DuckDB file")
    if published is not None and path == published.resolve():
        raise WarehouseUrlError(f"{URL_ENV}={shown(value)} is the published snapshot ({published}), which every "
                                "refresh replaces: choose another file")
    return path


def _data_path(value: str | None, meta_scheme: str | None) -> tuple[str | None, tuple[str, ...]]:
    """DuckLake's DATA_PATH (absolute when local) and the extension its storage needs."""
    if value is None:
        if meta_scheme is not None:
            raise WarehouseUrlError(
                f"{DATA_PATH_ENV} is required with {URL_ENV}=ducklake:{meta_scheme}:...: where DuckLake writes its "
                "Parquet files (e.g. s3://bucket/lake/); only a DuckDB catalog file has a default (<file>.files/)")
        return None, ()
    scheme = _SCHEME.match(value)
    if scheme is None:  # a local folder: absolute, so it does not depend on the working folder
        return str(_resolve(value)) + "/", ()
    name = scheme.group(1).lower()
    if name not in DATA_PATH_EXTENSIONS:
        raise WarehouseUrlError(f"{DATA_PATH_ENV}: unknown storage scheme {name!r} (expected a local folder or "
                                f"one of {', '.join(sorted(DATA_PATH_EXTENSIONS))})")
    if looks_secret(value):
        raise WarehouseUrlError(f"{DATA_PATH_ENV}={HIDDEN} carries credentials: give them as DuckDB secrets or "
                                "the storage's environment variables (AWS_ACCESS_KEY_ID, ...), not in the path")
    return value, (DATA_PATH_EXTENSIONS[name],)


def parse_warehouse_url(url: str | None, data_path: str | None, home: Path) -> WarehouseTarget:
    """PULSE_WAREHOUSE_URL (+ PULSE_WAREHOUSE_DATA_PATH) -> where the warehouse lives. Unset: the file
    `home/warehouse.duckdb`, opened directly. Raises WarehouseUrlError naming the variable."""
    url = (url or "").strip() or None
    data_path = (data_path or "").strip() or None
    home = Path(home)
    if url is None:
        if data_path is not None:
            raise WarehouseUrlError(f"{DATA_PATH_ENV} is only used with {URL_ENV}=ducklake:...; {URL_ENV} is unset")
        return WarehouseTarget.file(home / "warehouse.duckdb")
    scheme_match = _SCHEME.match(url)
    scheme = scheme_match.group(1).lower() if scheme_match else None
    rest = url[scheme_match.end():] if scheme_match else url
    if scheme in ("ducklake",):
        return _ducklake(rest, data_path, home)
    if data_path is not None:
        raise WarehouseUrlError(f"{DATA_PATH_ENV} is only used with {URL_ENV}=ducklake:...")
    if scheme in ("md", "motherduck"):
        return _motherduck(rest, home)
    if scheme in (None, "duckdb"):
        path = _local_file(rest, home / "published.duckdb")
        return WarehouseTarget(kind="duckdb", path=path, attach_uri=str(path))
    hint = " (an object store is the DATA_PATH of a DuckLake: ducklake:<catalog> with " \
           f"{DATA_PATH_ENV}={scheme}://...)" if scheme in DATA_PATH_EXTENSIONS else ""
    raise WarehouseUrlError(f"{URL_ENV}: unknown scheme {scheme!r}; expected ducklake:<metadata catalog>, "
                            f"md:<database>, duckdb:<file> or a DuckDB file path{hint}")


def _ducklake(meta: str, data_path: str | None, home: Path) -> WarehouseTarget:
    meta = meta.strip()
    if not meta:
        raise WarehouseUrlError(f"{URL_ENV}=ducklake: names no metadata catalog (e.g. ducklake:/path/meta.ducklake "
                                "or ducklake:postgres:dbname=pulse host=...)")
    scheme_match = _SCHEME.match(meta)
    extensions = ["ducklake"]
    if scheme_match is None:  # a DuckDB file holds the catalog
        meta_scheme = None
        meta = str(_local_file(meta, home / "published.duckdb"))
    else:
        meta_scheme = scheme_match.group(1).lower()
        if meta_scheme not in DUCKLAKE_CATALOGS:
            raise WarehouseUrlError(f"{URL_ENV}: unknown DuckLake catalog type {meta_scheme!r}; expected a DuckDB "
                                    f"file or one of {', '.join(sorted(DUCKLAKE_CATALOGS))}")
        if meta_scheme in ("md", "motherduck") and "token" in meta.lower():
            raise WarehouseUrlError(f"{URL_ENV}={HIDDEN} holds a MotherDuck token: set {TOKEN_ENV} instead")
        extensions.append(DUCKLAKE_CATALOGS[meta_scheme])
    data, storage = _data_path(data_path, meta_scheme)
    return WarehouseTarget(kind="ducklake", attach_uri=f"ducklake:{meta}", data_path=data,
                           state_dir=home / "state", extensions=tuple(dict.fromkeys([*extensions, *storage])))


def _motherduck(rest: str, home: Path) -> WarehouseTarget:
    database, _, params = rest.partition("?")
    if "token" in params.lower() or looks_secret(rest):
        raise WarehouseUrlError(f"{URL_ENV}={HIDDEN} holds a token: MotherDuck's comes from {TOKEN_ENV} "
                                "(the extension reads it), never from the URL")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise WarehouseUrlError(f"{URL_ENV}={shown('md:' + rest)} names no MotherDuck database: md:<database> "
                                "(letters, digits, _), e.g. md:pulse")
    return WarehouseTarget(kind="motherduck", attach_uri=f"md:{rest}", catalog=database,
                           state_dir=home / "state", extensions=("motherduck",))


def as_target(warehouse: Path | str | WarehouseTarget) -> WarehouseTarget:
    """A path (callers from before PULSE_WAREHOUSE_URL) is the local file, opened directly."""
    return warehouse if isinstance(warehouse, WarehouseTarget) else WarehouseTarget.file(Path(warehouse))


def lock_path(path: Path | WarehouseTarget) -> Path:
    path = as_target(path).lock_base
    return path.with_name(path.name + ".writer.lock")


def lock_timeout_s(timeout: float | None = None) -> float:
    """`timeout`, else PULSE_WRITER_LOCK_TIMEOUT, else 600 s (negative: wait forever)."""
    if timeout is not None:
        return float(timeout)
    value = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT_S
    except ValueError as exc:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}={value!r} is not a number of seconds") from exc


@contextmanager
def writer_lock(path: Path | WarehouseTarget, timeout: float | None = None) -> Iterator[Path]:
    """Hold the warehouse's exclusive writer lock (waiting at most `timeout` seconds); yields its path."""
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    wait = lock_timeout_s(timeout)
    # one FileLock object per lock file and process (is_singleton), thread-local: re-entrant within
    # a thread, exclusive between threads (each thread gets its own descriptor) and processes
    lock = FileLock(lock_file, is_singleton=True, thread_local=True)
    started = time.monotonic()
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise WriterLockTimeout(
            f"timed out after {time.monotonic() - started:.1f}s waiting for the warehouse writer lock "
            f"{lock_file}: another writer (a step or process) still holds it; set {LOCK_TIMEOUT_ENV} "
            "(seconds) to wait longer"
        ) from None
    try:
        yield lock_file
    finally:
        lock.release()


def _scrub(text: str, target: WarehouseTarget) -> str:
    """An error from DuckDB with the connection string and the MotherDuck token taken out."""
    for secret in (target.attach_uri, os.environ.get(TOKEN_ENV), os.environ.get(TOKEN_ENV.lower())):
        if secret:
            text = text.replace(secret, "<hidden>")
    return text


def _extension_help(target: WarehouseTarget, extension: str, error: duckdb.Error) -> str:
    version = duckdb.__version__
    reason = _scrub(str(error).strip().splitlines()[0], target) if str(error).strip() else type(error).__name__
    return (
        f"{URL_ENV} asks for {target.label}, which needs DuckDB's `{extension}` extension, and DuckDB {version} "
        f"cannot load it here ({reason}). Install it for DuckDB {version} on a machine that reaches the extension "
        f"repository (`INSTALL {extension};`, e.g. in the image build: python -c \"import duckdb; "
        f"duckdb.connect().install_extension('{extension}')\"), or copy `{extension}.duckdb_extension` into "
        f"DuckDB's extension directory ({_extension_directory()}/). Extensions are never downloaded during a run. "
        "Nothing was created; "
        f"unset {URL_ENV} to use the local file PULSE_HOME/warehouse.duckdb."
    )


def _extension_directory() -> str:
    """Where this DuckDB looks for installed extensions (~/.duckdb/extensions/v<version>/<platform>)."""
    con = duckdb.connect()
    try:
        configured = con.execute("SELECT current_setting('extension_directory')").fetchone()[0]
        platform = con.execute("PRAGMA platform").fetchone()[0]
    finally:
        con.close()
    root = Path(configured) if configured else Path.home() / ".duckdb" / "extensions"
    return str(root / f"v{duckdb.__version__}" / platform)


def _memory_connection(target: WarehouseTarget) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the target's extensions loaded (no download: see the module doc)."""
    config = {"autoinstall_known_extensions": False, "temp_directory": str(target.temp_directory)}
    con = duckdb.connect(config=config)
    try:
        for extension in target.extensions:
            try:
                con.execute(f"LOAD {extension}")
            except duckdb.Error as exc:
                raise WarehouseUnavailable(_extension_help(target, extension, exc)) from None
        if target.kind == "motherduck" and not (os.environ.get(TOKEN_ENV) or os.environ.get(TOKEN_ENV.lower())):
            raise WarehouseUnavailable(f"{URL_ENV} asks for {target.label}, and {TOKEN_ENV} is not set: MotherDuck "
                                       "would wait for a browser sign-in; set it (in the pod: from a Secret)")
    except Exception:
        con.close()
        raise
    return con


def check_target(target: WarehouseTarget) -> None:
    """Fail now, with the message of `connect_writer`, if the target's extensions cannot be loaded
    (before a lock file, a Dagster run or anything else is created)."""
    if target.extensions:
        _memory_connection(target).close()


def _attach(target: WarehouseTarget, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """In-memory connection + ATTACH the warehouse + USE it: unqualified SQL then runs against it."""
    con = _memory_connection(target)
    options = [f"DATA_PATH {sql_literal(target.data_path)}"] if target.data_path else []
    if read_only:
        options.append("READ_ONLY")
    # MotherDuck refuses an alias for a database of one's own: its catalog keeps the database's name
    alias = "" if target.kind == "motherduck" else f" AS {target.catalog}"
    try:
        if target.path is not None and not read_only:
            target.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = f" ({', '.join(options)})" if options else ""
        try:
            con.execute(f"ATTACH {sql_literal(target.attach_uri)}{alias}{suffix}")
        except duckdb.Error as exc:
            raise WarehouseUnavailable(f"{URL_ENV}: could not attach {target.label}: "
                                       f"{_scrub(str(exc), target)}") from None
        con.execute(f"USE {target.catalog}")
    except Exception:
        con.close()
        raise
    return con


def connect_writer(path: Path | WarehouseTarget) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating it and bringing its schema up to date.

    A path or the default target: the DuckDB file itself. Any other target: attached as catalog
    `warehouse` (MotherDuck: its database's name) of an in-memory connection, which it then USEs.
    No lock is taken here: prefer `open_writer`, unless the caller holds `writer_lock` itself.
    """
    target = as_target(path)
    if target.attached:
        con = _attach(target, read_only=False)
    else:
        assert target.path is not None
        target.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(target.path))
    try:
        apply_schema(con)
    except Exception:
        con.close()
        raise
    return con


@contextmanager
def open_writer(path: Path | WarehouseTarget, *, lock_timeout: float | None = None
                ) -> Iterator[duckdb.DuckDBPyConnection]:
    """The read-write connection, under the exclusive writer lock for as long as it is open."""
    target = as_target(path)
    check_target(target)  # a missing extension fails before the lock file is created
    with writer_lock(target, lock_timeout):
        con = connect_writer(target)
        try:
            yield con
        finally:
            con.close()


def connect_reader(path: Path) -> duckdb.DuckDBPyConnection:
    """Read-only connection (use it on the published snapshot, which no writer holds)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `pulse refresh` (or `pulse demo`) first")
    return duckdb.connect(str(path), read_only=True)


def connect_live_reader(warehouse: Path | WarehouseTarget) -> duckdb.DuckDBPyConnection:
    """Read-only connection to the live warehouse itself (attached read-only when it is not the default
    file). Readers of the data should prefer the published snapshot (`connect_reader`)."""
    target = as_target(warehouse)
    if not target.attached:
        assert target.path is not None
        return connect_reader(target.path)
    if target.path is not None and not target.path.exists():
        raise FileNotFoundError(f"no warehouse at {target.path}: run `pulse refresh` (or `pulse demo`) first")
    return _attach(target, read_only=True)


# What the DuckLake specification does not hold (docs: ducklake.select, "Unsupported Features",
# "Constraints", "Data Types"): checked on a real warehouse by the tests, so the schema stays portable.
DUCKLAKE_UNSUPPORTED_TYPES = ("HUGEINT", "UHUGEINT", "ENUM", "UNION", "BIT", "BIGNUM", "VARINT", "GEOMETRY")


def ducklake_incompatibilities(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> list[str]:
    """What in the database of `con` (its current catalog, or `catalog`) DuckLake could not store: column
    types it lacks (HUGEINT, ENUM, UNION, fixed-size ARRAY, ...), defaults that are not literals, constraints
    other than NOT NULL, indexes, sequences and macros. [] when the warehouse would move to DuckLake as is."""
    catalog = catalog or con.execute("SELECT current_database()").fetchone()[0]
    problems: list[str] = []
    columns = con.execute(
        "SELECT schema_name, table_name, column_name, data_type, column_default FROM duckdb_columns() "
        "WHERE database_name = ? AND NOT internal ORDER BY ALL", [catalog]).fetchall()
    views = {f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal",
        [catalog]).fetchall()}
    for schema, table, column, dtype, default in columns:
        if f"{schema}.{table}" in views:
            continue
        name = f"{schema}.{table}.{column}"
        upper = dtype.upper()
        if any(re.search(rf"\b{bad}\b", upper) for bad in DUCKLAKE_UNSUPPORTED_TYPES) or \
                re.search(r"\[\d+\]", upper):
            problems.append(f"{name}: type {dtype}")
        if default is not None and not _literal_default(default):
            problems.append(f"{name}: default {default} (DuckLake takes literal defaults only)")
    for schema, table, kind in con.execute(
            "SELECT schema_name, table_name, constraint_type FROM duckdb_constraints() "
            "WHERE database_name = ? AND constraint_type <> 'NOT NULL' ORDER BY ALL", [catalog]).fetchall():
        problems.append(f"{schema}.{table}: {kind} constraint")
    for (index,) in con.execute("SELECT index_name FROM duckdb_indexes() WHERE database_name = ?",
                                [catalog]).fetchall():
        problems.append(f"index {index}")
    for (sequence,) in con.execute("SELECT sequence_name FROM duckdb_sequences() WHERE database_name = ?",
                                   [catalog]).fetchall():
        problems.append(f"sequence {sequence}")
    for (macro,) in con.execute("SELECT function_name FROM duckdb_functions() WHERE database_name = ? "
                                "AND NOT internal AND function_type LIKE '%macro'", [catalog]).fetchall():
        problems.append(f"macro {macro}")
    return problems


def _literal_default(default: str) -> bool:
    text = default.strip()
    return bool(re.fullmatch(r"-?\d+(\.\d+)?|'([^']|'')*'(::\w+)?|(?i:true|false|null)|CAST\('([^']|'')*' AS \w+\)",
                             text))
