"""Calico GlobalNetworkPolicy and NetworkPolicy (projectcalico.org/v3): when one isolates a
namespace's pods from traffic from outside the cluster (docs/clusterpolicies.md, Calico).

- Resources: https://docs.tigera.io/calico/latest/reference/resources/globalnetworkpolicy
  and https://docs.tigera.io/calico/latest/reference/resources/networkpolicy
  (`selector` defaults to all(); a GlobalNetworkPolicy's empty `namespaceSelector` selects every
  namespace; `types` defaults to [Ingress] unless there are egress rules and no ingress rules;
  `doNotTrack` and `preDNAT` apply to host endpoints only).
- Rules: https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#rule
  (actions Allow, Deny, Log, Pass; rules are matched in order and the first Allow, Deny or Pass
  that matches decides; an endpoint selected by a policy of a tier whose rules match nothing is
  denied at the end of the tier).
- Selectors: https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
  and the namespace labels `projectcalico.org/name` (namespaceSelector) and, in an endpoint
  selector, `projectcalico.org/namespace` and `pcns.<label>`:
  https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels
A selector netguard cannot read (||, parentheses, a pod label) selects, for netguard, every pod
of no namespace: it is never counted as isolation (netguard errs towards refusing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from webhook.core import netpol
from webhook.core.clusterscope import CALICO_NAME_KEY as NAME_KEY
from webhook.core.clusterscope import NOWHERE, CalicoTerm, ClusterSummary, Scope

INGRESS, EGRESS = "Ingress", "Egress"
_TERM = re.compile(r"""\s*(?:
    (?P<all>all\(\s*\))
  | (?P<neg>!\s*)?has\(\s*(?P<has>[\w./-]+)\s*\)
  | (?P<key>[\w./-]+)\s*(?P<op>==|!=|not\s+in|in)\s*(?:
        (?P<q>"[^"]*"|'[^']*')
      | \{(?P<set>[^{}]*)\}))\s*$""", re.X)
_QUOTED = re.compile(r"""\s*("[^"]*"|'[^']*')\s*(?:,|$)""")


def parse_selector(text: Any) -> tuple[CalicoTerm, ...] | None:
    """A Calico selector as terms that all must hold, or None when netguard cannot read it.
    Empty text is all()."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return ()
    if not isinstance(text, str):
        return None
    terms = []
    for part in text.split("&&"):
        m = _TERM.match(part)
        if m is None:
            return None
        if m.group("all"):
            continue
        if m.group("has"):
            terms.append(("!has" if m.group("neg") else "has", m.group("has"), ()))
            continue
        op = " ".join(m.group("op").split())
        if m.group("q") is not None:
            values = (m.group("q")[1:-1],)
        else:
            values = tuple(v[1:-1] for v in _QUOTED.findall(m.group("set"))) if m.group("set").strip() else ()
        terms.append((op, m.group("key"), values))
    return tuple(terms)


def _endpoint_terms(selector: Any) -> tuple[CalicoTerm, ...] | None:
    """An endpoint selector's terms over the namespace, when it selects every pod of the
    namespaces it names (only namespace terms); else None."""
    terms = parse_selector(selector)
    if terms is None:
        return None
    kept = []
    for op, key, values in terms:
        if key == "projectcalico.org/namespace":
            kept.append((op, NAME_KEY, values))
        elif key.startswith("pcns."):
            kept.append((op, key[len("pcns."):], values))
        else:
            return None  # a pod label: not every pod
    return tuple(kept)


def scope_of(spec: Mapping[str, Any], namespace: str) -> Scope:
    if spec.get("doNotTrack") or spec.get("preDNAT") or spec.get("serviceAccountSelector"):
        return NOWHERE  # host endpoints only, or only some pods
    endpoint = _endpoint_terms(spec.get("selector"))
    if endpoint is None:
        return NOWHERE
    if namespace:  # a NetworkPolicy selects endpoints of its own namespace only
        return Scope(names=frozenset({namespace}), calico=endpoint)
    spaces = parse_selector(spec.get("namespaceSelector"))
    if spaces is None:
        return NOWHERE
    return Scope(calico=spaces + endpoint)


def policy_types(spec: Mapping[str, Any]) -> frozenset[str]:
    declared = spec.get("types")
    if declared is not None and not isinstance(declared, list):
        return frozenset()  # no shape the API takes: never counted
    if declared:
        return frozenset(t for t in declared if t in (INGRESS, EGRESS))
    if spec.get("egress") and not spec.get("ingress"):
        return frozenset({EGRESS})
    return frozenset({INGRESS, EGRESS} if spec.get("egress") else {INGRESS})


_NARROWING = ("protocol", "notProtocol", "icmp", "notICMP", "http", "ipVersion")
_IN_CLUSTER = ("selector", "notSelector", "namespaceSelector", "serviceAccounts", "services")


def _sources(rule: Mapping[str, Any]) -> list | None:
    """The outside addresses the rule matches on every port of every selected pod, or None when
    it matches some outside traffic only (ports, protocols) or only what netguard cannot tell."""
    destination = rule.get("destination") or {}
    source = rule.get("source") or {}
    if not isinstance(destination, Mapping) or not isinstance(source, Mapping):
        return None
    if any(rule.get(k) for k in _NARROWING) or any(destination.get(k) for k in destination) or \
            source.get("ports") or source.get("notPorts"):
        return None
    if any(source.get(k) for k in _IN_CLUSTER):
        return None  # endpoints (or network sets, which netguard does not read)
    nets = source.get("nets") or list(netpol.EVERY_ADDRESS.values())
    found = []
    for cidr in nets:
        found.extend(netpol.block_ranges({"cidr": str(cidr), "except": source.get("notNets") or ()}))
    return found


def summarize(kind: str, name: str, namespace: str, spec: Mapping[str, Any]) -> ClusterSummary:
    scope = scope_of(spec, namespace)
    base = dict(kind=kind, name=name, namespace=namespace, scope=scope)
    if scope.nothing or INGRESS not in policy_types(spec):
        return ClusterSummary(**base)
    opened: list = []
    allows = False
    for rule in spec.get("ingress") or ():
        if not isinstance(rule, Mapping):
            continue
        action, matched = rule.get("action"), _sources(rule)
        everything = matched is not None and netpol.covered_families(str(n) for n in matched) == set(netpol.EVERY_ADDRESS)
        if action == "Allow":
            if matched is None:
                allows = True
            else:
                opened.extend(matched)
            if everything:
                break
        elif action == "Deny" and everything:
            break  # every outside address denied on every port: the rest cannot admit it
        elif action == "Pass" and everything:
            return ClusterSummary(**base, open_outside=netpol.collapse(opened), allows=allows,
                                  note="it passes outside traffic to the next tier")
    open_outside = netpol.collapse(opened)
    # Past the rules (or a Deny of everything): denied, at the end of the tier at the latest.
    isolates = not netpol.covered_families(open_outside)
    return ClusterSummary(**base, isolates=isolates, open_outside=open_outside, allows=allows)

