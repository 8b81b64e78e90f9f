"""The raw archive on object storage (`PULSE_RAW_URL`): the local raw folder becomes a cache of it.

Why: on Kubernetes (deploy/) every run, even every step, runs in a pod of its own with an ephemeral
disk, so the crawl shards and core can only share the archive through object storage. Unset (the
default) nothing changes: the archive is `PULSE_HOME/raw` alone. Set (`s3://bucket/pulse/raw`,
`gs://...`, `az://...`, and `file:///abs/path` or `memory://` for tests), each batch lives under
`<url>/<source>/<batch file name>`, the same names as the local layout (`warehouse.archive`):

- **upload**: a batch is uploaded right after `write_batch` renamed it into place (from the crawl's
  archive thread, while `mirroring` is active). An object PUT is atomic, so a reader sees whole batches
  or nothing, as with the local rename. A failed upload (network, 5xx, after the client's few retries)
  leaves the batch local and stops the uploads of that crawl: the batches are pushed later.
- **push** (`RawStore.push`): at the end of each crawl slice step (the pod that wrote the batches), every
  local batch missing remotely is uploaded. Names are compared, never contents: batch names are unique
  (timestamp + random id) and a batch is never rewritten. A push that fails does not fail the crawl: the
  batches stay local, a warning says so, and the raw assets report how many are `raw_store_unpushed`.
- **pull** (`RawStore.pull`): before the crawl plans (best effort: its ETags and freshness come from the
  archive) and before core reads the archive (required, see below), every remote batch missing locally
  is downloaded to a temporary name and renamed into place.

Failure semantics of core's pull (`pull_for_core`): core must never publish less than before. When the
store cannot be read, core continues from the local cache only if that cache holds every batch the
current core tables were built from (so the rebuild can only add to them) and that set is not empty;
otherwise it fails the run with "the raw archive at <url> could not be read: ...", and the previous
warehouse and published snapshot stay as they were. So a pod with an empty (or partial) cache and an
unreachable store refuses, and a machine whose cache is complete goes on with a warning.

Security: only the configured bucket/prefix is listed; a remote name is used only when its folder
matches `archive.SOURCE_NAME` and its file name `archive.BATCH_NAME` (a key like `../../etc/x.parquet`,
`github/../../x` or `github/notes.txt` is skipped with a warning naming it), and the destination is
checked to be inside the raw folder before anything is written. Credentials come from each cloud's
standard environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for
S3-compatible stores such as MinIO or R2, AWS_ALLOW_HTTP for a plain-http endpoint, GOOGLE_*, AZURE_*),
read by the library, never by this module; messages name the URL without userinfo or query string.

Why `obstore` (the Python bindings of Rust's `object_store`) rather than s3fs/fsspec: one small wheel
with no dependency tree (s3fs brings aiobotocore and botocore, and a second package per cloud), the
same API for S3, GCS, Azure, local files and memory, the clouds' standard environment variables read
as the official SDKs do, atomic PUTs, bounded retries we configure, and it refuses `.`/`..` path
segments in every call (a traversal can not even be expressed through it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from warehouse import archive
from warehouse.archive import BATCH_NAME, SOURCE_NAME

logger = logging.getLogger(__name__)

# the schemes PULSE_RAW_URL may use (obstore.store.from_url)
SCHEMES = ("s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "file", "memory")
# a store that is down must not hold a crawl for minutes: few retries (a later push or pull reconciles
# whatever failed). The client's own timeouts stay (5 s to connect, 30 s a request); no client options
# are passed, as they would replace those read from the environment (AWS_ALLOW_HTTP, proxies, ...)
RETRY = {"max_retries": 2, "retry_timeout": timedelta(seconds=20),
         "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2), "base": 2}}
_PARQUET_MAGIC = b"PAR1"


class RawStoreError(RuntimeError):
    """The raw archive on object storage could not be read (the message names the URL, no secret)."""


def display_url(url: str) -> str:
    """`url` without userinfo, query string or fragment (what messages may show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_URL_QUERY = re.compile(r"(\w+://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
_URL_USERINFO = re.compile(r"(\w+://)[^/\s@\"'<>]+@")


def _reason(exc: BaseException) -> str:
    """The first line of a storage error, without query strings or userinfo of any URL in it (an Azure
    SAS token travels in the query string)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = _URL_USERINFO.sub(r"\1", _URL_QUERY.sub(r"\1?…", text))
    return f"{type(exc).__name__}: {text}"


def check_url(value: str, name: str = "PULSE_RAW_URL") -> str:
    """A usable PULSE_RAW_URL (trailing slash dropped), else ValueError naming the setting."""
    parts = urlsplit(value)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{name}={display_url(value)!r} is not an object-storage URL "
                         f"(one of {', '.join(s + '://' for s in SCHEMES)})")
    if parts.query or parts.username or parts.password:
        raise ValueError(f"{name}={display_url(value)!r}: credentials and options come from the environment "
                         "(AWS_*, GOOGLE_*, AZURE_*), not the URL (userinfo or query string given)")
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path.startswith("/")):
        raise ValueError(f"{name}={value!r}: a file:// URL needs an absolute path (file:///abs/path)")
    if parts.scheme not in ("file", "memory") and not parts.hostname:
        raise ValueError(f"{name}={display_url(value)!r} names no bucket or container")
    return value.rstrip("/") if parts.scheme != "memory" else value


def batch_key(source: str, name: str) -> str | None:
    """`<source>/<name>` when both are an archive folder and batch file name, else None."""
    if SOURCE_NAME.fullmatch(source) and BATCH_NAME.fullmatch(name):
        return f"{source}/{name}"
    return None


def batch_partition(name: str) -> str | None:
    """The crawl partition in a batch file name (`<id>.<partition>.parquet`), None when unpartitioned."""
    match = BATCH_NAME.fullmatch(name)
    return match.group("partition") if match else None


@dataclass
class SyncStats:
    """What one push or pull did, per source (numbers for the materializations' metadata)."""

    pushed: Counter[str] = field(default_factory=Counter)
    pushed_bytes: Counter[str] = field(default_factory=Counter)
    unpushed: Counter[str] = field(default_factory=Counter)
    pulled: Counter[str] = field(default_factory=Counter)
    pulled_bytes: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)  # remote keys refused (not batch names)
    error: str | None = None  # why the store could not be reached (no secret in it)

    def add(self, other: SyncStats) -> None:
        for name in ("pushed", "pushed_bytes", "unpushed", "pulled", "pulled_bytes"):
            getattr(self, name).update(getattr(other, name))
        self.skipped.extend(other.skipped)
        self.error = self.error or other.error

    def metadata(self, source: str | None = None) -> dict[str, int]:
        """Flat numbers under stable names, present even when zero (as `assets.raw.metrics`): one
        source's, or every source's added up."""

        def pick(counter: Counter[str]) -> int:
            return int(sum(counter.values()) if source is None else counter.get(source, 0))

        return {"raw_store_pushed": pick(self.pushed), "raw_store_pushed_bytes": pick(self.pushed_bytes),
                "raw_store_unpushed": pick(self.unpushed), "raw_store_pulled": pick(self.pulled),
                "raw_store_pulled_bytes": pick(self.pulled_bytes)}


_MEMORY: dict[str, Any] = {}  # memory:// stores (tests), one per URL and process
_MEMORY_LOCK = threading.Lock()


class RawStore:
    """The remote archive at one URL."""

    def __init__(self, url: str, log: logging.Logger | None = None) -> None:
        self.url = check_url(url)
        self.shown = display_url(self.url)
        self.log = log or logger
        self.skipped: list[str] = []  # the keys the newest listing skipped
        self._store: Any = None  # the obstore client, made on first use

    @classmethod
    def from_settings(cls, settings: Any, log: logging.Logger | None = None) -> RawStore | None:
        """The store of `settings.raw_url` (PULSE_RAW_URL); None when unset (local archive only)."""
        url = getattr(settings, "raw_url", None)
        return cls(url, log) if url else None

    def _client(self) -> Any:
        from obstore.store import MemoryStore, from_url

        if self._store is None:
            scheme = urlsplit(self.url).scheme
            if scheme == "memory":  # one per URL and process, so that every RawStore of it sees the same
                with _MEMORY_LOCK:
                    self._store = _MEMORY.setdefault(self.url, MemoryStore())
            elif scheme == "file":
                self._store = from_url(self.url, mkdir=True)
            else:  # the credentials and the endpoint from the cloud's environment variables
                self._store = from_url(self.url, retry_config=RETRY)
        return self._store

    def error(self, what: str, exc: BaseException) -> str:
        return f"the raw archive at {self.shown} could not be {what}: {_reason(exc)}"

    # ---- listing

    def remote_batches(self) -> dict[str, set[str]]:
        """Source -> batch file names held remotely; other keys are skipped with a warning naming them.

        Raises RawStoreError when the store cannot be listed. A key the client refuses to parse (a
        `..` or empty segment) stops its listing: the listing resumes after every key that shares the
        refused segment (those sort before `<folder>/0`, before any batch or source name; object stores
        without a native start-after then fail the listing, which errs on the safe side).
        """
        from obstore import list as list_objects
        from obstore.exceptions import InvalidPathError

        found: dict[str, set[str]] = {}
        skipped: list[str] = []
        offset: str | None = None
        for _ in range(1000):
            try:
                for chunk in list_objects(self._client(), None, offset=offset, chunk_size=1000):
                    for meta in chunk:
                        key = meta["path"]
                        source, _, name = key.partition("/")
                        if batch_key(source, name) is None:
                            skipped.append(key)
                        else:
                            found.setdefault(source, set()).add(name)
                break
            except InvalidPathError as exc:
                bad = _refused_key(str(exc), self._prefix())
                resume = _resume_after(bad) if bad is not None else None
                if resume is None or (offset is not None and resume <= offset):
                    raise RawStoreError(self.error("read", exc)) from None
                skipped.append(bad)
                offset = resume
            except Exception as exc:
                raise RawStoreError(self.error("read", exc)) from None
        else:  # never a partial listing: too many refused keys is a store to look at
            raise RawStoreError(f"the raw archive at {self.shown} could not be read: {len(skipped)} keys refused")
        for key in skipped:
            self.log.warning("raw archive at %s: skipped %r (not a batch of the archive)", self.shown, key)
        self.skipped = skipped
        return found

    def _prefix(self) -> str:
        """The key prefix below the bucket or container (what the client puts before every key)."""
        parts = urlsplit(self.url)
        return "" if parts.scheme in ("file", "memory") else parts.path.strip("/")

    # ---- upload

    def upload(self, path: Path) -> int:
        """PUT one local batch under `<source>/<name>`; its size in bytes. Raises on failure."""
        from obstore import put

        path = Path(path)
        key = batch_key(path.parent.name, path.name)
        if key is None:
            raise ValueError(f"not an archive batch: {path}")
        data = path.read_bytes()
        put(self._client(), key, data)
        return len(data)

    def push(self, raw_dir: Path) -> SyncStats:
        """Upload every local batch missing remotely. Never raises for the store: on failure the
        batches not uploaded are counted in `unpushed` and `error` says why (a warning too)."""
        stats = SyncStats()
        local = _local_batches(raw_dir)
        try:
            remote = self.remote_batches()
        except RawStoreError as exc:
            stats.error = str(exc)
            for source, names in local.items():
                stats.unpushed[source] += len(names)
            self.log.warning("%s; %d batches stay local and are pushed by a later crawl", exc,
                             sum(stats.unpushed.values()))
            return stats
        missing = [(s, n) for s, names in sorted(local.items()) for n in sorted(names - remote.get(s, set()))]
        for index, (source, name) in enumerate(missing):
            try:
                stats.pushed_bytes[source] += self.upload(Path(raw_dir) / source / name)
                stats.pushed[source] += 1
            except Exception as exc:
                stats.error = self.error("written", exc)
                for rest_source, _ in missing[index:]:
                    stats.unpushed[rest_source] += 1
                self.log.warning("%s; %d batches stay local and are pushed by a later crawl", stats.error,
                                 sum(stats.unpushed.values()))
                break
        return stats

    # ---- download

    def pull(self, raw_dir: Path, partitions: Iterable[str] | None = None) -> SyncStats:
        """Download every remote batch missing locally (only those of `partitions` and unpartitioned
        ones when given) into the raw folder, each under a temporary name renamed into place.
        Raises RawStoreError when the store cannot be read."""
        from obstore import get

        wanted = None if partitions is None else set(partitions)
        raw_dir = Path(raw_dir)
        root = raw_dir.resolve()
        stats = SyncStats()
        remote = self.remote_batches()
        stats.skipped = list(self.skipped)
        local = _local_batches(raw_dir)
        for source, names in sorted(remote.items()):
            for name in sorted(names - local.get(source, set())):
                if wanted is not None and batch_partition(name) not in wanted | {None}:
                    continue
                key = batch_key(source, name)
                folder = raw_dir / source
                final = folder / name
                if key is None or final.resolve().parent != root / source:  # never outside raw/<source>/
                    self.log.warning("raw archive at %s: skipped %r (not a batch of the archive)", self.shown,
                                     f"{source}/{name}")
                    continue
                try:
                    data = bytes(get(self._client(), key).bytes())
                except Exception as exc:
                    raise RawStoreError(self.error("read", exc)) from None
                if len(data) < 12 or data[:4] != _PARQUET_MAGIC or data[-4:] != _PARQUET_MAGIC:
                    self.log.warning("raw archive at %s: skipped %r (not a Parquet file)", self.shown, key)
                    stats.skipped.append(key)
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, final)
                stats.pulled[source] += 1
                stats.pulled_bytes[source] += len(data)
        return stats


def _refused_key(message: str, prefix: str) -> str | None:
    """The key named by obstore's InvalidPathError, relative to the store's prefix."""
    match = re.search(r'Error parsing Path "([^"]*)"', message)
    if match is None:
        return None
    key = match.group(1)
    if prefix and key.startswith(prefix + "/"):
        key = key[len(prefix) + 1:]
    return key


def _resume_after(key: str) -> str | None:
    """A listing offset past `key` and every key sharing its first refused segment (`.`, `..`, empty):
    `<folder>/0`, which sorts after `.`, `/` and before digits and letters (batch and source names)."""
    segments = key.split("/")
    for index, segment in enumerate(segments):
        if segment in ("", ".", ".."):
            return "/".join([*segments[:index], "0"])
    return None


def _local_batches(raw_dir: Path) -> dict[str, set[str]]:
    """Source -> batch file names in the local raw folder (temporary files excluded)."""
    found: dict[str, set[str]] = {}
    for path in archive.batch_files(Path(raw_dir)):
        if batch_key(path.parent.name, path.name) is not None:
            found.setdefault(path.parent.name, set()).add(path.name)
    return found


# --------------------------------------------------------------------------------------------
# the crawl: upload as batches are written, pull before, push after


class _Uploader:
    """Uploads each batch `write_batch` renamed into place; after the first failure it stops trying
    (the store is down: the push at the end of the step retries once, and a later crawl after that)."""

    def __init__(self, store: RawStore) -> None:
        self.store = store
        self.down: str | None = None
        self.uploaded = 0

    def __call__(self, path: Path) -> None:
        if self.down is not None:
            return
        try:
            self.store.upload(path)
            self.uploaded += 1
        except Exception as exc:  # never fails the crawl: the batch is local and pushed later
            self.down = self.store.error("written", exc)
            self.store.log.warning("%s; the crawl goes on, its batches stay local and are pushed at its end",
                                   self.down)


@contextlib.contextmanager
def mirroring(settings: Any, *, partitions: Iterable[str] | None = None,
              log: logging.Logger | None = None) -> Iterator[SyncStats | None]:
    """Around a crawl step: pull what the crawl's plan reads (best effort), upload every batch as it is
    written, and push what is missing remotely at the end (also when the crawl failed or was stopped by
    a signal: the batches should leave a pod before it goes; a store that is down costs a few seconds
    of the grace period, bounded by `RETRY`). Yields the
    step's SyncStats (filled in on exit), or None when PULSE_RAW_URL is unset (nothing happens)."""
    store = RawStore.from_settings(settings, log)
    if store is None:
        yield None
        return
    raw_dir = Path(settings.raw_dir)
    stats = SyncStats()
    try:
        stats.add(store.pull(raw_dir, partitions=partitions))
    except RawStoreError as exc:  # the crawl only loses ETags and freshness: it re-fetches, costs quota
        store.log.warning("%s; the crawl plans from the local archive only", exc)
        stats.error = str(exc)
    uploader = _Uploader(store)
    try:
        with archive.after_write(raw_dir, uploader):
            yield stats
    finally:
        pushed = store.push(raw_dir)
        stats.add(pushed)
        stats.error = pushed.error or uploader.down or stats.error


def pull_for_core(settings: Any, seen_files: Iterable[str], log: logging.Logger | None = None) -> SyncStats | None:
    """Before core reads the archive: download what is missing locally. None when PULSE_RAW_URL is unset.

    When the store cannot be read, core goes on from the local cache only when that cache holds every
    batch the current core tables were built from (`seen_files`, core's bookkeeping) and there was
    such a build; otherwise RawStoreError: a pod with an empty or partial cache must not publish a
    partial warehouse over good data.
    """
    store = RawStore.from_settings(settings, log)
    if store is None:
        return None
    raw_dir = Path(settings.raw_dir)
    try:
        return store.pull(raw_dir)
    except RawStoreError as exc:
        local = _local_batches(raw_dir)
        held = {f"{source}/{name}" for source, names in local.items() for name in names}
        seen = {f"{Path(f).parent.name}/{Path(f).name}" for f in seen_files}
        lacking = seen - held
        if not seen or lacking or not held:
            why = ("no core build to compare the local cache with" if not seen else
                   f"the local cache lacks {len(lacking)} of the {len(seen)} batches the current core tables "
                   "were built from" if lacking else "the local cache is empty")
            raise RawStoreError(f"{exc}; {why}, so core is not rebuilt from {raw_dir} (the warehouse and the "
                                "published snapshot stay as they were)") from None
        store.log.warning("%s; the local cache holds every batch the current core tables were built from: "
                          "core is rebuilt from it (batches only in the store are read by a later run)", exc)
        stats = SyncStats(error=str(exc))
        return stats
