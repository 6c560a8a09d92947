"""Calico GlobalNetworkPolicy and NetworkPolicy (projectcalico.org/v3): when one isolates a
namespace's pods from traffic from outside the cluster, and their egress to outside the cluster
(docs/clusterpolicies.md, Calico).

- Resources: https://docs.tigera.io/calico/latest/reference/resources/globalnetworkpolicy
  and https://docs.tigera.io/calico/latest/reference/resources/networkpolicy
  (`selector` defaults to all(); a GlobalNetworkPolicy's empty `namespaceSelector` selects every
  namespace; `types` defaults to [Ingress] unless there are egress rules and no ingress rules;
  `doNotTrack` and `preDNAT` apply to host endpoints only).
- Rules: https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#rule
  (actions Allow, Deny, Log, Pass; rules are matched in order and the first Allow, Deny or Pass
  that matches decides; an endpoint selected by a policy of a tier whose rules match nothing is
  denied at the end of the tier). Ingress rules match the outside peer in `source`, egress rules
  in `destination` (`nets`, `notNets`); a rule without them matches every address.
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

from webhook.core import netpol, rulewalk
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
# The end of a rule that names the outside peer, by direction; the other end is the selected
# endpoint itself, and anything said of it (its ports, its labels) narrows the rule.
_PEER = {INGRESS: ("source", "destination"), EGRESS: ("destination", "source")}


def _matched(rule: Mapping[str, Any], direction: str) -> list | None:
    """The outside addresses the rule matches on every port of every selected pod: sources for
    ingress (`source.nets` minus `notNets`), destinations for egress (`destination.nets`), every
    address when the peer says nothing; None when it matches some outside traffic only (ports,
    protocols) or only what netguard cannot tell (endpoints, services, network sets, domains)."""
    peer_key, own_key = _PEER[direction]
    peer, own = rule.get(peer_key) or {}, rule.get(own_key) or {}
    if not isinstance(peer, Mapping) or not isinstance(own, Mapping):
        return None
    if any(rule.get(k) for k in _NARROWING) or any(own.get(k) for k in own) or \
            peer.get("ports") or peer.get("notPorts") or peer.get("domains"):
        return None
    if any(peer.get(k) for k in _IN_CLUSTER):
        return None  # endpoints (or network sets, which netguard does not read)
    nets = peer.get("nets") or list(netpol.EVERY_ADDRESS.values())
    found = []
    for cidr in nets:
        found.extend(netpol.block_ranges({"cidr": str(cidr), "except": peer.get("notNets") or ()}))
    return found


def _walk(spec: Mapping[str, Any], direction: str) -> rulewalk.Walk:
    rules = [r for r in spec.get(direction.lower()) or () if isinstance(r, Mapping)]
    return rulewalk.walk((str(r.get("action") or ""), _matched(r, direction)) for r in rules)


def summarize(kind: str, name: str, namespace: str, spec: Mapping[str, Any]) -> ClusterSummary:
    scope = scope_of(spec, namespace)
    base = dict(kind=kind, name=name, namespace=namespace, scope=scope)
    types = policy_types(spec)
    if scope.nothing or not types:
        return ClusterSummary(**base)
    found: dict[str, Any] = {}
    if INGRESS in types:
        ingress = _walk(spec, INGRESS)
        # Past the rules (or a Deny of everything): denied, at the end of the tier at the latest.
        found.update(isolates=ingress.denies_everything_else(denied_at_end=True),
                     open_outside=ingress.opened, allows=ingress.allows,
                     note="it passes outside traffic to the next tier" if ingress.ends == rulewalk.PASS else "")
    if EGRESS in types:
        egress = _walk(spec, EGRESS)
        found.update(isolates_egress=egress.denies_everything_else(denied_at_end=True), open_egress=egress.opened,
                     egress_note="its egress rules pass outside destinations to the next tier"
                     if egress.passes else "")
    return ClusterSummary(**base, **found)
