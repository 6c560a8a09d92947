"""Prometheus metrics, correct across gunicorn workers.

`netguard serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before the workers fork (and
before prometheus_client is imported: it picks its storage at import); every
worker then writes its samples there and `/metrics`, whichever worker answers it, aggregates all
of them (https://prometheus.github.io/client_python/multiprocess/). Without that variable (tests
with one process) the metrics live in a registry of their own.

Admission calls are counted in batches. `observe` only appends the call's labels and duration to
a queue (one atomic deque append, no lock); `flush` moves what has queued into prometheus_client,
one `inc(n)` per label set. A worker flushes every FLUSH_SECONDS from a thread that `start`
starts, before answering /metrics, when the queue reaches `max_pending`, and at exit. So a scrape
sees the answering worker's calls up to that moment and every other worker's as of at most
FLUSH_SECONDS ago; a worker killed outright (SIGKILL, OOM) loses at most that last second of
counts, as any in-memory Prometheus client loses all of its counts. Why: each prometheus_client
write takes its process-wide lock and calls getpid(); three of them on every call cost 10-15 µs
of CPU under load (bench/README.md, Profile), more than the decision, and in a batch, with the
caches warm, the same writes cost a fraction of that.
"""

from __future__ import annotations

import bisect
import collections
import glob
import math
import os
import platform
import threading
from pathlib import Path
from typing import Any, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from webhook.core.outcome import Decision
from webhook.core.request import AdmissionRequest
from webhook.serve.admission import STAGES
from webhook.serve.background import PeriodicFlush, take_queued
from webhook.serve.certexpiry import CertificateExpiry
from webhook.serve.version import version

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The buckets of the apiserver's apiserver_admission_webhook_admission_duration_seconds up to the
# webhooks' timeoutSeconds (10; it has 25 too), so the two line up, and 5 s: the threshold of the
# p99 alert (manifests/monitoring/prometheusrule.yaml) must lie below the highest finite bound,
# the most histogram_quantile ever reports.
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REVIEWED_KINDS = ("Service", "NetworkPolicy")
FLUSH_SECONDS = 1.0
# Flushed by the caller past this many queued calls, so the queue stays small (a few MB at most)
# even where no flush thread runs (tests, benchmarks in-process) or when it falls behind.
MAX_PENDING = 20_000


def observe_many(histogram: Any, amounts: list[float]) -> None:
    """`histogram.observe(a)` for each of `amounts` (a Histogram with its labels applied), as one
    write per bucket that got any and one to the sum, where observe makes two writes per amount.

    prometheus_client has no public call for a batch, so this adds to the child's own bucket and
    sum values (`_upper_bounds`, `_buckets`, `_sum`, unchanged from 0.8 to 0.26). Should a
    version lay them out differently, it falls back to observe, one amount at a time.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if not (isinstance(bounds, list) and isinstance(buckets, list) and total is not None
            and len(bounds) == len(buckets) and bounds and bounds[-1] == float("inf")):
        for amount in amounts:
            histogram.observe(amount)
        return
    per_bucket = [0] * len(bounds)
    for amount in amounts:
        # observe counts an amount in the first bucket whose bound is >= it; the last is +Inf.
        per_bucket[bisect.bisect_left(bounds, amount)] += 1
    total.inc(math.fsum(amounts))
    for bucket, n in zip(buckets, per_bucket):
        if n:
            bucket.inc(n)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        # (stage, seconds, counter, label values) of each admission call not yet flushed.
        self._pending: collections.deque[tuple[str, float, Any, tuple[str, ...]]] = collections.deque()
        self._max_pending = max_pending
        self._flush_lock = threading.Lock()  # one flush at a time: each call is counted once
        self._flusher = PeriodicFlush(self.flush, "netguard-metrics-flush",
                                      "could not write metrics; the calls queued until now are not counted")
        # In multiprocess mode samples go to files, not to a registry (`registry` is None then);
        # registering them in one would only double them at scrape time.
        self.registry = None if multiprocess_enabled() else CollectorRegistry()
        registry = self.registry
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.requests = Counter(
            "netguard_admission_requests", "Admission calls answered, by outcome.",
            ["stage", "kind", "operation", "decision", "rule", "dry_run"], registry=registry)
        self.errors = Counter(
            "netguard_admission_errors", "Admission calls refused as malformed, by HTTP status.",
            ["stage", "status"], registry=registry)
        self.build_info = Gauge(
            "netguard_build_info", "1, labelled with netguard's version and the Python that runs it.",
            ["version", "python"], multiprocess_mode="max", registry=registry)
        self.build_info.labels(version(), platform.python_version()).set(1)
        self.audit_dropped = Counter(
            "netguard_audit_dropped", "Audit lines dropped because stdout did not take them (a stalled log pipe).",
            registry=registry)
        self.internal_errors = Counter(
            "netguard_internal_errors", "Admission calls netguard failed on itself (answered HTTP 500).",
            ["stage"], registry=registry)
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
            "netguard_live_reads", "Live reads confirming an answer that rested on cached state; overturned when the cache lagged.",
            ["result"], registry=registry)
        self.violations = Gauge(
            "netguard_violations", "Current violations found by the periodic scan, by rule.",
            ["rule"], multiprocess_mode="livemax", registry=registry)
        # The latest completed scan of any live worker (each worker scans its own inventory).
        self.last_scan = Gauge(
            "netguard_last_scan_timestamp_seconds",
            "When the periodic violation scan last completed, as Unix seconds (0: not yet).",
            multiprocess_mode="livemax", registry=registry)
        # Read from the files at scrape time (webhook/serve/certexpiry.py), not stored per worker.
        self._collectors: list[Any] = []
        # The series alerts and the dashboard read exist from the start, at 0: a series born with
        # its first increment hides that increment from rate() and increase().
        for stage in STAGES:
            self.internal_errors.labels(stage)
            self.duration.labels(stage)
        for result in ("confirmed", "overturned"):
            self.live_reads.labels(result)

    def observe(self, stage: str, req: AdmissionRequest | None, decision: Decision | None,
                seconds: float, status: int) -> None:
        """Queue one admission call's counts; `flush` writes them (see the module docstring)."""
        if status >= 500:
            self._pending.append((stage, seconds, self.internal_errors, (stage,)))
        elif req is None or decision is None:
            self._pending.append((stage, seconds, self.errors, (stage, str(status))))
        else:
            # Only kinds netguard reviews become label values: a forged kind must not mint series.
            kind = req.kind if req.kind in REVIEWED_KINDS else "other"
            self._pending.append((stage, seconds, self.requests, (
                stage, kind, req.operation, decision.verdict, decision.rule,
                "true" if req.dry_run else "false")))
        if len(self._pending) >= self._max_pending:
            self.flush()

    def flush(self) -> None:
        """Write the queued calls' counts into prometheus_client: one inc(n) per label set."""
        with self._flush_lock:
            counts: collections.Counter[tuple[Any, tuple[str, ...]]] = collections.Counter()
            durations: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
            for stage, seconds, counter, values in take_queued(self._pending):
                durations[stage].append(seconds)
                counts[(counter, values)] += 1
            for stage, amounts in durations.items():
                observe_many(self._child(self.duration, (stage,)), amounts)
            for (counter, values), n in counts.items():
                self._child(counter, values).inc(n)

    def start(self, interval: float = FLUSH_SECONDS) -> None:
        """Flush every `interval` seconds from a thread, and once more at exit."""
        self._flusher.start(interval)

    def stop(self) -> None:
        """Stop the flush thread and flush what is left."""
        self._flusher.stop()
        self.flush()

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

    def watch_certificates(self, cert_dir: Path) -> None:
        """Report netguard_certificate_expiry_timestamp_seconds from the files in `cert_dir`."""
        collector = CertificateExpiry(cert_dir)
        self._collectors.append(collector)
        if self.registry is not None:
            self.registry.register(collector)

    def exposition(self) -> bytes:
        self.flush()  # this worker's calls up to now; other workers flush on their own
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        WorkerFiles(registry, os.environ[MULTIPROC_ENV])
        for collector in self._collectors:
            registry.register(collector)
        for attempt in range(READ_ATTEMPTS):
            try:
                return generate_latest(registry)
            except FileNotFoundError:  # a dead worker's file, removed between listing and reading
                if attempt == READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")


READ_ATTEMPTS = 3


class WorkerFiles(multiprocess.MultiProcessCollector):
    """prometheus_client's multiprocess collector, minus the files a worker is creating right
    then: its MmapedDict opens a file (empty) before it sizes it, and the reader fails on an empty
    file (struct.error), so /metrics answered 500 while a worker booted. An empty file holds no
    sample yet."""

    def __init__(self, registry: CollectorRegistry, path: str) -> None:
        self._folder = path
        super().__init__(registry, path)

    def collect(self) -> Any:
        return self.merge([f for f in glob.glob(os.path.join(self._folder, "*.db")) if _holds_data(f)],
                          accumulate=True)


def _holds_data(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # removed meanwhile (a dead worker's live gauges)
        return False
