"""The scale goal measured on real workers: `netguard serve` (gunicorn, 2 workers, TLS) with its
cluster state from the local list/watch test server holding a generated large cluster.

    .venv/bin/python bench/worker_memory.py [--namespaces 100000] [--cluster-policies 1000] [--workers 2]

bench/inventory_memory.py measures one ClusterInventory in-process (what each worker holds);
this one measures what a platform team would see: time from the server's start until
`/readyz` answers 200 on the plain metrics port (every worker's lists done: gunicorn hands
requests to any worker, and a worker answers /readyz only for itself, so it is polled until a
run of answers all say ready), and each worker's RSS (VmRSS, /proc/PID/status) then. The
workers list at the same time, on the same CPUs as the test server, so ready takes longer than
in-process; the figure is reported next to it, not instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inventory_memory import MIB, cpu_seconds, print_rows  # noqa: E402  (bench/)
from tests.serverproc import free_port, make_certs  # noqa: E402
from tests.serve.test_serve_cluster import kubeconfig  # noqa: E402


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as found:
        return [int(p) for p in found.read().split()]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:  # 503 while listing (HTTPError is an OSError), or not listening yet
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100_000)
    parser.add_argument("--cluster-policies", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    api = subprocess.Popen([sys.executable, str(ROOT / "tests" / "watchserver.py"),
                            "--namespaces", str(args.namespaces), "--cluster-policies", str(args.cluster_policies)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        server = None
        try:
            url = api.stdout.readline().strip()
            if not url.startswith("http://"):
                raise SystemExit(f"watch server did not start (got {url!r})")
            certs = make_certs(work_dir / "certs")
            config = kubeconfig(work_dir / "kubeconfig", url)
            metrics = free_port()
            api_cpu = cpu_seconds(api.pid)
            started = time.monotonic()
            server = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "netguard"), "serve", "--bind", f"127.0.0.1:{free_port()}",
                 "--certs", str(certs), "--kubeconfig", str(config), "--workers", str(args.workers),
                 "--metrics-bind", f"127.0.0.1:{metrics}"],
                stdout=subprocess.DEVNULL, stderr=open(work_dir / "server.err", "w"))
            readyz = f"http://127.0.0.1:{metrics}/readyz"
            in_a_row = 0
            while in_a_row < 4 * args.workers:  # answers from any worker: enough in a row to be all of them
                if time.monotonic() - started > 600:
                    raise SystemExit("not ready after 600 s: " + (work_dir / "server.err").read_text()[-2000:])
                in_a_row = in_a_row + 1 if ready(readyz) else 0
                time.sleep(0.05)
            to_ready = time.monotonic() - started
            api_cpu = cpu_seconds(api.pid) - api_cpu
            workers = children(server.pid)
            sizes = sorted(rss(pid) / MIB for pid in workers)
            master = rss(server.pid) / MIB
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            api.stdin.close()
            api.wait(30)

    rows = [
        ("namespaces / policies / cluster-wide policies",
         f"{args.namespaces} / {3 * args.namespaces} / {args.cluster_policies}"),
        ("workers", str(len(workers))),
        ("start -> /readyz 200 from every worker", f"{to_ready:.2f} s"),
        ("test server CPU meanwhile", f"{api_cpu:.1f} s"),
        ("RSS per worker", " / ".join(f"{size:.1f}" for size in sizes) + " MiB"),
        ("RSS of the master", f"{master:.1f} MiB"),
    ]
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
