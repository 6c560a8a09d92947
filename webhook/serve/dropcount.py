"""netguard_connections_dropped_total{reason}: connections a worker closed before they delivered a
request (webhook/serve/worker.py). `deadline`: the handshake and request were not in within
--io-timeout; `shed`: dropped at the connection cap to make room. kube-apiserver causes neither,
so a rising count means a scanner, a misbehaving client or an attack on the webhook port.
"""

from __future__ import annotations

import os
from typing import Any

REASONS = ("deadline", "shed")


def dropped_counter() -> Any:
    """The counter, made in the worker after the fork (the metrics folder is set by then), every
    reason at 0 from the start so a rate() sees the first drop."""
    from prometheus_client import CollectorRegistry, Counter
    registry = None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else CollectorRegistry()
    counter = Counter("netguard_connections_dropped",
                      "Connections closed before they delivered a request, by reason.",
                      ["reason"], registry=registry)
    for reason in REASONS:
        counter.labels(reason)
    return counter
