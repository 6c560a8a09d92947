"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) and
ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, Admin and Baseline tiers): they never
isolate a namespace from traffic from outside the cluster, but their egress rules can isolate its
pods' egress to outside the cluster (docs/clusterpolicies.md).

Ingress: their peers can name only namespaces and pods, so however broadly an ingress rule
denies ("Deny from every namespace"), it denies in-cluster traffic only; a LoadBalancer's
traffic from outside matches none of their ingress rules:
- v1alpha1 AdminNetworkPolicyIngressPeer: `namespaces` or `pods`
  https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.AdminNetworkPolicyIngressPeer
- v1alpha2 ClusterNetworkPolicyIngressPeer: `namespaces` or `pods`
  https://github.com/kubernetes-sigs/network-policy-api/blob/main/apis/v1alpha2/clusternetworkpolicy_types.go
netguard reads them to say so in a denial, where one looks like the isolation a namespace lacks.

Egress: the peers add `networks` (CIDRs, "intended for representing entities that live outside
the cluster"), `nodes` and `domainNames` (Allow / Accept only), so a rule can deny every outside
address: `Deny` to `networks: [0.0.0.0/0, ::/0]` on every port (no `ports`, v1alpha1; no
`protocols`, v1alpha2). Rules are matched in order within a policy (webhook/core/rulewalk.py):
- AdminNetworkPolicy (and the Admin tier): `Allow` / `Accept` and `Deny` are final; `Pass` skips
  the rest of the tier and hands the traffic to the NetworkPolicies, then the baseline. Policies
  are checked by `priority`, lower first; two of one priority in undefined order. So a deny counts
  unless an applying policy of lower or equal priority passes a whole family first (view.py);
  an Allow counts like any allow (with the others it may cancel the default-deny).
  https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.AdminNetworkPolicySpec
- BaselineAdminNetworkPolicy (and the Baseline tier): applies to what no AdminNetworkPolicy or
  NetworkPolicy rule matched, so a NetworkPolicy's allows override its deny -- exactly what a
  default-deny NetworkPolicy is, so its deny of every outside address counts as one.
  https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.BaselineAdminNetworkPolicySpec
A rule that runs out without a verdict denies nothing (unlike a Calico tier). A peer with no field
netguard knows is read as matching nothing: never counted as a deny.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core import netpol, rulewalk
from webhook.core.clusterscope import NOWHERE, ClusterSummary, Scope, frozen

DENY = "Deny"
NOTE = ("its ingress peers can name only pods and namespaces, never addresses outside the "
        "cluster, so it does not isolate from what a LoadBalancer brings")
EGRESS_NOTE = ("no egress rule of it denies every outside address (networks 0.0.0.0/0 and ::/0) on "
               "every port before a rule allows or passes a whole address family")
PASS_NOTE = "its egress rules pass outside destinations on to the NetworkPolicies (Pass)"
BASELINE_PASS_NOTE = "its egress rules pass outside destinations on to the default, which allows them (Pass)"
ADMIN_KINDS = ("AdminNetworkPolicy",)
_ACTIONS = {"Accept": rulewalk.ALLOW}  # v1alpha2's name for Allow


def subject_scope(subject: Any) -> Scope:
    """The namespaces every pod of which a `subject` selects: `namespaces` (a namespace label
    selector), or `pods` with an empty podSelector (every pod of the namespaces its
    namespaceSelector selects); anything else selects every pod of none."""
    if not isinstance(subject, Mapping):
        return NOWHERE
    selector = None
    if "namespaces" in subject:
        selector = frozen(subject["namespaces"])
    elif isinstance(subject.get("pods"), Mapping) and frozen(subject["pods"].get("podSelector")) == ((), ()):
        selector = frozen(subject["pods"].get("namespaceSelector"))
    return NOWHERE if selector is None else Scope(selector=selector)


def _networks(rule: Mapping[str, Any]) -> list | None:
    """The outside addresses an egress rule matches on every port: its `networks` peers; []
    when it names only pods, namespaces and nodes; None when it names outside destinations on
    some ports only (`ports`, `protocols`) or by name (`domainNames`)."""
    ranges, named = [], False
    for peer in rule.get("to") or ():
        if not isinstance(peer, Mapping):
            continue
        for cidr in peer.get("networks") or ():
            ranges.extend(netpol.block_ranges({"cidr": str(cidr)}))
        named = named or bool(peer.get("domainNames"))
    if _some_ports(rule.get("ports")) or rule.get("protocols"):
        return None if ranges or named else []
    return None if named and not ranges else ranges


def _some_ports(ports: Any) -> bool:
    """A rule's `ports` names some ports only: a list (the current v1alpha1), or the earlier
    v1alpha1 object unless it is `allPorts: true`."""
    if isinstance(ports, Mapping):
        return not (ports.get("allPorts") is True and not ports.get("list"))
    return bool(ports)


def _egress(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    rules = [r for r in spec.get("egress") or () if isinstance(r, Mapping)]
    if not rules:
        return {}
    actions = [_ACTIONS.get(str(r.get("action") or ""), str(r.get("action") or "")) for r in rules]
    found = rulewalk.walk(zip(actions, (_networks(r) for r in rules)))
    isolates = found.denies_everything_else(denied_at_end=False)
    admin = kind in ADMIN_KINDS or (kind == "ClusterNetworkPolicy" and spec.get("tier") == "Admin")
    priority = spec.get("priority")
    if admin and not (isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 1000):
        isolates, priority = False, 0  # no shape the API takes: never a deny, and first for its passes
    passes = BASELINE_PASS_NOTE if not admin else PASS_NOTE
    note = "" if isolates else passes if found.passes else EGRESS_NOTE if DENY in actions else ""
    return dict(isolates_egress=isolates, open_egress=found.opened, egress_note=note,
                priority=priority if admin else None, passes_egress=admin and found.passes)


def summarize(kind: str, name: str, spec: Mapping[str, Any]) -> ClusterSummary:
    rules = spec.get("ingress") or []
    denies = any(isinstance(r, Mapping) and r.get("action") == DENY for r in rules)
    return ClusterSummary(kind=kind, name=name, namespace="", scope=subject_scope(spec.get("subject")),
                          isolates=False, note=NOTE if denies else "", **_egress(kind, spec))
