"""The one way namespace views are built from raw Kubernetes objects (as the API serves them,
or as read from files): by the offline inventory, the live inventory's relists, and
`netguard audit`.

A view keeps only what the rules read (webhook/core/view.py): a namespace's labels, each policy
as a `PolicySummary`, the names of the LoadBalancer Services, and (for the periodic scan, when
given `labels.required`) which objects lack required label keys. The live inventory passes its own
`summarize` and `share` so that equal values are stored once (webhook/inventory/cluster.py).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping  # not typing's: isinstance on it is slow
from types import MappingProxyType
from typing import Any, Iterator, Callable, Iterable

from webhook.core import clusterpolicy
from webhook.core.clusterscope import ClusterSummary
from webhook.core.labels import is_load_balancer, missing_labels
from webhook.core.view import NamespaceView, PolicySummary
from webhook.inventory.objects import api_group

# The kinds that make up cluster state, as (API group, kind). The group matters: Calico's
# projectcalico.org NetworkPolicy has other semantics; it and the other cluster-wide and CNI
# policies are read by webhook/core/clusterpolicy.py (cluster_summaries below).
STATE_KINDS = {("", "Namespace"), ("", "Service"), ("networking.k8s.io", "NetworkPolicy")}

EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})
Summarize = Callable[[Mapping[str, Any]], PolicySummary]


def metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    # The exact-type test first: decoded JSON is plain dicts, and the ABC isinstance is slow.
    return metadata if type(metadata) is dict or isinstance(metadata, Mapping) else {}


def namespace_of(obj: Mapping[str, Any]) -> str:
    """The object's namespace; "default" when a manifest leaves it out, as kubectl does."""
    return str(metadata_of(obj).get("namespace") or "default")


def name_of(obj: Mapping[str, Any]) -> str:
    return str(metadata_of(obj).get("name") or "")


def state_kind(obj: Mapping[str, Any]) -> str | None:
    """Namespace, Service or NetworkPolicy when the object is one of the state kinds, else None."""
    kind = str(obj.get("kind") or "")
    return kind if (api_group(str(obj.get("apiVersion") or "")), kind) in STATE_KINDS else None


def label_value(value: Any) -> str:
    """A label value made a string, as decisions expect: the file reader keeps dates as strings,
    but objects handed in directly may still hold a date, number or boolean, and such a value
    copied into a patch by labels.fromNamespace would not serialise to JSON (or would not be a
    string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def namespace_labels(obj: Mapping[str, Any], keep: frozenset[str] | None = None) -> Mapping[str, str]:
    """The namespace's labels (only the keys in `keep`, when given), names interned."""
    labels = metadata_of(obj).get("labels")
    if not isinstance(labels, Mapping):
        return EMPTY_LABELS
    kept = {sys.intern(str(k)): sys.intern(label_value(v)) for k, v in labels.items()
            if keep is None or k in keep}
    return MappingProxyType(kept) if kept else EMPTY_LABELS


def labels_by_namespace(namespaces: Iterable[Mapping[str, Any]],
                        keep: frozenset[str] | None = None) -> dict[str, Mapping[str, str]]:
    return {sys.intern(name_of(ns)): namespace_labels(ns, keep) for ns in namespaces if name_of(ns)}


def policies_by_namespace(policies: Iterable[Mapping[str, Any]],
                          summarize: Summarize = PolicySummary.of) -> dict[str, dict[str, PolicySummary]]:
    found: dict[str, dict[str, PolicySummary]] = {}
    for policy in policies:
        found.setdefault(sys.intern(namespace_of(policy)), {})[sys.intern(name_of(policy))] = summarize(policy)
    return found


def load_balancers_by_namespace(services: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for service in services:
        if is_load_balancer(service):
            found.setdefault(sys.intern(namespace_of(service)), set()).add(sys.intern(name_of(service)))
    return found


Unlabelled = dict[tuple[str, str], tuple[str, ...]]


def unlabelled_by_namespace(kind: str, objects: Iterable[Mapping[str, Any]],
                            required: tuple[str, ...]) -> dict[str, Unlabelled]:
    """namespace -> {(kind, name): the keys of `required` the object lacks}, for objects of
    `kind` that lack any (NamespaceView.unlabelled). Nothing at all when nothing is required."""
    tally = UnlabelledTally(kind, required)
    for _ in tally.passing(objects):
        pass
    return tally.found


class UnlabelledTally:
    """unlabelled_by_namespace, taken in passing while another builder consumes the objects:
    a list is read once, page by page, and never held whole (a large cluster's raw Services
    are a GiB of dicts; their summaries a few MiB)."""

    def __init__(self, kind: str, required: tuple[str, ...]) -> None:
        self.kind, self.required = kind, required
        self.found: dict[str, Unlabelled] = {}

    def passing(self, objects: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for obj in objects:
            if self.required:
                missing = missing_labels(obj, self.required)
                if missing:
                    self.found.setdefault(sys.intern(namespace_of(obj)), {})[
                        (self.kind, sys.intern(name_of(obj)))] = missing
            yield obj


def build_views(namespaces: Iterable[Mapping[str, Any]], policies: Iterable[Mapping[str, Any]],
                services: Iterable[Mapping[str, Any]], *,
                keep_labels: frozenset[str] | None = None,
                required_labels: tuple[str, ...] = ()) -> dict[str, NamespaceView]:
    """One NamespaceView per namespace that holds an object or was listed itself. The lists say
    what each object is (list items from the API carry no `kind`); within a list, a later object
    of the same name replaces an earlier one. With `required_labels`, each view also records
    which of its Services and NetworkPolicies lack any of them."""
    policies, services = list(policies), list(services)
    labels = labels_by_namespace(namespaces, keep_labels)
    policy_maps = policies_by_namespace(policies)
    balancers = load_balancers_by_namespace(services)
    unlabelled = unlabelled_by_namespace("Service", services, required_labels)
    for ns, entries in unlabelled_by_namespace("NetworkPolicy", policies, required_labels).items():
        unlabelled.setdefault(ns, {}).update(entries)
    return {
        name: NamespaceView(name=name, labels=labels.get(name, EMPTY_LABELS),
                            policies=MappingProxyType(policy_maps.get(name, {})),
                            load_balancers=frozenset(balancers.get(name, ())), known=name in labels,
                            unlabelled=MappingProxyType(unlabelled[name]) if name in unlabelled else EMPTY_LABELS)
        for name in sorted(set(labels) | set(policy_maps) | set(balancers) | set(unlabelled))
    }


def cluster_summaries(objects: Iterable[Mapping[str, Any]]) -> tuple[ClusterSummary, ...]:
    """The summaries of the cluster-wide and CNI policies among `objects` (webhook/core/clusterpolicy.py);
    within them, a later object of the same kind, namespace and name replaces an earlier one."""
    found: dict[tuple[str, str, str], tuple[ClusterSummary, ...]] = {}
    for obj in objects:
        if clusterpolicy.is_cluster_policy(obj):
            summaries = clusterpolicy.summarize(obj)
            if summaries:
                found[(str(obj.get("apiVersion", "")).rpartition("/")[0] + "/" + str(obj.get("kind")),
                       summaries[0].namespace, name_of(obj))] = summaries
    return tuple(s for group in found.values() for s in group)


def replace_cluster(summaries: tuple[ClusterSummary, ...], obj: Mapping[str, Any],
                    deleted: bool) -> tuple[ClusterSummary, ...]:
    """`summaries` with those of `obj` (a cluster-wide or CNI policy) replaced by its current
    ones, or removed when it was `deleted`."""
    current = clusterpolicy.summarize(obj)
    if not current:
        return summaries
    kind, namespace, name = current[0].kind, current[0].namespace, name_of(obj)
    kept = tuple(s for s in summaries if not (s.kind == kind and s.namespace == namespace and
                                              (s.name == name or s.name.startswith(name + "#"))))
    return kept if deleted else kept + current


def dependents_view(views: Iterable[NamespaceView], summaries: tuple[ClusterSummary, ...]) -> NamespaceView:
    """The view a cluster-scoped request is decided on (namespace ""): its `dependents` are the
    namespaces that may hold LoadBalancers, each with the cluster-wide policies that apply."""
    attach = ClusterAttacher()
    return NamespaceView(name="", dependents=tuple(attach(v, summaries) for v in views
                                                   if v.may_hold_load_balancers()))


class ClusterAttacher:
    """A view with the cluster-wide and CNI policies that apply to its namespace, remembering per
    namespace the last view it composed: a LoadBalancer applied
    again and again (a GitOps sync) is decided on the same composed view, not a new copy each time.
    Bounded; a hit needs the very same base view and summaries (both immutable)."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._composed: dict[str, tuple[NamespaceView, tuple[ClusterSummary, ...], NamespaceView]] = {}
        self._index: tuple[tuple[ClusterSummary, ...], clusterpolicy.Index] = ((), clusterpolicy.Index(()))

    def __call__(self, view: NamespaceView, summaries: tuple[ClusterSummary, ...]) -> NamespaceView:
        if not summaries:
            return view.with_cluster(())
        hit = self._composed.get(view.name)
        if hit is not None and hit[0] is view and hit[1] is summaries:
            return hit[2]
        known, index = self._index
        if known is not summaries:
            index = clusterpolicy.Index(clusterpolicy.relevant(summaries))
            self._index = (summaries, index)
        composed = view.with_cluster(index.applying(view.name, view.labels))
        if len(self._composed) >= self._limit:
            self._composed = {}
        if self._limit:
            self._composed[view.name] = (view, summaries, composed)
        return composed


def build_views_of(objects: Iterable[Mapping[str, Any]],
                   required_labels: tuple[str, ...] = ()) -> dict[str, NamespaceView]:
    """build_views over a mixed list of objects that carry their kind (files, `check`), each view
    with the cluster-wide and CNI policies that apply to it; objects of other kinds are ignored."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {"Namespace": [], "NetworkPolicy": [], "Service": []}
    others = []
    for obj in objects:
        kind = state_kind(obj)
        if kind is not None:
            by_kind[kind].append(obj)
        elif clusterpolicy.is_cluster_policy(obj):
            others.append(obj)
    views = build_views(by_kind["Namespace"], by_kind["NetworkPolicy"], by_kind["Service"],
                        required_labels=required_labels)
    attach = ClusterAttacher(limit=0)
    summaries = cluster_summaries(others)
    return {name: attach(view, summaries) for name, view in views.items()}
