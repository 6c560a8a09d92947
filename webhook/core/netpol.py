"""NetworkPolicy semantics, to the letter of the Kubernetes API (docs/design.md, NetworkPolicy semantics).

https://kubernetes.io/docs/concepts/services-networking/network-policies/
Pure functions over the policy's dict as the API serves it.
"""

from __future__ import annotations

from collections.abc import (  # not typing's: isinstance on those is slow
    Iterable,
    Mapping,
)
from typing import Any

INGRESS = "Ingress"
EGRESS = "Egress"
ALL_ADDRESSES = ("0.0.0.0/0", "::/0")


def selects_all(selector: Mapping[str, Any] | None) -> bool:
    """An empty label selector ({}, or empty matchLabels and matchExpressions) selects everything."""
    if not selector:
        return True
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def effective_policy_types(spec: Mapping[str, Any]) -> frozenset[str]:
    """policyTypes, or the API's default when omitted: Ingress always, Egress only with egress rules.

    https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/
    """
    declared = spec.get("policyTypes")
    if declared:
        return frozenset(t for t in declared if t in (INGRESS, EGRESS))
    return frozenset({INGRESS, EGRESS} if spec.get("egress") else {INGRESS})


def _rules(spec: Mapping[str, Any], direction: str) -> list[Any]:
    # `ingress: []`, `ingress: null` and no `ingress` all allow nothing.
    return list(spec.get(direction.lower()) or [])


def default_deny_directions(spec: Mapping[str, Any]) -> frozenset[str]:
    """Directions this policy denies by default: it selects every pod, covers D, has no D rules."""
    if not selects_all(spec.get("podSelector")):
        return frozenset()
    return frozenset(d for d in effective_policy_types(spec) if not _rules(spec, d))


def _peer_is_everyone(peer: Mapping[str, Any]) -> bool:
    block = peer.get("ipBlock")
    if block is not None:
        return block.get("cidr") in ALL_ADDRESSES and not block.get("except")
    selectors = [peer[k] for k in ("podSelector", "namespaceSelector") if k in peer]
    return all(selects_all(s) for s in selectors)


def _rule_allows_every_source(rule: Mapping[str, Any]) -> bool:
    """An ingress rule with no port restriction whose `from` is empty or holds an all-peer."""
    if rule.get("ports"):
        return False
    peers = rule.get("from") or []
    return not peers or any(_peer_is_everyone(p) for p in peers if isinstance(p, Mapping))


def allows_all_ingress(spec: Mapping[str, Any]) -> bool:
    """True for a policy that selects every pod and admits every source on every port.

    Policies are additive, so such a policy cancels any ingress default-deny in its namespace.
    """
    if not selects_all(spec.get("podSelector")) or INGRESS not in effective_policy_types(spec):
        return False
    return any(_rule_allows_every_source(r) for r in _rules(spec, INGRESS) if isinstance(r, Mapping))


def spec_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (obj or {}).get("spec")
    # Several calls per admission call: the exact-type test spares the slow ABC isinstance for
    # the dicts that decoded JSON is made of.
    return spec if type(spec) is dict or isinstance(spec, Mapping) else {}


# --------------------------------------------------------------------------- reachability
# What a LoadBalancer's traffic needs from the policies behind a default-deny. That traffic comes
# from outside the cluster (or from node addresses), which pod and namespace selectors never
# match: only a rule with no `from`, or with an ipBlock peer, can admit it.

# A hashable selector: (sorted matchLabels items, sorted (key, operator, values) expressions).
Selector = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, tuple[str, ...]], ...]]
# One allowed port: (protocol, port number or name or None for every port, endPort or None).
PortRange = tuple[str, "int | str | None", "int | None"]
# The ports one rule admits external traffic on: None means every port.
ExternalRule = "tuple[PortRange, ...] | None"


def frozen_selector(selector: Mapping[str, Any] | None) -> Selector:
    selector = selector or {}
    labels = tuple(sorted((str(k), str(v)) for k, v in (selector.get("matchLabels") or {}).items()))
    expressions = tuple(sorted(
        (str(e.get("key", "")), str(e.get("operator", "")), tuple(sorted(str(v) for v in e.get("values") or ())))
        for e in selector.get("matchExpressions") or () if isinstance(e, Mapping)))
    return labels, expressions


def selector_matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    """Does the selector select pods carrying (at least) `labels`?"""
    match_labels, expressions = selector
    if any(labels.get(k) != v for k, v in match_labels):
        return False
    for key, operator, values in expressions:
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _admits_outside(rule: Mapping[str, Any]) -> bool:
    peers = rule.get("from") or []
    return not peers or any(isinstance(p, Mapping) and p.get("ipBlock") for p in peers)


def _ports(rule: Mapping[str, Any]) -> "tuple[PortRange, ...] | None":
    ports = rule.get("ports") or []
    if not ports:
        return None
    return tuple((str(p.get("protocol") or "TCP"), _port_value(p.get("port")), _end_port(p.get("endPort")))
                 for p in ports if isinstance(p, Mapping))


def _port_value(port: Any) -> "int | str | None":
    # The apiserver validates ports only after the mutating webhooks have run: a value of
    # another type is kept as text (hashable, and never equal to a number).
    return port if port is None or isinstance(port, (int, str)) else str(port)


def _end_port(end: Any) -> "int | None":
    return end if isinstance(end, int) else None


def external_ingress(spec: Mapping[str, Any]) -> "tuple[ExternalRule, ...]":
    """The port sets on which this policy admits traffic from outside the cluster."""
    if INGRESS not in effective_policy_types(spec):
        return ()
    return tuple(_ports(r) for r in _rules(spec, INGRESS) if isinstance(r, Mapping) and _admits_outside(r))


def port_admitted(rules: "Iterable[ExternalRule]", protocol: str, target: "int | str") -> bool:
    """Whether any rule admits `target` (a number or a container port name) over `protocol`.

    A name on one side and a number on the other can only be resolved against the pod's
    container ports, which netguard does not see: that counts as admitted (no false warning).
    """
    for ports in rules:
        if ports is None:
            return True
        for proto, port, end in ports:
            if proto != protocol:
                continue
            if port is None or isinstance(port, str) != isinstance(target, str):
                return True
            if port == target or (isinstance(port, int) and isinstance(target, int) and end
                                  and port <= target <= end):
                return True
    return False
