"""JSON on the hot path: orjson when it can, the standard library when it cannot.

Every admission call decodes a 2-3 KB review and encodes two documents (the response, the audit
line). orjson does the three in about 7 µs where `json` takes about 35 µs (bench/README.md,
Profile), a tenth of netguard's own time per request.

The standard library stays the reference for what netguard accepts and writes:

- `loads`: what orjson refuses (a lone surrogate escape, NaN, nesting past 1024 levels) is
  handed to `json.loads`, so netguard accepts and refuses exactly the inputs it did before, with
  the standard library's error messages (and its RecursionError, which the HTTP layer answers as
  "nested too deeply"). One difference in values: an integer past 64 bits decodes as a float,
  where json keeps an int; no field netguard reads can hold such a number validly either way.
- `dumps`: what orjson cannot encode (a string holding a lone surrogate, which only a forged
  request carries; a key that is not a string) is encoded by `json.dumps` with ASCII escapes,
  which any stream can carry.

Pure: no I/O. Output is compact UTF-8 bytes either way.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import orjson


def loads(data: bytes | str) -> Any:
    """Decode JSON; raises ValueError (or RecursionError) exactly where `json.loads` would."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Encode compact JSON as bytes; `default` converts what JSON has no type for."""
    try:
        return orjson.dumps(value, default=default)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), default=default).encode()
