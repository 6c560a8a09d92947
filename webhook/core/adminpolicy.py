"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) and
ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, Admin and Baseline tiers): they never
isolate a namespace from traffic from outside the cluster.

Their ingress peers can name only namespaces and pods, so however broadly an ingress rule
denies ("Deny from every namespace"), it denies in-cluster traffic only; a LoadBalancer's
traffic from outside matches none of their ingress rules:
- v1alpha1 AdminNetworkPolicyIngressPeer: `namespaces` or `pods`
  https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.AdminNetworkPolicyIngressPeer
- v1alpha2 ClusterNetworkPolicyIngressPeer: `namespaces` or `pods`
  https://github.com/kubernetes-sigs/network-policy-api/blob/main/apis/v1alpha2/clusternetworkpolicy_types.go
(egress peers may name `networks` and `nodes`; that is egress, not what a LoadBalancer brings).
netguard reads them to say so in a denial, where one looks like the isolation a namespace lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.clusterscope import NOWHERE, ClusterSummary, Scope, frozen

DENY = "Deny"
NOTE = ("its ingress peers can name only pods and namespaces, never addresses outside the "
        "cluster, so it does not isolate from what a LoadBalancer brings")


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


def summarize(kind: str, name: str, spec: Mapping[str, Any]) -> ClusterSummary:
    rules = spec.get("ingress") or []
    denies = any(isinstance(r, Mapping) and r.get("action") == DENY for r in rules)
    return ClusterSummary(kind=kind, name=name, namespace="", scope=subject_scope(spec.get("subject")),
                          isolates=False, note=NOTE if denies else "")
