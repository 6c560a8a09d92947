"""A paced (open-loop) HTTPS load generator: a fixed request rate, latency from the schedule.

wrk is closed-loop: a slow answer delays the next request, so its percentiles hide queueing
("coordinated omission"), and Debian has no wrk2. Here request i is due at t0 + i/rate whatever
happened before; a pool of threads, each with its own keep-alive TLS connection, takes the due
requests in order. Latency is measured from the *scheduled* time to the end of the response, so a
request that waits because every connection is busy (server slow) is charged for the wait.

Bounded: it schedules exactly rate x seconds requests, and every socket has a timeout.
Certificates are not verified (load only; the bench checks answers once with verification).

    python bench/paced.py --target 127.0.0.1:8443 --path /validate --body FILE \
        --rate 500 --seconds 20 --connections 16 [--header 'K: V'] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import threading
import time
from typing import Any


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of a sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-p * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


class Paced:
    def __init__(self, host: str, port: int, path: str, body: bytes, headers: dict[str, str],
                 rate: float, seconds: float, connections: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.path, self.body = host, port, path, body
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, */*",
                        **headers}
        self.rate = rate
        self.total = int(rate * seconds)
        self.connections = connections
        self.timeout = timeout
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self._lock = threading.Lock()
        self._next = 0
        self.latencies: list[float] = []   # seconds, scheduled time -> response read
        self.service: list[float] = []     # seconds, request sent -> response read
        self.late_starts = 0               # sent > 1 ms after the schedule
        self.errors = 0
        self.status_errors = 0
        self.t0 = 0.0

    def request_for(self, i: int) -> tuple[str, bytes]:
        """Path and body of request i (subclasses vary them: bench/soak.py)."""
        return self.path, self.body

    def accept(self, i: int, status: int, data: bytes) -> bool:
        """Whether the answer to request i is right; a wrong one counts as a status error."""
        return status == 200

    def _set_t0(self) -> None:
        self.t0 = time.perf_counter() + 0.01

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.total:
                return None
            i = self._next
            self._next += 1
            return i

    def _connect(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=self.timeout)
        conn.connect()
        return conn

    def _worker(self) -> None:
        # Connect (TCP + TLS) before the schedule starts: a handshake storm at t0 would be
        # charged to the first requests and, in a short run, to the p99. One GET /healthz on it:
        # a gthread worker holds a pool thread on a new connection until its first request, so
        # 16 silent connections can occupy every thread and stall the next handshakes.
        conn: http.client.HTTPSConnection | None = None
        try:
            conn = self._connect()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
        try:
            self._ready.wait(timeout=self.timeout + 5)
        except threading.BrokenBarrierError:
            pass
        lat: list[float] = []
        svc: list[float] = []
        late = errors = status_errors = 0
        while True:
            i = self._take()
            if i is None:
                break
            due = self.t0 + i / self.rate
            path, body = self.request_for(i)
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                if conn is None:
                    conn = self._connect()
                sent = time.perf_counter()
                if sent - due > 0.001:
                    late += 1
                conn.request("POST", path, body=body, headers=self.headers)
                reply = conn.getresponse()
                data = reply.read()
                end = time.perf_counter()
                if not self.accept(i, reply.status, data):
                    status_errors += 1
                lat.append(end - due)
                svc.append(end - sent)
                if reply.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with self._lock:
            self.latencies.extend(lat)
            self.service.extend(svc)
            self.late_starts += late
            self.errors += errors
            self.status_errors += status_errors

    def run(self) -> dict[str, Any]:
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.connections)]
        # Every worker has connected when the barrier opens; the action sets the schedule's origin.
        self._ready = threading.Barrier(self.connections, action=self._set_t0)
        for t in threads:
            t.start()
        limit = time.perf_counter() + 2 * self.timeout + 10 + self.total / self.rate + 30
        for t in threads:
            t.join(max(0.1, limit - time.perf_counter()))
        elapsed = time.perf_counter() - self.t0
        lat = sorted(self.latencies)
        svc = sorted(self.service)
        us = lambda v: round(v * 1e6)  # noqa: E731
        return {
            "scheduled": self.total,
            "requests": len(lat),
            "errors": self.errors,
            "status_errors": self.status_errors,
            "late_starts": self.late_starts,
            "rate": self.rate,
            "achieved_rps": round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
            "duration_us": us(elapsed),
            "lat_us": {"p50": us(percentile(lat, 50)), "p90": us(percentile(lat, 90)),
                       "p99": us(percentile(lat, 99)), "p999": us(percentile(lat, 99.9)),
                       "max": us(lat[-1] if lat else 0.0)},
            "service_us": {"p50": us(percentile(svc, 50)), "p99": us(percentile(svc, 99))},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT (HTTPS)")
    parser.add_argument("--path", default="/validate")
    parser.add_argument("--body", required=True, help="file with the request body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 20000 and 0 < args.seconds <= 600 and 0 < args.connections <= 256):
        parser.error("rate, seconds or connections out of bounds")
    host, _, port = args.target.rpartition(":")
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    # Waking threads must get the GIL quickly, or the generator's own jitter pollutes the p99.
    sys.setswitchinterval(0.0005)
    with open(args.body, "rb") as f:
        body = f.read()
    result = Paced(host, int(port), args.path, body, headers, args.rate, args.seconds,
                   args.connections).run()
    if args.json:
        print("BENCH_JSON " + json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
