"""NetworkPolicy semantics, to the letter of the Kubernetes API (docs/design.md, NetworkPolicy semantics).

https://kubernetes.io/docs/concepts/services-networking/network-policies/
Pure functions over the policy's dict as the API serves it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import (  # not typing's: isinstance on those is slow
    Iterable,
    Mapping,
)
from typing import Any

INGRESS = "Ingress"
EGRESS = "Egress"
BOTH, ONLY_INGRESS, NEITHER = frozenset({INGRESS, EGRESS}), frozenset({INGRESS}), frozenset()
ONLY_EGRESS = frozenset({EGRESS})
# (covers Ingress, covers Egress) -> the directions: the same four sets for every policy, where
# building one per question cost more than the question (every policy is labelled with them).
_DIRECTIONS = {(True, True): BOTH, (True, False): ONLY_INGRESS, (False, True): ONLY_EGRESS, (False, False): NEITHER}


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
        ingress = egress = False
        for t in declared:  # other values (none the API accepts) count for neither
            if t == INGRESS:
                ingress = True
            elif t == EGRESS:
                egress = True
        return _DIRECTIONS[ingress, egress]
    return BOTH if spec.get("egress") else ONLY_INGRESS


def _rules(spec: Mapping[str, Any], direction: str) -> list[Any]:
    # `ingress: []`, `ingress: null` and no `ingress` all allow nothing.
    return list(spec.get(direction.lower()) or [])


def isolated_directions(spec: Mapping[str, Any]) -> frozenset[str]:
    """Directions in which the pods this policy selects (whichever they are) get nothing from it."""
    # `not spec.get(...)` is `not _rules(...)` without the copy: every policy is labelled with this.
    covered = effective_policy_types(spec)
    return _DIRECTIONS[INGRESS in covered and not spec.get("ingress"), EGRESS in covered and not spec.get("egress")]


def default_deny_directions(spec: Mapping[str, Any]) -> frozenset[str]:
    """Directions this policy denies by default: it selects every pod, covers D, has no D rules."""
    if not selects_all(spec.get("podSelector")):
        return NEITHER
    return isolated_directions(spec)


# ------------------------------------------------------------------ what admits outside traffic
# A LoadBalancer brings traffic from outside the cluster. A peer's podSelector selects pods of the
# policy's namespace and a namespaceSelector pods of the selected namespaces: neither ever matches
# an outside address. Only a rule with no `from` (every source) or an ipBlock peer can admit it.
# https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/#NetworkPolicyPeer

IPV4, IPV6 = "IPv4", "IPv6"
EVERY_ADDRESS = {IPV4: ipaddress.ip_network("0.0.0.0/0"), IPV6: ipaddress.ip_network("::/0")}
# Bounds the arithmetic a forged policy can ask for (excepts split a block into pieces).
MAX_BLOCK_PIECES = 4096


def block_ranges(block: Mapping[str, Any]) -> list["ipaddress.IPv4Network | ipaddress.IPv6Network"]:
    """The addresses an ipBlock admits: its cidr minus its excepts (an unreadable cidr: none)."""
    try:
        pieces = [ipaddress.ip_network(str(block.get("cidr") or ""), strict=False)]
    except ValueError:
        return []
    for text in block.get("except") or ():
        try:
            cut = ipaddress.ip_network(str(text), strict=False)
        except ValueError:
            continue  # the API refuses such an except; never let it widen the block
        kept = []
        for piece in pieces:
            if cut.version != piece.version or not piece.overlaps(cut):
                kept.append(piece)
            elif not cut.supernet_of(piece):  # the cut lies inside: the rest of the piece stays
                kept.extend(piece.address_exclude(cut))
        pieces = kept[:MAX_BLOCK_PIECES]
    return pieces


def collapse(ranges: Iterable["ipaddress.IPv4Network | ipaddress.IPv6Network"]) -> tuple[str, ...]:
    """`ranges` as collapsed CIDRs, IPv4 first."""
    ranges = list(ranges)
    return tuple(str(n) for family in (4, 6)
                 for n in ipaddress.collapse_addresses(r for r in ranges if r.version == family))


# The peers of a rule, by direction: `from` (sources) for ingress, `to` (destinations) for egress.
PEERS = {INGRESS: "from", EGRESS: "to"}


def _rule_open_ranges(rule: Mapping[str, Any], direction: str = INGRESS
                      ) -> list["ipaddress.IPv4Network | ipaddress.IPv6Network"]:
    """What one rule admits from (ingress) or to (egress) outside addresses on every port."""
    if rule.get("ports"):
        return []  # some ports only: the default-deny still holds for the others
    peers = rule.get(PEERS[direction]) or []
    if not peers:
        return list(EVERY_ADDRESS.values())  # no `from` / `to`: every source / destination
    ranges = []
    for peer in peers:
        if isinstance(peer, Mapping) and isinstance(peer.get("ipBlock"), Mapping):
            ranges.extend(block_ranges(peer["ipBlock"]))
    return ranges


def open_outside_ranges(spec: Mapping[str, Any], direction: str = INGRESS) -> tuple[str, ...]:
    """The outside addresses this policy admits to (ingress) or lets be reached from (egress)
    every pod of its namespace on every port, as collapsed CIDRs; empty unless it selects every
    pod and covers `direction`. For egress the same peers count as for ingress: a podSelector or
    namespaceSelector peer names pods, never an address outside the cluster; no `to` is every
    destination; an ipBlock its cidr minus its excepts."""
    if not selects_all(spec.get("podSelector")) or direction not in effective_policy_types(spec):
        return ()
    ranges = [r for rule in _rules(spec, direction) if isinstance(rule, Mapping)
              for r in _rule_open_ranges(rule, direction)]
    return tuple(str(n) for family in (4, 6)
                 for n in ipaddress.collapse_addresses(r for r in ranges if r.version == family))


def covered_families(ranges: Iterable[str]) -> frozenset[str]:
    """The address families (IPv4, IPv6) whose every address the union of `ranges` covers:
    0.0.0.0/1 with 128.0.0.0/1 is all of IPv4."""
    networks = [ipaddress.ip_network(r) for r in ranges]
    covered = set()
    for family, everything in EVERY_ADDRESS.items():
        collapsed = list(ipaddress.collapse_addresses(n for n in networks if n.version == everything.version))
        if collapsed == [everything]:
            covered.add(family)
    return frozenset(covered)


def covered_families_of_any(ranges: Iterable[str]) -> frozenset[str]:
    """The families any of `ranges` belongs to."""
    return frozenset(IPV4 if ":" not in r else IPV6 for r in ranges)


def opens_every_outside_address(spec: Mapping[str, Any], direction: str = INGRESS) -> frozenset[str]:
    """The families of which this policy alone admits every outside address to (or, for egress,
    from) every pod on every port: such a policy cancels a default-deny of that direction for
    outside traffic (policies are additive)."""
    return covered_families(open_outside_ranges(spec, direction))


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
