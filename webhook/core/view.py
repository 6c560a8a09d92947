"""What decisions know of a namespace: a slim, immutable index, not client model objects.

An inventory (offline or live) hands out one `NamespaceView` per decision. It keeps only what the
rules need, so 30,000 policies cost megabytes, not hundreds of them (bench/inventory_memory.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from webhook.core import netpol
from webhook.core.clusterscope import ClusterSummary

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_FAMILIES: frozenset[str] = frozenset()


def _opening(policies: Iterable[tuple[str, tuple[str, ...]]]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The policies, (name, open ranges), whose ranges together cover every address of a family,
    and those families: policies are additive, so together they cancel a default-deny."""
    opening = [(name, ranges) for name, ranges in policies if ranges]
    if not opening:
        return (), _NO_FAMILIES
    families = netpol.covered_families(r for _, ranges in opening for r in ranges)
    names = tuple(sorted(name for name, ranges in opening
                         if families & netpol.covered_families_of_any(ranges)))
    return names, families


def egress_isolating(cluster: Iterable[ClusterSummary]) -> list[ClusterSummary]:
    """The cluster-wide and CNI policies that isolate the namespace's egress to outside the
    cluster. An Admin-tier deny (a `priority`) does not where an applying Admin-tier policy
    of lower or equal priority passes a whole family on first (webhook/core/adminpolicy.py)."""
    cluster = list(cluster)
    passing = [c.priority for c in cluster if c.passes_egress and c.priority is not None]
    return [c for c in cluster if c.isolates_egress and
            (c.priority is None or not any(p <= c.priority for p in passing))]


@dataclass(frozen=True, slots=True)
class PolicySummary:
    name: str
    default_deny: frozenset[str]  # directions it denies by default
    # What it admits from outside the cluster to every pod on every port (collapsed CIDRs): with
    # the other policies' (they are additive), it may cancel a default-deny for outside traffic.
    open_outside: tuple[str, ...]
    # For the reachability warning: which pods it selects, and the ports on which it admits
    # traffic from outside the cluster (netpol.external_ingress).
    pod_selector: netpol.Selector = ((), ())
    external_ingress: tuple = ()
    # The same as open_outside for egress: the outside addresses every pod may reach on every port.
    open_outside_egress: tuple[str, ...] = ()

    @classmethod
    def of(cls, policy: Mapping[str, Any]) -> "PolicySummary":
        spec = netpol.spec_of(policy)
        metadata = policy.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        return cls(name=str(name or ""),
                   default_deny=netpol.default_deny_directions(spec),
                   open_outside=netpol.open_outside_ranges(spec),
                   pod_selector=netpol.frozen_selector(spec.get("podSelector")),
                   external_ingress=netpol.external_ingress(spec),
                   open_outside_egress=netpol.open_outside_ranges(spec, netpol.EGRESS))


@dataclass(frozen=True, slots=True, weakref_slot=True)  # kept answers refer to views weakly
class NamespaceView:
    """One namespace as an inventory last saw it. `known` is False when the namespace itself
    was never seen (its labels are then unknown, not empty). `complete` is False for the view of
    a namespace whose state could not be read at all (`unknown`): it may hold LoadBalancer
    Services nobody could list, and the rules decide on the worst it could hold."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    policies: Mapping[str, PolicySummary] = field(default_factory=lambda: _EMPTY)
    load_balancers: frozenset[str] = frozenset()
    # The cluster-wide and CNI policies (webhook/core/clusterpolicy.py) that apply to every pod
    # of the namespace, sorted by label: an isolating one counts as a default-deny.
    cluster: tuple[ClusterSummary, ...] = ()
    # Only in the view of cluster-scoped requests (namespace ""): the views of the namespaces
    # that may hold LoadBalancers, which a cluster-wide policy's change is decided on.
    dependents: tuple["NamespaceView", ...] = field(default=(), compare=False)
    known: bool = False
    complete: bool = True
    # The Services and NetworkPolicies that lack keys of `labels.required`, (kind, name) -> the
    # keys they lack: what the periodic scan reports for required-labels. Only an inventory told
    # the required keys keeps them (the server's); admission reads the request's own labels, so
    # they take no part in comparing views.
    unlabelled: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=lambda: _EMPTY, compare=False)
    # Stamps for the audit log: they say where the view came from, not what it holds, so they
    # take no part in comparing views (`fingerprint`).
    resource_version: str = field(default="", compare=False)  # of the newest object it was built from
    source: str = field(default="cache", compare=False)  # "cache" or "live"
    # Worked out once when the view is built (views never change): every LoadBalancer decision
    # reads it, and a view is read by many decisions.
    _ingress_guards: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _cancelling: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _open_families: frozenset[str] = field(init=False, repr=False, compare=False)
    # The same for egress (PolicySummary.open_outside_egress); empty for almost every namespace.
    _egress_cancelling: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _egress_open_families: frozenset[str] = field(init=False, repr=False, compare=False)
    # `fingerprint`, made when first asked for: the offer cache and the live confirmation key on it.
    _fingerprint: "tuple[Any, ...] | None" = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        guards = cancelling = egress_cancelling = ()
        families = egress_families = _NO_FAMILIES
        if self.policies or self.cluster:
            # Cluster-wide and CNI policies count as far as they isolate (docs/clusterpolicies.md).
            guards = tuple(sorted([p.name for p in self.policies.values() if netpol.INGRESS in p.default_deny]
                                  + [c.label for c in self.cluster if c.isolates]))
            cancelling, families = _opening([*((p.name, p.open_outside) for p in self.policies.values()),
                                             *((c.label, c.open_outside) for c in self.cluster)])
            egress_cancelling, egress_families = _opening(
                [*((p.name, p.open_outside_egress) for p in self.policies.values()),
                 *((c.label, c.open_egress) for c in self.cluster)])
        object.__setattr__(self, "_ingress_guards", guards)
        object.__setattr__(self, "_cancelling", cancelling)
        object.__setattr__(self, "_open_families", families)
        object.__setattr__(self, "_egress_cancelling", egress_cancelling)
        object.__setattr__(self, "_egress_open_families", egress_families)

    @classmethod
    def unknown(cls, name: str) -> "NamespaceView":
        """A namespace whose state could not be read: no policies known, and perhaps some
        LoadBalancer Services."""
        return cls(name=name, complete=False)

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """What the view holds, as a hashable value: two views with equal fingerprints give
        every rule the same answer, whatever their resourceVersion or source."""
        made = self._fingerprint
        if made is None:  # a view never changes: made once
            made = (frozenset(self.labels.items()), frozenset(self.policies.items()),
                    self.load_balancers, self.cluster, self.known, self.complete,
                    tuple(d.fingerprint for d in self.dependents))
            object.__setattr__(self, "_fingerprint", made)
        return made

    def may_hold_load_balancers(self) -> bool:
        return bool(self.load_balancers) or not self.complete

    def default_deny_policies(self, direction: str = netpol.INGRESS) -> list[str]:
        if direction == netpol.INGRESS:
            return list(self._ingress_guards)
        # Asked only where egress.required: worked out when asked, not kept in every view.
        return sorted([p.name for p in self.policies.values() if direction in p.default_deny]
                      + [c.label for c in egress_isolating(self.cluster)])

    def cancelling_policies(self, direction: str = netpol.INGRESS) -> list[str]:
        """The policies that together admit every outside address (of IPv4 or IPv6) to every pod
        on every port: they cancel any ingress default-deny for a LoadBalancer's traffic. For
        egress: the policies that together let every pod reach every outside address of a
        family on every port, cancelling an egress default-deny."""
        return list(self._cancelling if direction == netpol.INGRESS else self._egress_cancelling)

    def open_families(self, direction: str = netpol.INGRESS) -> frozenset[str]:
        """The address families every address of which reaches every pod on every port (for
        egress: every pod may reach on every port)."""
        return self._open_families if direction == netpol.INGRESS else self._egress_open_families

    def not_isolating(self, directions: Iterable[str] = (netpol.INGRESS,)) -> list[tuple[str, str]]:
        """(label, why) of the cluster-wide and CNI policies that look like isolation but do not
        isolate the namespace from outside the cluster (for each of `directions`): a denial says
        why they do not count."""
        directions = tuple(directions)
        found = [(c.label, c.note) for c in self.cluster if c.note and not c.isolates] \
            if netpol.INGRESS in directions else []
        if netpol.EGRESS in directions and self.cluster:
            counted = {id(c) for c in egress_isolating(self.cluster)}
            first = min((c.priority for c in self.cluster if c.passes_egress and c.priority is not None), default=None)
            for c in self.cluster:
                if c.isolates_egress and id(c) not in counted:
                    found.append((c.label, f"a policy of priority {first}, checked no later than its "
                                           f"{c.priority}, passes outside egress on to the NetworkPolicies "
                                           "first (Pass)"))
                elif c.egress_note and not c.isolates_egress:
                    found.append((c.label, c.egress_note))
        return found

    def cluster_may_allow(self) -> bool:
        """Whether a cluster-wide or CNI policy may admit outside traffic on some ports: their
        ports netguard does not compare with a Service's (the reachability warning keeps quiet)."""
        return any(c.allows or c.open_outside or c.isolates for c in self.cluster)

    def with_cluster(self, summaries: tuple[ClusterSummary, ...]) -> "NamespaceView":
        return self if summaries == self.cluster else replace(self, cluster=summaries)

    def with_policy(self, policy: Mapping[str, Any]) -> "NamespaceView":
        summary = PolicySummary.of(policy)
        return replace(self, policies=MappingProxyType({**self.policies, summary.name: summary}))

    def without_policy(self, name: str) -> "NamespaceView":
        return replace(self, policies=MappingProxyType(
            {k: v for k, v in self.policies.items() if k != name}))

    def with_unlabelled(self, kind: str, name: str, missing: tuple[str, ...]) -> "NamespaceView":
        """The view with object `kind`/`name` lacking the `missing` label keys (none: it lacks
        none, or it is gone)."""
        key = (kind, name)
        if self.unlabelled.get(key, ()) == missing:
            return self  # nothing changes: keep the view (and skip the copy)
        kept = {k: v for k, v in self.unlabelled.items() if k != key}
        if missing:
            kept[key] = missing
        return replace(self, unlabelled=MappingProxyType(kept) if kept else _EMPTY)

    def with_load_balancer(self, name: str, is_load_balancer: bool) -> "NamespaceView":
        if (name in self.load_balancers) == is_load_balancer:
            return self  # nothing changes: keep the view (and skip the copy)
        names = self.load_balancers | {name} if is_load_balancer else self.load_balancers - {name}
        return replace(self, load_balancers=frozenset(names))
