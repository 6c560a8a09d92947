"""Equal values stored once in the live inventory's index (webhook/inventory/cluster.py).

Namespaces stamped from one template (a Helm chart, a tenant operator) hold equal policy
summaries, equal LoadBalancer name sets and equal policy maps: one instance of each, shared by
every view that holds it, is what keeps 100,000 namespaces within a worker's memory
(bench/inventory_memory.py).
"""

from __future__ import annotations

from typing import Any


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
