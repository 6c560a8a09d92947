"""Prometheus metrics, correct across gunicorn workers.

`netguard serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before the workers fork (and
before prometheus_client is imported: it picks its storage at import); every
worker then writes its samples there and `/metrics`, whichever worker answers it, aggregates all
of them (https://prometheus.github.io/client_python/multiprocess/). Without that variable (tests
with one process) the metrics live in a registry of their own.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from webhook.outcome import Decision
from webhook.review import AdmissionRequest

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The apiserver's own webhook latency buckets: our figures line up with apiserver_admission_*.
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REVIEWED_KINDS = ("Service", "NetworkPolicy")


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self) -> None:
        # In multiprocess mode samples go to files, not to a registry; registering them in one
        # would only double them at scrape time.
        self._registry = None if multiprocess_enabled() else CollectorRegistry()
        registry = self._registry
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.requests = Counter(
            "netguard_admission_requests", "Admission calls answered, by outcome.",
            ["stage", "kind", "operation", "decision", "rule", "dry_run"], registry=registry)
        self.errors = Counter(
            "netguard_admission_errors", "Admission calls refused as malformed, by HTTP status.",
            ["stage", "status"], registry=registry)
        self.duration = Histogram(
            "netguard_admission_duration_seconds", "Time to answer an admission call.",
            ["stage"], buckets=DURATION_BUCKETS, registry=registry)
        self.inventory_ready = Gauge(
            "netguard_inventory_ready", "1 when every live worker has cluster state, else 0.",
            multiprocess_mode="livemin", registry=registry)
        self.watch_restarts = Counter(
            "netguard_watch_restarts", "Watches of the API restarted (errors, 410 Gone, timeouts).",
            registry=registry)
        self.live_reads = Counter(
            "netguard_live_reads", "Live reads made before a denial; overturned when the cache lagged.",
            ["result"], registry=registry)
        self.violations = Gauge(
            "netguard_violations", "Current violations found by the periodic scan, by rule.",
            ["rule"], multiprocess_mode="livemax", registry=registry)

    def observe(self, stage: str, req: AdmissionRequest | None, decision: Decision | None,
                seconds: float, status: int) -> None:
        self._child(self.duration, (stage,)).observe(seconds)
        if req is None or decision is None:
            self._child(self.errors, (stage, str(status))).inc()
            return
        # Only kinds netguard reviews become label values: a forged kind must not mint series.
        kind = req.kind if req.kind in REVIEWED_KINDS else "other"
        self._child(self.requests, (stage, kind, req.operation, decision.verdict, decision.rule,
                                    "true" if req.dry_run else "false")).inc()

    def _child(self, metric: Any, values: tuple[str, ...]) -> Any:
        """`metric.labels(*values)`, remembered: prometheus_client validates the values and takes
        a lock on every call, a few µs on each admission call. A dict read is atomic under the GIL;
        two threads that miss at once both get the same child from `labels`."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def live_read(self, overturned: bool) -> None:
        self._child(self.live_reads, ("overturned" if overturned else "confirmed",)).inc()

    def set_violations(self, counts: Mapping[str, int]) -> None:
        for rule, count in counts.items():
            self.violations.labels(rule).set(count)

    def exposition(self) -> bytes:
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
