"""What the intake adds per request: `Intake.advance` on a socketpair, for a recorded review.

    .venv/bin/python bench/intake_cost.py [--requests 20000]

Prints µs per request for send + `Intake.advance` (the head framed, the body read) against send +
recv alone, in one run: the difference is what the worker's main loop does per request before a
thread gets it (webhook/serve/intake.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhook.serve.intake import Intake, Limits, Progress  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "apiserver-reviews" / "00-mutate-NetworkPolicy-CREATE-default-deny.json"


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 1_000_000:
        parser.error("requests in [1, 1000000]")
    body = json.dumps(json.loads(FIXTURE.read_text())["body"], separators=(",", ":")).encode()
    request = (b"POST /mutate?timeout=10s HTTP/1.1\r\nHost: netguard.netguard-system.svc:443\r\n"
               b"User-Agent: kube-apiserver-admission\r\nContent-Length: %d\r\nAccept: application/json, */*\r\n"
               b"Content-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n" % len(body)) + body
    server, client = socket.socketpair()
    server.setblocking(False)
    limits, conn = Limits(body_bytes=8 << 20), _Conn(server)
    started = time.perf_counter()
    for _ in range(args.requests):
        client.send(request)
        if Intake(conn, 0, limits, False).advance(1 << 20) is not Progress.READY:
            raise SystemExit("intake_cost: a request was not read whole")
    with_intake = (time.perf_counter() - started) / args.requests * 1e6
    started = time.perf_counter()
    for _ in range(args.requests):
        client.send(request)
        server.recv(65536)
    bare = (time.perf_counter() - started) / args.requests * 1e6
    print(f"{len(request)}-byte request: send + intake {with_intake:.1f} µs, send + recv {bare:.1f} µs, "
          f"intake adds {with_intake - bare:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
