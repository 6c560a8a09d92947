"""Memory that the kept decisions hold while a large namespace changes.

    .venv/bin/python bench/kept_memory.py [--policies 2000] [--rounds 300]

A GitOps sync edits one NetworkPolicy of a namespace, then applies its LoadBalancer Service,
over and over: every edit makes a new namespace view, and each LoadBalancer decision is kept.
This measures (tracemalloc, after a collection) what is still held once the rounds are over and
the last view is dropped, for a namespace with a default-deny (allowed) and one without
(refused, with its fix-it text and allow offer). The rule's kept decisions, its reachability
answers, the kept offers and the kept denial texts all take part (webhook/core/kept.py).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reviews import make_request, policy, service, settings, view_of  # noqa: E402
from webhook.core import decide  # noqa: E402

MIB = 1024 * 1024


def _allow(n: int, round_: int) -> dict:
    return policy(f"allow-{n}", {"podSelector": {"matchLabels": {"app": f"a{n}-{round_}"}},
                                 "ingress": [{"from": [{"podSelector": {}}]}]}, namespace="churned")


def held_after(rounds: int, count: int, default_deny: bool) -> float:
    ns = "churned"
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    if default_deny:
        objects.append(policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace=ns))
    config = settings()
    lb = make_request(namespace=ns, obj=service("web", type="LoadBalancer", namespace=ns))
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    view = view_of([*objects, *(_allow(n, 0) for n in range(count))], ns)
    for round_ in range(1, rounds + 1):
        view = view.with_policy(_allow(0, round_))  # as the inventory makes the next view
        decision = decide.validate(lb, view, config)
        assert decision.allowed == default_deny
        view.fingerprint  # as a live confirmation of a denial asks for it
    del view, decision
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] - before) / MIB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    tracemalloc.start()
    for default_deny in (True, False):
        held = held_after(args.rounds, args.policies, default_deny)
        what = "allowed (default-deny)" if default_deny else "refused (no default-deny)"
        print(f"{args.policies} policies, {args.rounds} rounds, {what}: {held:.1f} MiB held")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
