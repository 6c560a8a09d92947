"""Serving under attack: a legitimate client's latency while idle, half-open and slow clients hold connections.

    .venv/bin/python bench/attack.py [--seconds 20] [--idle 1000] [--handshakes 200] [--slowloris 50]

Two servers, side by side in one run, each with the Deployment's settings (2 workers x 8 threads,
TLS, keepalive 120 s, --io-timeout 10 s): `netguard serve` (netguard's worker, with --metrics-bind
for the plain health port) and the floor (bench/floor.py) on gunicorn's stock gthread worker, as
netguard served before its intake. For each, first a quiet phase, then the attack:

- `--idle` TCP connections that send nothing;
- `--handshakes` connections that send the first 5 bytes of a TLS ClientHello and stop;
- `--slowloris` clients that complete the handshake and send a request head one byte a second.

Attackers the server drops are opened again at once, so the attack stays at full size for the
whole phase. Meanwhile a legitimate client sends, every 50 ms in turn: a review on a fresh TLS
connection, a review on a kept-alive connection, `GET /healthz` on a fresh TLS connection, and
(netguard only) `GET /healthz` on the plain port. Every request has a 10 s client timeout (the
webhooks' timeoutSeconds); a timeout or error counts as a failure. Loopback only; every loop is
bounded by the phase's deadline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import selectors
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from procs import Server, free_port, netguard_command, prepare_workdir  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402

PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00"
CLIENT_TIMEOUT = 10.0


class Attack:
    """Idle and half-open connections from one selector thread, slowloris clients from threads."""

    def __init__(self, port: int, context: ssl.SSLContext, idle: int, handshakes: int, slowloris: int) -> None:
        self.port, self.context = port, context
        self.idle, self.handshakes, self.slowloris = idle, handshakes, slowloris
        self.stop = threading.Event()
        self.reopened = 0
        self.threads = [threading.Thread(target=self._hold, daemon=True)]
        self.threads += [threading.Thread(target=self._drip, daemon=True) for _ in range(slowloris)]

    def _open(self, partial: bool) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if partial:
                sock.sendall(PARTIAL_CLIENT_HELLO)
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    def _hold(self) -> None:
        selector = selectors.DefaultSelector()
        for i in range(self.idle + self.handshakes):
            partial = i >= self.idle
            sock = self._open(partial)
            if sock is not None:
                selector.register(sock, selectors.EVENT_READ, partial)
        while not self.stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:  # dropped by the server: open another in its place
                    selector.unregister(sock)
                    sock.close()
                    self.reopened += 1
                    new = self._open(key.data)
                    if new is not None:
                        selector.register(new, selectors.EVENT_READ, key.data)
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()

    def _drip(self) -> None:
        head = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 10_000
        while not self.stop.is_set():
            try:
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                sock = self.context.wrap_socket(raw, server_hostname="127.0.0.1")
            except OSError:
                self.stop.wait(0.5)
                continue
            with sock:
                for byte in head:
                    if self.stop.wait(1.0):
                        return
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        break
            self.reopened += 1

    def __enter__(self) -> "Attack":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def _timed(call) -> float | None:
    started = time.perf_counter()
    try:
        ok = call()
    except (OSError, http.client.HTTPException, ValueError):
        ok = False
    return time.perf_counter() - started if ok else None


def probe(server: Server, context: ssl.SSLContext, plain_port: int | None, seconds: float) -> dict[str, list]:
    """Latencies (s) of each kind of legitimate request; None for a failure."""
    scenario = SCENARIOS["lb-allow"]
    body = scenario.body()
    headers = {"Content-Type": "application/json", "X-Bench-Response": scenario.response}
    kept = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=CLIENT_TIMEOUT)

    def review(conn: http.client.HTTPSConnection) -> bool:
        conn.request("POST", scenario.path, body=body, headers=headers)
        reply = conn.getresponse()
        return reply.status == 200 and json.loads(reply.read())["response"]["allowed"] is True

    def fresh_review() -> bool:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=CLIENT_TIMEOUT)
        try:
            return review(conn)
        finally:
            conn.close()

    def kept_review() -> bool:
        try:
            return review(kept)
        except (OSError, http.client.HTTPException):
            kept.close()  # http.client reconnects on the next request
            raise

    def healthz(conn_class, port: int, **kw) -> bool:
        conn = conn_class("127.0.0.1", port, timeout=CLIENT_TIMEOUT, **kw)
        try:
            conn.request("GET", "/healthz")
            reply = conn.getresponse()
            return reply.status == 200 and json.loads(reply.read()) == {"status": "ok"}
        finally:
            conn.close()

    kinds = {"review, fresh connection": fresh_review, "review, kept-alive connection": kept_review,
             "/healthz, webhook port (TLS)": lambda: healthz(http.client.HTTPSConnection, server.port, context=context)}
    if plain_port is not None:
        kinds["/healthz, plain port"] = lambda: healthz(http.client.HTTPConnection, plain_port)
    out: dict[str, list] = {k: [] for k in kinds}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, call in kinds.items():
            out[name].append(_timed(call))
            time.sleep(0.05)
    kept.close()
    return out


def summary(latencies: list) -> str:
    ok = sorted(x for x in latencies if x is not None)
    failed = len(latencies) - len(ok)
    if not ok:
        return f"| 0 | {failed} | - | - | - |"

    def pct(p: float) -> float:
        return ok[min(len(ok) - 1, int(p * len(ok)))] * 1000

    return f"| {len(ok)} | {failed} | {pct(0.5):.1f} | {pct(0.99):.1f} | {ok[-1] * 1000:.1f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--handshakes", type=int, default=200)
    parser.add_argument("--slowloris", type=int, default=50)
    args = parser.parse_args(argv)
    if not (0 < args.seconds <= 600 and 0 <= args.idle <= 5000 and 0 <= args.handshakes <= 5000
            and 0 <= args.slowloris <= 500):
        parser.error("seconds in (0, 600], idle and handshakes <= 5000, slowloris <= 500")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process holds the attackers' sockets

    work = Path(tempfile.mkdtemp(prefix="netguard-attack-"))
    certs, objects = prepare_workdir(work)
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    common = ["--certs", str(certs), "--workers", "2", "--threads", "8"]
    ng_port, plain_port, fl_port = free_port(), free_port(), free_port()
    servers = [
        (Server("netguard", [*netguard_command(), "serve", "--bind", f"127.0.0.1:{ng_port}", *common,
                             "--objects", str(objects), "--metrics-bind", f"127.0.0.1:{plain_port}"],
                ng_port, work, certs / "ca.crt", 2, env={"PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")}),
         plain_port),
        (Server("floor-gthread", [sys.executable, str(BENCH / "floor.py"), "--bind", f"127.0.0.1:{fl_port}",
                                  *common, "--worker-model", "gthread"], fl_port, work, certs / "ca.crt", 2),
         None),
    ]
    lines = [f"Attack: {args.idle} idle TCP + {args.handshakes} stalled TLS handshakes + {args.slowloris} "
             f"slowloris (1 byte/s), {args.seconds:.0f} s per phase, 2 workers x 8 threads each, "
             f"client timeout {CLIENT_TIMEOUT:.0f} s.", "",
             "| server | phase | request | answered | failed | p50 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|---|"]
    for server, plain in servers:
        server.start()
        try:
            print(f"attack: {server.label}: quiet phase", file=sys.stderr)
            quiet = probe(server, context, plain, args.seconds / 2)
            print(f"attack: {server.label}: under attack", file=sys.stderr)
            with Attack(server.port, context, args.idle, args.handshakes, args.slowloris) as attack:
                time.sleep(2.0)  # the attackers are connected
                attacked = probe(server, context, plain, args.seconds)
            for phase, results in (("quiet", quiet), ("attack", attacked)):
                for kind, latencies in results.items():
                    lines.append(f"| {server.label} | {phase} | {kind} " + summary(latencies))
            lines.append(f"| {server.label} | attack | attackers dropped by the server and reopened: "
                         f"{attack.reopened} | | | | | |")
        finally:
            server.stop()
    report = "\n".join(lines)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
