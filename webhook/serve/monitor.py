"""A per-worker background loop that keeps the gauges current and rescans for violations.

Started by the app factory, after the fork. Every `scanIntervalSeconds` it publishes the
inventory's readiness, the watch restarts since the last round, the violations the
inventory's views show (webhook/core/violations.py `scan_views`) as the netguard_violations gauge
(by rule name: a rule's findings count under it), and when that scan completed
(netguard_last_scan_timestamp_seconds; not while the inventory is not ready).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from webhook.core.registry import RULE_OF_FINDING, VIEW_SCANNED
from webhook.core.settings import Settings
from webhook.core.violations import scan_views
from webhook.inventory.protocol import Inventory
from webhook.serve.metrics import Metrics

log = logging.getLogger("netguard.monitor")


class Monitor:
    def __init__(self, inventory: Inventory, settings: Settings, metrics: Metrics) -> None:
        self._inventory = inventory
        self._settings = settings
        self._metrics = metrics
        self._restarts_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netguard-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def round(self) -> dict[str, int]:
        """One pass: gauges, restart counter, violations. Returns the violation counts."""
        ready = self._inventory.ready()
        self._metrics.inventory_ready.set(1 if ready else 0)
        restarts = getattr(self._inventory, "watch_restarts", 0)
        if restarts > self._restarts_seen:
            self._metrics.watch_restarts.inc(restarts - self._restarts_seen)
            self._restarts_seen = restarts
        if not ready:
            return {}
        counts = Counter(RULE_OF_FINDING.get(v.rule, v.rule)
                         for v in scan_views(self._inventory.views(), self._settings))
        # One series per rule the scan checks, 0 included, and none for anything else.
        found = {rule: counts.get(rule, 0) for rule in VIEW_SCANNED}
        self._metrics.set_violations(found)
        self._metrics.last_scan.set(time.time())
        return found

    def _run(self) -> None:
        while True:
            try:
                self.round()
            except Exception:  # the loop must outlive any one bad round
                log.exception("monitor round failed")
            if self._stop.wait(self._settings.scan_interval_seconds):
                return
