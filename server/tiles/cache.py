"""A bounded in-process tile cache (LRU by bytes) with single-flight builds and invalidation by
predicate. Thread-safe; one per worker process.

Freshness: ``invalidate`` bumps a generation number; a build that saw the generation change while
it ran is served but not stored, since it may have read the database before the change it missed.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

# Bytes counted per entry beside its payload (key, dict slots, etag).
ENTRY_OVERHEAD = 256


@dataclass
class Entry:
    raw: bytes
    etag: str  # strong, unquoted
    expires_at: float | None  # monotonic seconds; None = until invalidated
    _gzipped: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, raw: bytes, max_age: int | None) -> Entry:
        etag = hashlib.blake2b(raw, digest_size=16).hexdigest()
        return cls(raw, etag, None if max_age is None else time.monotonic() + max_age)

    @property
    def size(self) -> int:
        return len(self.raw) + len(self._gzipped or b"") + ENTRY_OVERHEAD

    def fresh(self) -> bool:
        return self.expires_at is None or time.monotonic() < self.expires_at


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: Entry | None = None
        self.error: BaseException | None = None


class TileCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._bytes = 0
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.generation = 0
        # False while the change listener is not listening: nothing may be stored then.
        self.enabled = False
        self.builds = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get_or_build(
        self, key: Hashable, build: Callable[[], bytes], max_age: int | None
    ) -> tuple[Entry, bool]:
        """The entry and whether it came from the cache (or from another request's build)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.fresh():
                self._entries.move_to_end(key)
                return entry, True
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                generation = self.generation
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.entry, True
        try:
            self.builds += 1
            flight.entry = Entry.of(build(), max_age)
            with self._lock:
                if self.enabled and generation == self.generation:
                    self._store(key, flight.entry)
            return flight.entry, False
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _store(self, key: Hashable, entry: Entry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def account_gzip(self, key: Hashable, entry: Entry) -> bytes:
        """The gzipped body, computed once and counted in the cache's size."""
        if entry._gzipped is not None:
            return entry._gzipped
        body = gzip.compress(entry.raw, compresslevel=5, mtime=0)
        with self._lock:
            if entry._gzipped is None:
                entry._gzipped = body
                if self._entries.get(key) is entry:
                    self._bytes += len(body)
        return entry._gzipped

    def invalidate(self, matches: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key matches; returns how many."""
        with self._lock:
            self.generation += 1
            doomed = [key for key in self._entries if matches(key)]
            for key in doomed:
                self._bytes -= self._entries.pop(key).size
        return len(doomed)

    def clear(self) -> None:
        self.invalidate(lambda key: True)
