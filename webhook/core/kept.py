"""Bounded caches of values anyone can make again: the one policy they share.

A cache here holds what is worked out on the hot path from immutable inputs (a view, a spec, a
configuration), so a lost entry only costs the work of making it again. At its limit a cache
starts over rather than evicting one by one: a plain dict stays the cheapest thing to read on
every admission call, and the next calls fill it back with what is in use. Dict reads and
writes are atomic under the GIL, so threads that race here only store equal values twice.
`exact_json` makes a key of an object's parts where a decision is kept by what it read of them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

K = TypeVar("K")
V = TypeVar("V")


def keep(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store `value` under `key`, starting the cache over when it holds `limit` entries."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


# Only JSON's own types make a key: a date, a dataclass or a str subclass (from YAML or Python,
# for `netguard check`) raises instead of encoding like a plain string. (A tuple encodes like a
# list and an Enum like its value: the decisions kept by these keys read them alike.)
_EXACT_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def exact_json(value: Any, limit: int) -> bytes | None:
    """`value` as JSON, to key a cache by: None when it holds what JSON has no type for (or a
    lone surrogate), or when its JSON is longer than `limit` bytes (worked out each time, not kept)."""
    try:
        data = orjson.dumps(value, option=_EXACT_JSON)
    except TypeError:  # orjson.JSONEncodeError
        return None
    return data if len(data) <= limit else None
