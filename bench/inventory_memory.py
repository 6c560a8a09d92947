"""How much memory and time ClusterInventory needs for a large cluster.

    .venv/bin/python bench/inventory_memory.py [--namespaces 10000] [--page-size 500]

Per namespace the generated cluster has 3 NetworkPolicies (a default-deny, an allow by pod
selector, an allow from an ipBlock), 1 LoadBalancer and 2 ClusterIP Services, with Helm-like
labels and annotations (tests/watchserver.py, `generated_cluster`). The list/watch server runs
in a child process so that its copy of the objects stays out of this process's RSS; this process
measures RSS (VmRSS, /proc/self/status) after importing everything and again after ready(), and
the peak (VmHWM) in between, which includes the pages of JSON being parsed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402

from webhook.core.settings import default_settings  # noqa: E402
from webhook.inventory.cluster import ClusterInventory  # noqa: E402
from webhook.inventory.watch import Timing  # noqa: E402

MIB = 1024 * 1024


def proc_status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS: resident now, VmHWM: resident at peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def deep_size(root: object) -> int:
    """Bytes of every object reachable from `root`, each counted once (shared ones too), not
    following into classes."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))  # a mappingproxy's dict too, a slotted object's fields
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--cluster-policies", type=int, default=0,
                        help="also serve this many cluster-wide policies (Calico, Cilium)")
    parser.add_argument("--namespace-labels", nargs="*", metavar="KEY",
                        help="keep only these namespace label keys (default: what `netguard serve` "
                             "keeps with the default configuration; all when cluster-wide policies are served)")
    args = parser.parse_args()

    started = time.monotonic()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "watchserver.py"),
                               "--namespaces", str(args.namespaces),
                               "--cluster-policies", str(args.cluster_policies)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"watch server did not start (got {url!r})")
        generated = time.monotonic() - started

        gc.collect()
        rss_before = proc_status("VmRSS")
        labels = default_settings().namespace_label_keys() if args.namespace_labels is None else args.namespace_labels
        inventory = ClusterInventory(client.ApiClient(client.Configuration(host=url)),
                                     timing=Timing(page_size=args.page_size), namespace_labels=labels)
        server_cpu, own_cpu = cpu_seconds(server.pid), cpu_seconds()
        started = time.monotonic()
        inventory.start()
        while not inventory.ready():
            if time.monotonic() - started > 600:
                raise SystemExit(f"not ready after 600 s: {inventory.state}")
            time.sleep(0.01)
        to_ready = time.monotonic() - started
        server_cpu, own_cpu = cpu_seconds(server.pid) - server_cpu, cpu_seconds() - own_cpu
        gc.collect()
        rss_after = proc_status("VmRSS")
        peak = proc_status("VmHWM")

        state = inventory.state
        kept_labels = inventory._keep_labels
        sample = inventory.view("team-00042")
        assert sample.default_deny_policies()[-1] == "default-deny", sample  # after a cluster policy's label
        assert sample.load_balancers == {"web"}, sample
        assert state["policies"] == 3 * args.namespaces, state
        assert state["load_balancers"] == args.namespaces, state
        index = deep_size(inventory._views)
        cluster_index = deep_size(inventory.cluster_policies.summaries)
        assert state["cluster_policies"] == args.cluster_policies, state
        begun = time.perf_counter()
        scanned = inventory.views()  # what the periodic scan reads: each view with its cluster policies
        scan_s = time.perf_counter() - begun
        if args.cluster_policies:
            isolated = sum(1 for v in scanned if any(c.isolates for c in v.cluster))
            assert isolated == min(args.cluster_policies, args.namespaces), isolated

        confirm_ms = []
        for i in range(200):
            begun = time.perf_counter()
            live = inventory.confirm(f"team-{i:05d}")
            confirm_ms.append((time.perf_counter() - begun) * 1000)
        assert live.default_deny_policies()[-1] == "default-deny" and live.source == "live"
        inventory.stop()
    finally:
        server.stdin.close()
        server.wait(30)

    rows = [
        ("namespaces / policies / services", f"{args.namespaces} / {3 * args.namespaces} / "
                                             f"{3 * args.namespaces} ({args.namespaces} LoadBalancers)"),
        ("list page size", str(args.page_size)),
        ("namespace labels kept", "all" if kept_labels is None else ", ".join(sorted(kept_labels)) or "none"),
        ("server: generate objects", f"{generated:.1f} s"),
        ("start() -> ready()", f"{to_ready:.2f} s"),
        ("  CPU meanwhile: inventory / test server", f"{own_cpu:.1f} s / {server_cpu:.1f} s"),
        ("RSS before start (after imports)", f"{rss_before / MIB:.1f} MiB"),
        ("RSS after ready (gc'd)", f"{rss_after / MIB:.1f} MiB"),
        ("RSS growth", f"{(rss_after - rss_before) / MIB:.1f} MiB"),
        ("peak RSS growth (VmHWM - before)", f"{(peak - rss_before) / MIB:.1f} MiB"),
        ("index size (deep sizeof of the views)", f"{index / MIB:.1f} MiB"),
        ("cluster-wide policies / their summaries", f"{args.cluster_policies} / {cluster_index / MIB:.2f} MiB"),
        ("views() with cluster policies (the scan)", f"{scan_s:.2f} s"),
        ("confirm() p50 / max (local server)",
         f"{statistics.median(confirm_ms):.1f} / {max(confirm_ms):.1f} ms"),
    ]
    print_rows(rows)
    return 0


def print_rows(rows: list[tuple[str, str]]) -> None:
    """name  value, one per line, the values aligned."""
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
