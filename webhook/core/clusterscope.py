"""What netguard keeps of one cluster-wide or CNI policy: which namespaces' every pod it covers,
whether it isolates them from traffic from outside the cluster, and whether it isolates their
egress to outside the cluster (docs/clusterpolicies.md).

A `ClusterSummary` is small and immutable: the families' semantics (webhook/core/adminpolicy.py,
calico.py, cilium.py) reduce each policy to one, so 1,000 cluster-wide policies cost kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from webhook.core import netpol

# The label the apiserver sets on every namespace, its name as value:
# https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name
NAME_LABEL = "kubernetes.io/metadata.name"

# One Calico selector term: (operator, key, values); parsed by webhook/core/calico.py.
CalicoTerm = tuple[str, str, tuple[str, ...]]
# The label Calico gives every namespace, its name as value (calico.py cites it).
CALICO_NAME_KEY = "projectcalico.org/name"


def terms_match(terms: tuple[CalicoTerm, ...], labels: Mapping[str, str], namespace: str) -> bool:
    full = {**labels, CALICO_NAME_KEY: namespace}
    for op, key, values in terms:
        present = key in full
        if op == "has" and not present or op == "!has" and present:
            return False
        if op in ("==", "in") and not (present and full[key] in values):
            return False
        if op in ("!=", "not in") and present and full[key] in values:
            return False
    return True



@dataclass(frozen=True, slots=True)
class Scope:
    """The namespaces every pod of which a policy selects. `names` None: any name; `selector` a
    Kubernetes label selector over the namespace's labels (None: any); `calico` Calico selector
    terms over them (None: any); `nothing`: it selects every pod of no namespace."""

    names: frozenset[str] | None = None
    selector: netpol.Selector | None = None
    calico: tuple[CalicoTerm, ...] | None = None
    nothing: bool = False

    def matches(self, namespace: str, labels: Mapping[str, str], full: Mapping[str, str] | None = None) -> bool:
        """`full`: `labels` with NAME_LABEL already added (callers matching many scopes)."""
        if self.nothing or (self.names is not None and namespace not in self.names):
            return False
        if self.selector is None and self.calico is None:
            return True
        if full is None:
            full = {**labels, NAME_LABEL: namespace}
        if self.selector is not None and not netpol.selector_matches(self.selector, full):
            return False
        if self.calico is not None:
            return terms_match(self.calico, full, namespace)
        return True


def frozen(selector: object) -> netpol.Selector | None:
    """A label selector made hashable, or None when it has not a label selector's shape (a
    policy of the wrong shape is never counted as isolation)."""
    if not isinstance(selector, Mapping):
        return None
    labels, expressions = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list) or \
            not all(isinstance(e, Mapping) and isinstance(e.get("values") or [], list) for e in expressions):
        return None
    return netpol.frozen_selector(selector)


NOWHERE = Scope(nothing=True)
EVERYWHERE = Scope()


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """One policy of another family, as the LoadBalancer rule and the guard read it.

    `isolates`: every pod of the namespaces in `scope` is default-deny for ingress from outside
    the cluster through it (and it admits not every outside address itself). `open_outside`: the
    outside addresses it admits to all those pods on every port (collapsed CIDRs), as a
    NetworkPolicy's PolicySummary.open_outside. `note`: why it looks like isolation but is not
    (said in the denial), "" when there is nothing to say. `allows`: it may admit some outside
    traffic on some ports (the reachability warning cannot tell which).

    The same for egress, to destinations outside the cluster: `isolates_egress`, `open_egress`
    (what every pod may reach on every port) and `egress_note`. `priority`: the precedence of an
    AdminNetworkPolicy (or Admin-tier ClusterNetworkPolicy) among its tier, lower first, None for
    every other kind; `passes_egress`: it passes every outside address of a family on to the tiers
    below (Pass) before any of its rules denies it, so that no Admin-tier deny of lower (or, the
    order being undefined, equal) precedence applies there (webhook/core/view.py)."""

    kind: str
    name: str
    namespace: str  # "" for a cluster-scoped policy
    scope: Scope
    isolates: bool = False
    open_outside: tuple[str, ...] = ()
    note: str = ""
    allows: bool = False
    isolates_egress: bool = False
    open_egress: tuple[str, ...] = ()
    egress_note: str = ""
    priority: int | None = None
    passes_egress: bool = False

    @property
    def label(self) -> str:
        """How messages name it: its kind and name (namespace/name when namespaced)."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def applies_to(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.namespace and self.namespace != namespace:
            return False
        return self.scope.matches(namespace, labels)
