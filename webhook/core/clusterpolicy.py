"""Cluster-wide and CNI policies: which kinds netguard reads, and the one way each object becomes
the `ClusterSummary`s the rules read (docs/clusterpolicies.md; the semantics per family in
webhook/core/adminpolicy.py, calico.py and cilium.py, each citing its project's documents).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterable

from webhook.core import adminpolicy, calico, cilium
from webhook.core.clusterscope import CALICO_NAME_KEY, NAME_LABEL, ClusterSummary

NETWORK_POLICY_API = "policy.networking.k8s.io"
CALICO = "projectcalico.org"
CILIUM = "cilium.io"

# (API group, kind) -> (plural resource, namespaced), for every kind read here. Versions: the
# kinds' documented ones (v1alpha1 for AdminNetworkPolicy and BaselineAdminNetworkPolicy,
# v1alpha2 for ClusterNetworkPolicy, v3 for Calico, v2 for Cilium); the live inventory takes
# whichever version the cluster serves (discovery).
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    (NETWORK_POLICY_API, "AdminNetworkPolicy"): ("adminnetworkpolicies", False),
    (NETWORK_POLICY_API, "BaselineAdminNetworkPolicy"): ("baselineadminnetworkpolicies", False),
    (NETWORK_POLICY_API, "ClusterNetworkPolicy"): ("clusternetworkpolicies", False),
    (CALICO, "GlobalNetworkPolicy"): ("globalnetworkpolicies", False),
    (CALICO, "NetworkPolicy"): ("networkpolicies", True),
    (CILIUM, "CiliumClusterwideNetworkPolicy"): ("ciliumclusterwidenetworkpolicies", False),
    (CILIUM, "CiliumNetworkPolicy"): ("ciliumnetworkpolicies", True),
}
# The kinds that can isolate from outside traffic (and so are guarded): Calico's and Cilium's.
GUARDED = frozenset(k for k in KINDS if k[0] != NETWORK_POLICY_API)
# Those that can isolate egress only: guarded where egress.required (webhook/core/adminpolicy.py).
EGRESS_GUARDED = frozenset(k for k in KINDS if k[0] == NETWORK_POLICY_API)


def guarded(egress_required: bool) -> frozenset[tuple[str, str]]:
    """The (group, kind)s protect-default-deny reviews: every kind here where egress is
    required, else the ones that isolate from outside traffic."""
    return GUARDED | EGRESS_GUARDED if egress_required else GUARDED


def groups() -> list[str]:
    return sorted({group for group, _ in KINDS})


def versions_of(api_group: Any) -> list[str]:
    """The versions an APIGroup discovery document lists, its preferred one first."""
    if not isinstance(api_group, Mapping):
        return []
    versions = [str(v.get("version") or "") for v in api_group.get("versions") or () if isinstance(v, Mapping)]
    preferred = api_group.get("preferredVersion")
    preferred = str(preferred.get("version") or "") if isinstance(preferred, Mapping) else ""
    return sorted((v for v in versions if v), key=lambda v: v != preferred)


def served_in(group: str, version: str, resources: Any) -> dict[str, tuple[str, str]]:
    """kind -> (cluster-wide collection path, apiVersion) of the KINDS an APIResourceList serves."""
    found: dict[str, tuple[str, str]] = {}
    listed = resources.get("resources") if isinstance(resources, Mapping) else None
    for resource in listed or ():
        if not isinstance(resource, Mapping):
            continue
        kind, name = str(resource.get("kind") or ""), str(resource.get("name") or "")
        if KINDS.get((group, kind), ("",))[0] == name:
            found[kind] = (f"/apis/{group}/{version}/{name}", f"{group}/{version}")
    return found


def discover(get: Callable[[str], Any]) -> dict[str, tuple[str, str]]:
    """kind -> (collection path, apiVersion) of the KINDS served, from the discovery documents
    `get(path)` answers (None for a path not served), the preferred version first."""
    found: dict[str, tuple[str, str]] = {}
    for group in groups():
        for version in versions_of(get(f"/apis/{group}")):
            for kind, served in served_in(group, version, get(f"/apis/{group}/{version}")).items():
                found.setdefault(kind, served)
    return found


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


def is_cluster_policy(obj: Mapping[str, Any]) -> bool:
    return (_group(obj), str(obj.get("kind") or "")) in KINDS


def summarize(obj: Mapping[str, Any]) -> tuple[ClusterSummary, ...]:
    """The summaries of one object of KINDS (several for a Cilium policy of several rules); ()
    for any other object."""
    group, kind = _group(obj), str(obj.get("kind") or "")
    if (group, kind) not in KINDS:
        return ()
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    name = str(metadata.get("name") or "")
    namespaced = KINDS[(group, kind)][1]
    namespace = str(metadata.get("namespace") or "default") if namespaced else ""
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    if group == NETWORK_POLICY_API:
        return (adminpolicy.summarize(kind, name, spec),)
    if group == CALICO:  # named so that no one takes it for a networking.k8s.io NetworkPolicy
        return (calico.summarize(f"Calico {kind}", name, namespace, spec),)
    return cilium.summarize(kind, name, namespace, obj)


def policy_type(obj: Mapping[str, Any]) -> str:
    """The `netguard/policy-type` label of a cluster-wide or CNI policy, from what netguard counts
    it as: default-deny-ingress, -egress or -all where it isolates every pod it selects from
    outside the cluster in that direction (docs/clusterpolicies.md), else not-isolating (it
    allows, passes, or denies only in-cluster peers). Of the policy alone: an Admin-tier deny that
    another policy's Pass shadows is still labelled a default-deny (the denial says why it does
    not count)."""
    summaries = summarize(obj)
    ingress, egress = any(s.isolates for s in summaries), any(s.isolates_egress for s in summaries)
    if ingress and egress:
        return "default-deny-all"
    if ingress or egress:
        return "default-deny-ingress" if ingress else "default-deny-egress"
    return "not-isolating"


def relevant(summaries: Iterable[ClusterSummary]) -> tuple[ClusterSummary, ...]:
    """The summaries that can matter to some namespace: they cover every pod of some, and they
    isolate (or pass on) either way, open to outside addresses or have something to say. Sorted
    by label."""
    return tuple(sorted((s for s in summaries if not s.scope.nothing and (
        s.isolates or s.open_outside or s.note or s.allows
        or s.isolates_egress or s.open_egress or s.egress_note or s.passes_egress)), key=lambda s: s.label))


class Index:
    """Summaries by what a namespace must have for them to apply, so that a namespace is matched
    against the few that may, not all of them (1,000 cluster-wide policies x 100,000 namespaces
    in the periodic scan): by namespace name, by one label (key, value) a selector requires, and
    the rest, which are matched against every namespace."""

    def __init__(self, summaries: Iterable[ClusterSummary]) -> None:
        self.by_name: dict[str, list[ClusterSummary]] = {}
        self.by_label: dict[tuple[str, str], list[ClusterSummary]] = {}
        self.rest: list[ClusterSummary] = []
        for s in summaries:
            names = {s.namespace} if s.namespace else s.scope.names
            if names is not None:
                for name in names:
                    self.by_name.setdefault(name, []).append(s)
                continue
            keys = self._required(s)
            if keys:
                for key in keys:
                    self.by_label.setdefault(key, []).append(s)
            else:
                self.rest.append(s)

    @staticmethod
    def _required(s: ClusterSummary) -> list[tuple[str, str]]:
        """(key, value) pairs one of which a namespace must carry for the scope to match."""
        if s.scope.selector is not None and s.scope.selector[0]:
            return [s.scope.selector[0][0]]
        for op, key, values in s.scope.calico or ():
            if op in ("==", "in") and values:
                return [(key, v) for v in values]
        return []

    def applying(self, namespace: str, labels: Mapping[str, str]) -> tuple[ClusterSummary, ...]:
        full = {**labels, NAME_LABEL: namespace, CALICO_NAME_KEY: namespace}
        found = list(self.by_name.get(namespace, ()))
        for item in full.items():
            found.extend(self.by_label.get(item, ()))
        found.extend(self.rest)
        if not found:
            return ()
        unique = {id(s): s for s in found}.values()
        return tuple(sorted((s for s in unique if (not s.namespace or s.namespace == namespace)
                             and s.scope.matches(namespace, labels, full)), key=lambda s: s.label))


def applying(summaries: Iterable[ClusterSummary], namespace: str,
             labels: Mapping[str, str]) -> tuple[ClusterSummary, ...]:
    """The summaries that apply to every pod of `namespace` (with these labels), by label; pass
    `relevant(...)` ones when asking for many namespaces."""
    full = {**labels, NAME_LABEL: namespace}
    return tuple(sorted((s for s in summaries if (not s.namespace or s.namespace == namespace)
                         and s.scope.matches(namespace, labels, full)), key=lambda s: s.label))
