"""Finished responses, kept per (snapshot token, path, query, link base) in a bounded LRU.

A document's bytes depend on nothing else: the snapshot says what it holds, the base where its links
point. Each entry keeps both representations (identity and gzip, the latter made on first demand)
with their own strong ETags, so a hit costs a dict lookup. The bound is on entries and on bytes:
random query strings only ever evict, they cannot grow memory.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

GZIP_MIN_BYTES = 256  # smaller bodies gain nothing from gzip (headers and framing dominate)
GZIP_LEVEL = 6


@dataclass
class Entry:
    """One document as sent: status, identity bytes and ETag; the gzip variant made lazily."""

    status: int
    body: bytes
    etag: str
    _gzip: tuple[bytes, str] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, status: int, body: bytes) -> Entry:
        return cls(status, body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"')

    @property
    def gzippable(self) -> bool:
        return len(self.body) >= GZIP_MIN_BYTES

    def gzipped(self) -> tuple[bytes, str]:
        """(gzip bytes, their ETag): another representation, so another strong ETag (RFC 9110 8.8.3)."""
        if self._gzip is None:
            self._gzip = (gzip.compress(self.body, GZIP_LEVEL, mtime=0), self.etag[:-1] + '-gzip"')
        return self._gzip

    @property
    def size(self) -> int:
        return len(self.body) + (len(self._gzip[0]) if self._gzip else 0)


class ResponseCache:
    """An LRU of `Entry`s bounded by count and by bytes (gzip variants included once made)."""

    def __init__(self, max_entries: int = 50_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Hashable, entry: Entry) -> Entry:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = entry
        self._bytes += entry.size
        self._evict()
        return entry

    def gzipped(self, key: Hashable, entry: Entry) -> tuple[bytes, str]:
        """The entry's gzip variant, its bytes counted against the bound the first time it is made."""
        made = entry._gzip is not None
        variant = entry.gzipped()
        if not made and self._entries.get(key) is entry:
            self._bytes += len(variant[0])
            self._evict()
        return variant

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _evict(self) -> None:
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
