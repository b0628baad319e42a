"""The tile cache on its own: bounded by bytes (least recently used goes first), expiry of
clock-dependent layers, invalidation by predicate, and no storing while a change may be missed."""

from __future__ import annotations

from server.tiles.cache import ENTRY_OVERHEAD, TileCache


def build(payload: bytes):
    return lambda: payload


def test_the_cache_stays_within_its_byte_budget_evicting_the_least_recently_used():
    cache = TileCache(max_bytes=3 * (1000 + ENTRY_OVERHEAD))
    cache.enabled = True
    for key in ("a", "b", "c"):
        cache.get_or_build(key, build(key.encode() * 1000), None)
    assert cache.get_or_build("a", build(b"new"), None)[1] is True  # a is now the most recent
    cache.get_or_build("d", build(b"d" * 1000), None)
    assert len(cache) == 3 and cache.bytes <= cache.max_bytes
    entry, cached = cache.get_or_build("a", build(b"x"), None)
    assert (entry.raw, cached) == (b"a" * 1000, True)
    assert cache.get_or_build("b", build(b"b2"), None)[1] is False  # b was the least recently used


def test_gzip_bodies_count_in_the_budget():
    cache = TileCache(max_bytes=10_000)
    cache.enabled = True
    entry, _ = cache.get_or_build("k", build(bytes(range(256)) * 10), None)
    before = cache.bytes
    body = cache.account_gzip("k", entry)
    assert cache.bytes == before + len(body)
    assert cache.account_gzip("k", entry) is body and cache.bytes == before + len(body)


def test_entries_of_clock_dependent_layers_expire():
    cache = TileCache(max_bytes=10_000)
    cache.enabled = True
    cache.get_or_build("k", build(b"old"), max_age=0)
    entry, cached = cache.get_or_build("k", build(b"new"), max_age=0)
    assert (entry.raw, cached) == (b"new", False)


def test_invalidation_drops_matching_entries_only():
    cache = TileCache(max_bytes=10_000)
    cache.enabled = True
    for key in (("incidents", 1), ("incidents", 2), ("grids", 1)):
        cache.get_or_build(key, build(repr(key).encode()), None)
    assert cache.invalidate(lambda key: key[1] == 1) == 2
    assert len(cache) == 1
    assert cache.get_or_build(("incidents", 2), build(b""), None)[1] is True


def test_nothing_is_stored_while_disabled_or_when_a_change_lands_during_the_build():
    cache = TileCache(max_bytes=10_000)
    cache.get_or_build("k", build(b"x"), None)
    assert len(cache) == 0  # the change listener is not listening yet
    cache.enabled = True

    def build_during_a_change() -> bytes:
        cache.invalidate(lambda key: False)
        return b"maybe stale"

    cache.get_or_build("k", build_during_a_change, None)
    assert len(cache) == 0
