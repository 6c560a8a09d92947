"""NetworkPolicy semantics, to the letter of the Kubernetes API (DESIGN.md section 1).

https://kubernetes.io/docs/concepts/services-networking/network-policies/
Pure functions over the policy's dict as the API serves it.
"""

from __future__ import annotations

from typing import Any, Mapping

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
    return spec if isinstance(spec, Mapping) else {}
