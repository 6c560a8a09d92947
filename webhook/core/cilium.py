"""Cilium CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2): when one isolates
a namespace's pods from traffic from outside the cluster, and their egress to outside the cluster
(docs/clusterpolicies.md, Cilium).

- Rule: https://docs.cilium.io/en/stable/network/kubernetes/policy/#ciliumnetworkpolicy
  (`spec` is one rule, `specs` a list; `endpointSelector` selects pods, `nodeSelector` nodes).
- Default deny: https://docs.cilium.io/en/stable/security/policy/intro/ -- an endpoint that a
  rule with an ingress section selects is default-deny at ingress: an empty rule
  `ingress: [{}]` selects endpoints for default-deny and admits nothing (the opposite of a
  Kubernetes NetworkPolicy's `ingress: [{}]`, which admits everything). `enableDefaultDeny.ingress`
  overrides it: false makes the rule only add to what is allowed.
- Deny rules: https://docs.cilium.io/en/stable/security/policy/deny/ (`ingressDeny` wins over
  every allow).
- Entities: https://docs.cilium.io/en/stable/security/policy/language/#entities-based
  (`world` is everything outside the cluster, `world-ipv4` / `world-ipv6` one family of it,
  `all` everything); CIDRs: `fromCIDR`, `fromCIDRSet` (`cidr`, `except`).
- Egress, the mirror image: an `egress` section (`egress: [{}]` too) or `egressDeny` puts the
  endpoints in default-deny at egress unless `enableDefaultDeny.egress: false`; `toEntities`,
  `toCIDR`, `toCIDRSet` name outside destinations ("only connections destined for outside of the
  cluster ... will be subject to CIDR rules"), and `toFQDNs` names hosts only: it opens no range.
  https://docs.cilium.io/en/stable/security/policy/language/#ip-cidr-based and
  https://docs.cilium.io/en/stable/security/policy/language/#dns-based
- Namespaces in selectors: `k8s:io.kubernetes.pod.namespace` (the pod's namespace) and
  `k8s:io.cilium.k8s.namespace.labels.<label>` (its namespace's labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core import netpol
from webhook.core.clusterscope import NAME_LABEL, NOWHERE, ClusterSummary, Scope, frozen

POD_NAMESPACE = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS = "io.cilium.k8s.namespace.labels."
_ENTITIES = {"world": set(netpol.EVERY_ADDRESS), "all": set(netpol.EVERY_ADDRESS),
             "world-ipv4": {netpol.IPV4}, "world-ipv6": {netpol.IPV6}}
SWITCHED_OFF = "enableDefaultDeny.{0} is false: it only adds to what is allowed"


def _namespace_key(key: str) -> str | None:
    key = key.removeprefix("k8s:").removeprefix("any:")
    if key == POD_NAMESPACE:
        return NAME_LABEL
    if key.startswith(NAMESPACE_LABELS):
        return key[len(NAMESPACE_LABELS):]
    return None


def scope_of(selector: Any, namespace: str) -> Scope:
    """The namespaces every pod of which `endpointSelector` selects: it may name only the pod's
    namespace and its namespace's labels (any other key: only some pods)."""
    if frozen(selector) is None:
        return NOWHERE
    labels = {}
    for key, value in (selector.get("matchLabels") or {}).items():
        mapped = _namespace_key(str(key))
        if mapped is None:
            return NOWHERE
        labels[mapped] = value
    expressions = []
    for e in selector.get("matchExpressions") or ():
        mapped = _namespace_key(str(e.get("key", "")))
        if mapped is None:
            return NOWHERE
        expressions.append({**e, "key": mapped})
    hashable = netpol.frozen_selector({"matchLabels": labels, "matchExpressions": expressions})
    names = frozenset({namespace}) if namespace else None
    return Scope(names=names, selector=hashable if hashable != ((), ()) else None)


def _outside(rule: Mapping[str, Any], way: str = "from") -> list:
    """The outside addresses one rule names: `fromEntities`, `fromCIDR`, `fromCIDRSet` for
    ingress (and ingressDeny), `toEntities`, `toCIDR`, `toCIDRSet` for egress (and egressDeny)."""
    ranges = []
    for entity in rule.get(f"{way}Entities") or ():
        for family in _ENTITIES.get(str(entity), ()):
            ranges.append(netpol.EVERY_ADDRESS[family])
    for cidr in rule.get(f"{way}CIDR") or ():
        ranges.extend(netpol.block_ranges({"cidr": str(cidr)}))
    for block in rule.get(f"{way}CIDRSet") or ():
        if isinstance(block, Mapping) and block.get("cidr"):
            ranges.extend(netpol.block_ranges(block))
    return ranges


def _every_port(rule: Mapping[str, Any]) -> bool:
    return not rule.get("toPorts") and not rule.get("icmps")


# By direction: the allow and deny sections, the enableDefaultDeny key, the peer prefix, and the
# peers that name outside destinations netguard cannot size (groups, DNS names).
_DIRECTIONS = {"ingress": ("ingress", "ingressDeny", "from", ("fromCIDRSet", "fromGroups")),
               "egress": ("egress", "egressDeny", "to", ("toCIDRSet", "toGroups", "toFQDNs"))}


def _direction(rule: Mapping[str, Any], direction: str) -> tuple[bool, tuple[str, ...], bool, bool]:
    """(isolates, open ranges, may allow some outside traffic, default-deny switched off with
    rules present) for one direction of one rule."""
    allow_key, deny_key, way, unsized = _DIRECTIONS[direction]
    allows_ = [r for r in rule.get(allow_key) or () if isinstance(r, Mapping)]
    denies = [r for r in rule.get(deny_key) or () if isinstance(r, Mapping)]
    switch = rule.get("enableDefaultDeny")
    default_deny = switch.get(direction) if isinstance(switch, Mapping) else None
    if not isinstance(default_deny, bool):
        default_deny = bool(allows_ or denies)
    opened, allows = [], False
    for r in allows_:
        found = _outside(r, way)
        if found and _every_port(r):
            opened.extend(found)
        elif found or any(r.get(k) for k in unsized):
            allows = True
    open_outside = netpol.collapse(opened)
    every = set(netpol.EVERY_ADDRESS)
    hard_deny = any(_every_port(r) and netpol.covered_families(str(n) for n in _outside(r, way)) == every
                    for r in denies)
    isolates = hard_deny or (default_deny and not netpol.covered_families(open_outside))
    return isolates, open_outside, allows, not isolates and bool(allows_) and not default_deny


def _rule_summary(kind: str, name: str, namespace: str, rule: Mapping[str, Any]) -> ClusterSummary:
    if "nodeSelector" in rule and "endpointSelector" not in rule:
        return ClusterSummary(kind=kind, name=name, namespace=namespace, scope=NOWHERE)  # host policy
    scope = scope_of(rule.get("endpointSelector"), namespace)
    isolates, open_outside, allows, switched_off = _direction(rule, "ingress")
    isolates_egress, open_egress, _, egress_off = _direction(rule, "egress")
    return ClusterSummary(kind=kind, name=name, namespace=namespace, scope=scope,
                          isolates=isolates and not scope.nothing, open_outside=open_outside,
                          note=SWITCHED_OFF.format("ingress") if switched_off else "", allows=allows,
                          isolates_egress=isolates_egress and not scope.nothing, open_egress=open_egress,
                          egress_note=SWITCHED_OFF.format("egress") if egress_off else "")


def summarize(kind: str, name: str, namespace: str, obj: Mapping[str, Any]) -> tuple[ClusterSummary, ...]:
    """One summary per rule (`spec`, then each of `specs`); a rule of several is named name#i."""
    rules = [obj["spec"]] if isinstance(obj.get("spec"), Mapping) else []
    rules += [r for r in obj.get("specs") or () if isinstance(r, Mapping)]
    if len(rules) == 1:
        return (_rule_summary(kind, name, namespace, rules[0]),)
    return tuple(_rule_summary(kind, f"{name}#{i}", namespace, r) for i, r in enumerate(rules))
