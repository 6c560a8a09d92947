"""Worker memory under hostile bodies: 8 concurrent maximum-size bodies, the peak and what stays.

    .venv/bin/python bench/hostile_memory.py [--concurrent 8] [--workers 1]

`netguard serve` (one worker by default, so every body lands on the same one: the worst case;
8 threads; TLS; the offline inventory) receives, for each kind of body below, `--concurrent`
POSTs to /validate at once, each just under maxBodyBytes (8 MiB). The worker's RSS
(/proc/PID/status VmRSS) is sampled every 10 ms from before the burst until 3 s after the last
answer; the report gives the baseline, the peak and the RSS 3 s after.

- dense: `{"request":[{},{},...]}`, the cheapest way to make a decoder build millions of objects;
- just-under: as many one-key objects (`{"ab":1},`) as netguard decodes (MAX_CONTAINERS in
  webhook/serve/endpoints.py: 250,000 dicts per body), then a string up to the size limit;
- labels: a well-formed review of a Service with ~550,000 labels (one JSON object, many strings);
- one-string: a well-formed review with one 8 MiB annotation.

Loopback only; every answer is read (and its status counted) before the next kind starts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from procs import Server, children, free_port, netguard_command, prepare_workdir, rss_mib  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402

sys.path.insert(0, str(BENCH.parent))
from webhook.serve.endpoints import MAX_CONTAINERS  # noqa: E402

LIMIT = 8 * 1024 * 1024


def _pad(prefix: bytes, unit: bytes, suffix: bytes) -> bytes:
    count = (LIMIT - 1024 - len(prefix) - len(suffix)) // len(unit)
    return prefix + unit * count + suffix


def _just_under() -> bytes:
    """As many one-key objects as netguard decodes (MAX_CONTAINERS), the rest of the body a string."""
    objects = b'{"request":{"a":[' + b'{"ab":1},' * (MAX_CONTAINERS - 3) + b'{"ab":1}],"pad":"'
    return objects + b"x" * (LIMIT - 1024 - len(objects)) + b'"}}'


def bodies() -> dict[str, bytes]:
    review = json.loads(SCENARIOS["lb-allow"].body())
    labelled = json.dumps(review).encode()
    marker = b'"metadata": {'
    at = labelled.index(marker) + len(marker)
    labels = b"".join(  # distinct keys, as a dict needs them
        [b'"labels": {'] + [b'"k%07d":"v",' % i for i in range((LIMIT - len(labelled) - 2048) // 15)]
        + [b'"end":"v"}, '])
    one_string = json.dumps({**review, "request": {**review["request"], "object": {
        **review["request"]["object"], "metadata": {**review["request"]["object"]["metadata"],
                                                     "annotations": {"big": "x" * (LIMIT - 8192)}}}}}).encode()
    return {
        "dense": _pad(b'{"request":[', b"{},", b"{}]}"),
        "just-under": _just_under(),
        "labels": labelled[:at] + labels + labelled[at:],
        "one-string": one_string,
    }


def burst(server: Server, context: ssl.SSLContext, body: bytes, count: int) -> list[int]:
    statuses: list[int] = []

    def post() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=60)
        try:
            conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            reply.read()
            statuses.append(reply.status)
        except (OSError, http.client.HTTPException):
            statuses.append(0)
        finally:
            conn.close()

    threads = [threading.Thread(target=post) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not (1 <= args.concurrent <= 64 and 1 <= args.workers <= 8):
        parser.error("concurrent in [1, 64], workers in [1, 8]")
    work = Path(tempfile.mkdtemp(prefix="netguard-memory-"))
    certs, objects = prepare_workdir(work)
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    port = free_port()
    server = Server("netguard", [*netguard_command(), "serve", "--bind", f"127.0.0.1:{port}", "--certs",
                                 str(certs), "--workers", str(args.workers), "--threads", "8",
                                 "--objects", str(objects)],
                    port, work, certs / "ca.crt", args.workers,
                    env={"PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")})
    server.start()
    lines = [f"Hostile bodies: {args.concurrent} concurrent POSTs of ~8 MiB each per kind, "
             f"netguard serve --workers {args.workers} --threads 8; worker RSS in MiB.", "",
             "| body | answers | baseline | peak | 3 s after | after - baseline |", "|---|---|---|---|---|---|"]
    try:
        scenario = SCENARIOS["lb-allow"]
        for _ in range(20):  # warm: imports done, caches at their working size
            server.request("POST", scenario.path, scenario.body(), {"Content-Type": "application/json"})
        workers = children(server.proc.pid)
        for name, body in bodies().items():
            time.sleep(1.0)
            baseline = max(rss_mib(pid) for pid in workers)
            peak = [baseline]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.01):
                    peak.append(max(rss_mib(pid) for pid in workers))

            sampler = threading.Thread(target=sample)
            sampler.start()
            statuses = burst(server, context, body, args.concurrent)
            time.sleep(3.0)
            done.set()
            sampler.join()
            after = max(rss_mib(pid) for pid in workers)
            answers = ", ".join(f"{statuses.count(s)}x {s or 'failed'}" for s in sorted(set(statuses)))
            lines.append(f"| {name} ({len(body) / 2**20:.1f} MiB) | {answers} | {baseline:.1f} | {max(peak):.1f} "
                         f"| {after:.1f} | {after - baseline:+.1f} |")
            print(lines[-1], file=sys.stderr)
    finally:
        server.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
