"""Loaded by every process of a `netguard serve` that bench/threadtime.py starts (PYTHONPATH).

Wraps the steps of an admission call to add up the calling thread's CPU time
(time.thread_time_ns) per step, and writes the averages to $NETGUARD_THREADTIME_DIR/<pid>
every 2 s. Measuring only; each wrapper adds two clock reads (about 1 µs under load).
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time

OUT = os.environ.get("NETGUARD_THREADTIME_DIR")

if OUT:
    # The serving layer's modules (webhook/serve/): a rename there must be followed here, or this
    # measures nothing (tests/test_bench_tools.py checks every name below exists).
    import webhook.serve.admission as admission
    import webhook.serve.auditlog as audit
    import webhook.serve.endpoints as endpoints
    import webhook.serve.metrics as metrics

    total: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    clock = time.thread_time_ns

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            started = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                total[name] += clock() - started
                calls[name] += 1
        return wrapper

    endpoints.AdmissionEndpoints.review = timed("whole call (review)", endpoints.AdmissionEndpoints.review)
    endpoints.read_review = timed("read body + decode", endpoints.read_review)
    endpoints.parse_review = timed("parse_review", endpoints.parse_review)
    admission.Admission.evaluate = timed("admission.evaluate", admission.Admission.evaluate)
    endpoints.response_body = timed("build + encode the response", endpoints.response_body)
    audit.AuditLog.write = timed("audit log (whole write)", audit.AuditLog.write)
    audit.encode = timed("audit: encode the line", audit.encode)
    metrics.Metrics.observe = timed("metrics.observe", metrics.Metrics.observe)
    # The writer and flush threads work in batches: their time is shown per admission call.
    metrics.Metrics.flush = timed("metrics flush (batch)", metrics.Metrics.flush)
    audit.AuditLog.flush = timed("audit flush (batch)", audit.AuditLog.flush)
    SHARED = ("metrics flush (batch)", "audit flush (batch)")

    def dump() -> None:
        if calls:
            per_call = calls["whole call (review)"] or 1
            lines = [f"{name}\t{total[name] / calls[name] / 1000:.1f}\t{calls[name]}" for name in calls
                     if name not in SHARED]
            lines += [f"{name.replace(' (batch)', '')}, per call\t{total[name] / per_call / 1000:.1f}\t{per_call}"
                      for name in SHARED if calls[name]]
            with open(os.path.join(OUT, str(os.getpid())), "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")

    def every_two_seconds() -> None:
        while True:
            time.sleep(2)
            dump()

    def start_dumping() -> None:  # threads do not survive a fork: one per gunicorn worker
        threading.Thread(target=every_two_seconds, name="threadtime", daemon=True).start()

    os.register_at_fork(after_in_child=start_dumping)
    atexit.register(dump)
