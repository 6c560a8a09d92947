"""Bounded caches of values anyone can make again: the one policy they share.

A cache here holds what is worked out on the hot path from immutable inputs (a view, a spec, a
configuration), so a lost entry only costs the work of making it again. At its limit a cache
starts over rather than evicting one by one: a plain dict stays the cheapest thing to read on
every admission call, and the next calls fill it back with what is in use. Dict reads and
writes are atomic under the GIL, so threads that race here only store equal values twice.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store `value` under `key`, starting the cache over when it holds `limit` entries."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value
