"""Batched admission counts (webhook/serve/metrics.py): every call observed is counted exactly once,
by a scrape, by the flush thread, by a full queue, or at exit, and none is lost under threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.reviews import make_request
from webhook.serve.metrics import Metrics
from webhook.core.outcome import allow, violation

ROOT = Path(__file__).resolve().parent.parent.parent
ALLOWED = allow("ok", rule="labels")
DENIED = violation("loadbalancer-requires-default-deny", "no", "no")
REQ = make_request()


def allowed_count(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("netguard_admission_requests_total", {
        "stage": "validate", "kind": "Service", "operation": "CREATE", "decision": "allow",
        "rule": "labels", "dry_run": "false"})


def duration(registry: CollectorRegistry, sample: str) -> float | None:
    return registry.get_sample_value(f"netguard_admission_duration_seconds_{sample}", {"stage": "validate"})


def test_a_call_is_counted_by_the_next_flush_not_before():
    metrics = Metrics()
    metrics.observe("validate", REQ, ALLOWED, 0.002, 200)
    assert allowed_count(metrics.registry) is None  # queued only
    metrics.flush()
    assert allowed_count(metrics.registry) == 1
    assert duration(metrics.registry, "count") == 1
    assert duration(metrics.registry, "sum") == 0.002
    assert metrics.registry.get_sample_value("netguard_admission_duration_seconds_bucket",
                                             {"stage": "validate", "le": "0.005"}) == 1


def test_a_scrape_shows_every_call_observed_before_it():
    metrics = Metrics()
    for _ in range(3):
        metrics.observe("validate", REQ, ALLOWED, 0.001, 200)
    metrics.observe("validate", None, None, 0.001, 413)
    text = metrics.exposition().decode()
    assert 'netguard_admission_requests_total{decision="allow",dry_run="false",kind="Service",' \
           'operation="CREATE",rule="labels",stage="validate"} 3.0' in text
    assert 'netguard_admission_errors_total{stage="validate",status="413"} 1.0' in text
    assert 'netguard_admission_duration_seconds_count{stage="validate"} 4.0' in text


def test_the_flush_thread_writes_queued_calls_without_a_scrape():
    metrics = Metrics()
    metrics.start(interval=0.02)
    try:
        metrics.observe("validate", REQ, ALLOWED, 0.001, 200)
        deadline = time.monotonic() + 10
        while allowed_count(metrics.registry) != 1:
            assert time.monotonic() < deadline, "the flush thread never wrote the call"
            time.sleep(0.01)
    finally:
        metrics.stop()


def test_stop_flushes_what_is_left_and_ends_the_thread():
    metrics = Metrics()
    metrics.start(interval=3600)  # the thread would not flush again during this test
    metrics.observe("validate", REQ, DENIED, 0.001, 200)
    metrics.observe("validate", REQ, ALLOWED, 0.001, 200)
    metrics.stop()
    assert allowed_count(metrics.registry) == 1
    assert duration(metrics.registry, "count") == 2
    assert not any(t.name == "netguard-metrics-flush" and t.is_alive() for t in threading.enumerate())


def test_a_full_queue_is_flushed_by_the_caller():
    metrics = Metrics(max_pending=5)
    for _ in range(12):
        metrics.observe("validate", REQ, ALLOWED, 0.001, 200)
    assert allowed_count(metrics.registry) == 10  # flushed at the 5th and the 10th call
    metrics.flush()
    assert allowed_count(metrics.registry) == 12


def test_no_call_is_lost_or_counted_twice_while_threads_observe_and_flush():
    metrics = Metrics(max_pending=100)  # callers flush too, concurrently with the thread
    metrics.start(interval=0.001)
    # Switch threads as often as CPython allows, so a flush that could lose or repeat a call
    # racing with an append actually meets that race here.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _observe_and_flush_from_threads(metrics)
    finally:
        sys.setswitchinterval(previous)


def _observe_and_flush_from_threads(metrics: Metrics) -> None:
    threads, calls = 8, 3000

    def work() -> None:
        for _ in range(calls):
            metrics.observe("validate", REQ, ALLOWED, 0.25, 200)

    done = threading.Event()
    scrapes = []

    def scrape() -> None:  # a scrape flushes as well, concurrently with both
        while True:
            metrics.exposition()
            scrapes.append(1)
            if done.is_set():
                return

    workers = [threading.Thread(target=work) for _ in range(threads)]
    scraper = threading.Thread(target=scrape)
    for t in (*workers, scraper):
        t.start()
    for w in workers:
        w.join()
    done.set()
    scraper.join()
    metrics.stop()
    assert scrapes
    assert allowed_count(metrics.registry) == threads * calls
    assert duration(metrics.registry, "count") == threads * calls
    assert duration(metrics.registry, "sum") == 0.25 * threads * calls  # 0.25 adds up exactly


def test_a_worker_that_exits_normally_writes_its_queued_calls(tmp_path):
    # A served worker runs in multiprocess mode and leaves through sys.exit on SIGTERM: its
    # last calls, still queued, must reach its file through the atexit flush.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.reviews import make_request
        from webhook.serve.metrics import Metrics
        from webhook.core.outcome import allow
        metrics = Metrics()
        metrics.start(interval=3600)
        for _ in range(7):
            metrics.observe("validate", make_request(), allow("ok", rule="labels"), 0.001, 200)
        sys.exit(0)
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert allowed_count(registry) == 7
    assert duration(registry, "count") == 7


# --------------------------------------------------------------------------- batched histogram


def _histogram_samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in registry.collect() for s in metric.samples
            if s.name.startswith("h_") and not s.name.endswith("_created")}


def test_observe_many_counts_as_observe_does_one_amount_at_a_time():
    from prometheus_client import Histogram

    from webhook.serve.metrics import DURATION_BUCKETS, observe_many

    # Each bound exactly (an amount equal to a bound counts in that bucket), between bounds,
    # below the first, past the last (only +Inf), zero, and a repeated amount.
    amounts = [0.0, 0.001, *DURATION_BUCKETS, 0.0050001, 0.3, 0.3, 2.6, 100.0]
    one, batch = CollectorRegistry(), CollectorRegistry()
    single = Histogram("h", "h", ["stage"], buckets=DURATION_BUCKETS, registry=one).labels("validate")
    for amount in amounts:
        single.observe(amount)
    observe_many(Histogram("h", "h", ["stage"], buckets=DURATION_BUCKETS, registry=batch).labels("validate"),
                 amounts)
    expected, got = _histogram_samples(one), _histogram_samples(batch)
    assert got.keys() == expected.keys() and len(got) == len(DURATION_BUCKETS) + 3  # +Inf, count, sum
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_observe_many_falls_back_to_observe_for_a_histogram_laid_out_otherwise():
    from webhook.serve.metrics import observe_many

    class Other:  # no _upper_bounds / _buckets / _sum
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, amount: float) -> None:
            self.seen.append(amount)

    other = Other()
    observe_many(other, [0.1, 0.2, 0.1])
    assert other.seen == [0.1, 0.2, 0.1]


def test_a_flush_counts_durations_as_observe_does_one_amount_at_a_time():
    from prometheus_client import Histogram

    from webhook.serve.metrics import DURATION_BUCKETS

    # Each bound exactly (an amount equal to a bound counts in that bucket), between bounds,
    # below the first, past the last (only +Inf), zero, and a repeated amount.
    amounts = [0.0, 0.001, *DURATION_BUCKETS, 0.0050001, 0.3, 0.3, 2.6, 100.0]
    one = CollectorRegistry()
    single = Histogram("netguard_admission_duration_seconds", "h", ["stage"], buckets=DURATION_BUCKETS,
                       registry=one).labels("validate")
    for amount in amounts:
        single.observe(amount)
    metrics = Metrics()
    for amount in amounts:
        metrics.observe("validate", REQ, ALLOWED, amount, 200)
    metrics.flush()

    def samples(registry: CollectorRegistry) -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for metric in registry.collect()
                for s in metric.samples if s.name.startswith("netguard_admission_duration_seconds_")
                and not s.name.endswith("_created") and s.labels.get("stage") == "validate"}

    expected, got = samples(one), samples(metrics.registry)
    assert got.keys() == expected.keys() and len(got) == len(DURATION_BUCKETS) + 3  # +Inf, count, sum
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_a_flush_counts_each_stage_duration_in_its_own_histogram():
    metrics = Metrics()
    for seconds in (0.001, 0.01, 0.2):
        metrics.observe("validate", REQ, ALLOWED, seconds, 200)
    metrics.observe("mutate", REQ, ALLOWED, 3.0, 200)
    metrics.flush()
    bucket = "netguard_admission_duration_seconds_bucket"
    value = metrics.registry.get_sample_value
    assert [value(bucket, {"stage": "validate", "le": le}) for le in ("0.005", "0.025", "0.1", "0.5", "+Inf")] \
        == [1, 2, 2, 3, 3]
    assert value(bucket, {"stage": "mutate", "le": "2.5"}) == 0
    assert value(bucket, {"stage": "mutate", "le": "+Inf"}) == 1
    assert duration(metrics.registry, "sum") == pytest.approx(0.211)
