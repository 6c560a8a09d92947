"""Equal values stored once in the live inventory's index (webhook/inventory/cluster.py).

Namespaces stamped from one template (a Helm chart, a tenant operator) hold equal policy
summaries, equal LoadBalancer name sets and equal policy maps: one instance of each, shared by
every view that holds it, is what keeps 100,000 namespaces within a worker's memory
(bench/inventory_memory.py).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from typing import Any, Mapping

import orjson

from webhook.core.view import PolicySummary


class Shared:
    """Hands out one instance per distinct value, so that equal summaries, name sets and policy
    maps are stored once: namespaces stamped from one template hold the same policies.

    Cleared when it grows past `limit` (values deleted from the cluster are never evicted one by
    one, so this bounds what it can pin); views keep their instances, sharing starts afresh.
    """

    def __init__(self, limit: int) -> None:
        self._values: dict[Any, Any] = {}
        self._limit = limit

    def __call__(self, value: Any, key: Any = None) -> Any:
        key = value if key is None else key
        found = self._values.get(key)
        if found is not None:
            return found
        if len(self._values) >= self._limit:
            self._values = {}
        self._values[key] = value
        return value

    def get(self, key: Any) -> Any:
        """The instance stored under `key`, or None."""
        return self._values.get(key)


def spec_key(obj: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """(name, digest of the canonical JSON of `spec`): equal for two objects exactly when their
    names and specs are equal (keys sorted; decoded JSON has no duplicate keys). None when the
    spec cannot be written as JSON (an integer past 64 bits): such an object is not memoised."""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    try:
        canonical = orjson.dumps(obj.get("spec"), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return None
    return str(name or ""), hashlib.blake2b(canonical, digest_size=16).digest()


class PolicySummaries:
    """A NetworkPolicy's summary (PolicySummary.of), worked out once per distinct (name, spec):
    namespaces stamped from one template repeat their policies, and a list of 300,000 of them
    spent most of its time summarising the same few specs. The spec is all a summary reads
    besides the name; `spec_key` identifies it exactly and keeps the memo small. Equal summaries
    of different specs are shared too, with their names interned."""

    def __init__(self) -> None:
        self._shared = Shared(65_536)
        self._by_spec = Shared(16_384)

    def __call__(self, obj: Mapping[str, Any]) -> PolicySummary:
        key = spec_key(obj)
        if key is not None:
            found = self._by_spec.get(key)
            if found is not None:
                return found
        summary = PolicySummary.of(obj)
        summary = self._shared(replace(summary, name=sys.intern(summary.name)))
        return summary if key is None else self._by_spec(summary, key=key)
