"""Where an admission call's CPU goes under load, inside the served workers.

    .venv/bin/python bench/threadtime.py [--seconds 10] [--scenario lb-allow]

Starts `netguard serve` (2 workers x 8 threads, TLS, the bench's objects) with
bench/threadtime/sitecustomize.py loaded, which adds up each step's thread CPU time
(time.thread_time_ns), runs wrk keep-alive at it as bench.py does, and prints the averages per
worker next to the in-process figure of the same steps from bench/hotpath.py. The difference is
what cold caches, two vCPUs shared with wrk and the kernel, and 16 threads do to the same code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from procs import Server, free_port, netguard_command, prepare_workdir  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="lb-allow")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("threadtime: wrk is not installed (bash bench/run installs it)")
    work = Path(tempfile.mkdtemp(prefix="netguard-threadtime-"))
    try:
        certs, objects = prepare_workdir(work)
        out = work / "threadtime"
        out.mkdir()
        (work / "metrics").mkdir()
        scenario = SCENARIOS[args.scenario]
        body = work / "body.json"
        body.write_bytes(scenario.body())
        port = free_port()
        server = Server("netguard", [*netguard_command(), "serve", "--bind", f"127.0.0.1:{port}",
                                     "--certs", str(certs), "--workers", "2", "--threads", "8",
                                     "--objects", str(objects)],
                        port, work, certs / "ca.crt", 2,
                        env={"PYTHONPATH": str(BENCH / "threadtime"), "NETGUARD_THREADTIME_DIR": str(out),
                             "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")})
        server.start()
        try:
            env = {**os.environ, "BENCH_BODY": str(body), "BENCH_PATH": scenario.path,
                   "BENCH_RESPONSE": scenario.response, "BENCH_CLOSE": "0"}
            subprocess.run(["wrk", "-t2", "-c16", f"-d{args.seconds}s", "-s", str(BENCH / "post.lua"),
                            f"https://{server.target}"], env=env, check=True, capture_output=True,
                           timeout=args.seconds + 60)
        finally:
            server.stop()
        print(f"Thread CPU per call under wrk -t2 -c16 keep-alive, scenario {scenario.name} "
              "(µs, average per worker; nested steps are included in their parent):\n")
        for dump in sorted(out.iterdir()):
            print(f"worker {dump.name}:")
            for line in dump.read_text(encoding="utf-8").splitlines():
                name, micros, calls = line.split("\t")
                print(f"  {name:28s} {micros:>7s} µs  ({calls} calls)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
