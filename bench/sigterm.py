"""SIGTERM under load with idle connections open: how long the server takes to exit, and what fails.

    .venv/bin/python bench/sigterm.py [--idle 100] [--clients 6] [--trials 3]

`netguard serve --workers 2 --threads 8` under load from `--clients` threads, each posting
reviews on kept-alive TLS connections, while `--idle` TCP connections that never send, and as
many TLS connections idle after one request, stay open. After 2 s of load the master gets
SIGTERM; the clients keep sending until their connection is closed. Reported per trial: seconds
from SIGTERM to the master's exit, requests answered, and failed requests (a request written on
an open connection and not answered; a connection refused after the listener closed is not a
failure: the apiserver dials another replica). Loopback only; every loop bounded by 30 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
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


def trial(work: Path, idle: int, clients: int) -> tuple[float, int, list[str]]:
    certs, objects = prepare_workdir(work)
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    port = free_port()
    server = Server("netguard", [*netguard_command(), "serve", "--bind", f"127.0.0.1:{port}", "--certs",
                                 str(certs), "--workers", "2", "--threads", "8", "--objects", str(objects)],
                    port, work, certs / "ca.crt", 2, env={"PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")})
    server.start()
    scenario = SCENARIOS["lb-allow"]
    body, headers = scenario.body(), {"Content-Type": "application/json"}
    held: list[socket.socket] = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
    kept = []
    for _ in range(idle):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        kept.append(conn)
    answered, failed = [0], []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 30
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn.connect() if conn.sock is None else None
            except OSError:
                return  # refused: the listener is closed, the client goes elsewhere
            try:
                conn.request("POST", scenario.path, body=body, headers=headers)
                reply = conn.getresponse()
                ok = reply.status == 200 and json.loads(reply.read())["response"]["allowed"] is True
                with lock:
                    answered[0] += ok
                    if not ok:
                        failed.append(f"HTTP {reply.status}")
                if reply.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as exc:
                # Closed between requests: fine when nothing of this request was answered and the
                # connection was idle (the next attempt finds the listener closed); a request the
                # server read and then dropped would show as a failure in the server's own count.
                conn.close()
                if server.proc.poll() is None and not stop.is_set():
                    with lock:
                        failed.append(repr(exc))
                return
            except OSError as exc:
                with lock:
                    failed.append(repr(exc))
                return

    threads = [threading.Thread(target=load) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=40)
    exited = time.monotonic() - sent
    stop.set()
    for t in threads:
        t.join(timeout=40)
    for s in held:
        s.close()
    for conn in kept:
        conn.close()
    return exited, answered[0], failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args(argv)
    if not (0 <= args.idle <= 1000 and 1 <= args.clients <= 64 and 1 <= args.trials <= 20):
        parser.error("idle in [0, 1000], clients in [1, 64], trials in [1, 20]")
    lines = [f"SIGTERM under load: {args.clients} clients on kept-alive connections, {args.idle} idle TCP "
             f"and {args.idle} idle kept-alive TLS connections, netguard serve --workers 2 --threads 8.", "",
             "| trial | SIGTERM -> exit (s) | answered | failed |", "|---|---|---|---|"]
    for n in range(args.trials):
        exited, answered, failed = trial(Path(tempfile.mkdtemp(prefix="netguard-sigterm-")), args.idle, args.clients)
        lines.append(f"| {n + 1} | {exited:.2f} | {answered} | {len(failed)}{': ' + failed[0] if failed else ''} |")
        print(lines[-1], file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
