"""What the live read adds to a LoadBalancer CREATE that rests on a cached default-deny
(read-your-writes for allows), against the project's local list/watch server.

    .venv/bin/python bench/live_read.py [--calls 400]

One ClusterInventory (the real kubernetes client) over plain HTTP on 127.0.0.1 to
tests/watchserver.py, holding namespace `shop` with a default-deny, an allow, a LoadBalancer and
a ClusterIP Service. Interleaved, `Admission.evaluate("validate", ...)` of: a LoadBalancer CREATE
(allowed, confirmed live: two LISTs and a GET), its re-apply as an UPDATE (allowed from the
cache, no live read), and a ClusterIP CREATE (no rule rests on state). Prints median and p99 per
kind and the difference: the latency a LoadBalancer CREATE pays for the read. Loopback only;
every loop is bounded by --calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402

from tests.reviews import make_request, service  # noqa: E402
from tests.watchserver import NAMESPACES, POLICIES, SERVICES, WatchServer  # noqa: E402
from webhook.core.settings import default_settings  # noqa: E402
from webhook.inventory.cluster import ClusterInventory  # noqa: E402
from webhook.serve.admission import Admission  # noqa: E402


def _obj(kind: str, name: str, spec: dict, ns: str = "shop") -> dict:
    return {"kind": kind, "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}, "spec": spec}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    with WatchServer() as server:
        server.put(NAMESPACES, {"kind": "Namespace", "metadata": {"name": "shop", "resourceVersion": "1"}})
        server.put(POLICIES, _obj("NetworkPolicy", "default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
        server.put(POLICIES, _obj("NetworkPolicy", "allow-web", {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}))
        server.put(SERVICES, _obj("Service", "web", {"type": "LoadBalancer", "selector": {"app": "web"}}))
        server.put(SERVICES, _obj("Service", "api", {"type": "ClusterIP"}))
        inventory = ClusterInventory(client.ApiClient(client.Configuration(host=server.url)))
        inventory.start()
        deadline = time.monotonic() + 30
        while not inventory.ready():
            if time.monotonic() > deadline:
                raise SystemExit("the inventory did not sync in 30 s")
            time.sleep(0.05)
        admission = Admission(default_settings(), inventory)
        lb = service("web", type="LoadBalancer")
        requests = {
            "LoadBalancer CREATE (confirmed live)": make_request(obj=lb),
            "LoadBalancer re-apply (UPDATE, from the cache)": make_request(operation="UPDATE", obj=lb, old=lb),
            "ClusterIP CREATE (no state needed)": make_request(obj=service("api")),
        }
        times: dict[str, list[float]] = {k: [] for k in requests}
        for _ in range(args.calls):
            for label, req in requests.items():
                started = time.perf_counter()
                evaluation = admission.evaluate("validate", req)
                times[label].append((time.perf_counter() - started) * 1e3)
                assert evaluation.decision.allowed, (label, evaluation.decision)
        inventory.stop()
    print(f"| {args.calls} calls each, interleaved | median ms | p99 ms |\n|---|---|---|")
    for label, values in times.items():
        values.sort()
        print(f"| {label} | {statistics.median(values):.3f} | {values[int(len(values) * 0.99) - 1]:.3f} |")
    create = statistics.median(times["LoadBalancer CREATE (confirmed live)"])
    cached = statistics.median(times["LoadBalancer re-apply (UPDATE, from the cache)"])
    print(f"\nThe live read adds {create - cached:.3f} ms (median) to a LoadBalancer CREATE; "
          f"confirmed {admission.counters.confirmed}, overturned {admission.counters.overturned}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
