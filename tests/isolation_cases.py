"""One row per semantic case of "isolation to the letter": what admits outside traffic, the guard
that cannot be sidestepped, status updates, internal load balancers. Each row carries the API
rule it rests on (`why`). The same rows run through the decision core (tests/core/test_isolation.py),
a real server over TLS and `netguard check` (tests/serve/test_isolation_server.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.reviews import make_review, namespace, policy, service

DENY = {"podSelector": {}, "policyTypes": ["Ingress"]}
WEB = {"matchLabels": {"app": "web"}}


def _all_pods(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": list(rules)}


def _from(*peers: dict[str, Any]) -> dict[str, Any]:
    return {"from": list(peers)}


def _block(cidr: str, *excepts: str) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr}
    if excepts:
        block["except"] = list(excepts)
    return {"ipBlock": block}


WEB_FROM_OUTSIDE = {"podSelector": WEB, "policyTypes": ["Ingress"],
                    "ingress": [_from(_block("203.0.113.0/24"))]}


@dataclass(frozen=True)
class Case:
    id: str
    why: str  # the API rule the row rests on
    state: tuple[tuple[str, Any], ...]  # ("policy", (name, spec)) | ("service", (name, kwargs))
    kind: str  # of the request
    operation: str
    obj: tuple[str, Any] | None
    old: tuple[str, Any] | None = None
    allowed: bool = True
    rule: str = ""  # a substring of the deciding rule ("" when it does not matter)
    warned: tuple[str, ...] = ()  # each must appear in some warning
    not_warned: tuple[str, ...] = ()  # none may appear in any warning
    no_warnings: bool = False
    sub_resource: str = ""
    checkable: bool = True  # `netguard check` reviews CREATEs of the object itself only
    extra: dict[str, Any] = field(default_factory=dict)


def _build(ns: str, item: tuple[str, Any]) -> dict[str, Any]:
    what, (name, spec) = item
    if what == "policy":
        return policy(name, spec, namespace=ns)
    return service(name, namespace=ns, **spec)


LB = ("service", ("web", {"type": "LoadBalancer"}))
LB_ADMITTED = ("policy", ("web-from-outside", WEB_FROM_OUTSIDE))

CASES: tuple[Case, ...] = (
    Case("same-namespace-peer-does-not-cancel",
         "a podSelector peer selects pods in the policy's own namespace, never an outside address",
         (("policy", ("deny", DENY)), ("policy", ("same-ns", _all_pods(_from({"podSelector": {}}))))),
         "Service", "CREATE", LB, warned=("no NetworkPolicy admits outside traffic",), not_warned=("cancelled",)),
    Case("all-namespaces-peer-does-not-cancel",
         "a namespaceSelector peer selects pods of the selected namespaces, never an outside address",
         (("policy", ("deny", DENY)), ("policy", ("in-cluster", _all_pods(_from({"namespaceSelector": {}}))))),
         "Service", "CREATE", LB, warned=("no NetworkPolicy admits outside traffic",), not_warned=("cancelled",)),
    Case("both-selectors-peer-does-not-cancel",
         "namespaceSelector with podSelector selects pods in the selected namespaces only",
         (("policy", ("deny", DENY)),
          ("policy", ("pods-anywhere", _all_pods(_from({"namespaceSelector": {}, "podSelector": {}}))))),
         "Service", "CREATE", LB, warned=("no NetworkPolicy admits outside traffic",), not_warned=("cancelled",)),
    Case("empty-from-cancels-both-families",
         "a rule with no from admits every source, so it cancels the default-deny (policies are additive)",
         (("policy", ("deny", DENY)), ("policy", ("open", _all_pods({})))),
         "Service", "CREATE", LB, warned=("cancelled for IPv4 and IPv6 by open",)),
    Case("split-ipv4-halves-cancel",
         "ipBlock peers are a union: 0.0.0.0/1 and 128.0.0.0/1 admit every IPv4 address",
         (("policy", ("deny", DENY)),
          ("policy", ("halves", _all_pods(_from(_block("0.0.0.0/1"), _block("128.0.0.0/1")))))),
         "Service", "CREATE", LB, warned=("cancelled for IPv4 by halves",)),
    Case("ipv6-everything-cancels-ipv6-only",
         "an ipBlock of ::/0 admits every IPv6 address and no IPv4 one",
         (("policy", ("deny", DENY)), ("policy", ("v6", _all_pods(_from(_block("::/0")))))),
         "Service", "CREATE", LB, warned=("cancelled for IPv6 by v6",), not_warned=("IPv4",)),
    Case("except-keeps-the-default-deny",
         "an ipBlock admits its cidr minus its excepts: 0.0.0.0/0 except 10.0.0.0/8 is not every address",
         (("policy", ("deny", DENY)), ("policy", ("most", _all_pods(_from(_block("0.0.0.0/0", "10.0.0.0/8")))))),
         "Service", "CREATE", LB, no_warnings=True),
    Case("ports-keep-the-default-deny",
         "a rule with ports admits only those ports: the default-deny holds for every other",
         (("policy", ("deny", DENY)),
          ("policy", ("https", _all_pods({"ports": [{"protocol": "TCP", "port": 443}]})))),
         "Service", "CREATE", LB, not_warned=("cancelled",)),
    Case("guard-refuses-a-cancelling-create",
         "a new policy admitting every source to every pod cancels the default-deny as a delete would remove it",
         (("policy", ("deny", DENY)), LB), "NetworkPolicy", "CREATE", ("policy", ("open", _all_pods({})))),
    Case("guard-refuses-a-cancelling-update",
         "policies are additive: widening one to every source opens the pods the default-deny closed",
         (("policy", ("deny", DENY)), LB, ("policy", ("narrow", _all_pods(_from(_block("10.0.0.0/8")))))),
         "NetworkPolicy", "UPDATE", ("policy", ("narrow", _all_pods(_from(_block("0.0.0.0/0"), _block("::/0"))))),
         old=("policy", ("narrow", _all_pods(_from(_block("10.0.0.0/8"))))), checkable=False),
    Case("guard-allows-an-in-cluster-allow",
         "a namespaceSelector peer admits pods, not outside addresses: the default-deny still holds",
         (("policy", ("deny", DENY)), LB), "NetworkPolicy", "CREATE",
         ("policy", ("in-cluster", _all_pods(_from({"namespaceSelector": {}}))))),
    Case("guard-allows-a-cancelling-create-without-load-balancers",
         "no LoadBalancer brings outside traffic into the namespace yet",
         (("policy", ("deny", DENY)),), "NetworkPolicy", "CREATE", ("policy", ("open", _all_pods({})))),
    Case("status-update-is-not-reviewed",
         "a status UPDATE reports what a controller did (the load balancer's address), not a change of intent",
         (), "Service", "UPDATE", LB, old=LB, sub_resource="status", no_warnings=True, checkable=False),
)
# The answer each row expects where it differs from "allowed".
REFUSED = {"guard-refuses-a-cancelling-create": "protect-default-deny",
           "guard-refuses-a-cancelling-update": "protect-default-deny"}


def namespace_of(index: int) -> str:
    return f"iso-{index}"


def state_objects(index: int, case: Case) -> list[dict[str, Any]]:
    ns = namespace_of(index)
    return [namespace(ns), *(_build(ns, item) for item in case.state)]


def request_object(index: int, case: Case, which: str = "obj") -> dict[str, Any] | None:
    item = getattr(case, which)
    return _build(namespace_of(index), item) if item is not None else None


def review(index: int, case: Case, *, dry_run: bool = False) -> dict[str, Any]:
    body = make_review(kind=case.kind, operation=case.operation, namespace=namespace_of(index),
                       obj=request_object(index, case), old=request_object(index, case, "old"),
                       dry_run=dry_run)
    if case.sub_resource:
        body["request"]["subResource"] = case.sub_resource
    return body


def expect(case: Case, allowed: bool, rule: str, warnings: list[str]) -> None:
    """Assert an answer (from any of the three) is the row's."""
    want_allowed = case.id not in REFUSED
    assert allowed is want_allowed, (case.id, case.why, rule, warnings)
    if not want_allowed:
        assert REFUSED[case.id] in rule, (case.id, rule)
    for text in case.warned:
        assert any(text in w for w in warnings), (case.id, case.why, text, warnings)
    for text in case.not_warned:
        assert not any(text in w for w in warnings), (case.id, case.why, text, warnings)
    if case.no_warnings:
        assert warnings == [], (case.id, case.why, warnings)


INDEXED = list(enumerate(CASES))
IDS = [case.id for case in CASES]
