"""The offline inventory: cluster state from YAML files, kept current by what netguard allows.

This is the embedded default (no cluster needed). It is loaded from `--objects DIR`, read by
webhook/inventory/objects.py exactly as `netguard check` reads its manifests, and updated by each non-dry-run
Service or NetworkPolicy CREATE/UPDATE/DELETE that netguard allowed at the validating stage.
Each server worker keeps its own copy: with more than one worker, a change a request made is
seen only by the worker that answered it (the live inventory has no such limit).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping  # not typing's: isinstance on it is slow
from pathlib import Path
from typing import Any, Iterable

from webhook.core.decide import REVIEWED
from webhook.core.labels import is_load_balancer, missing_labels
from webhook.core.request import AdmissionRequest
from webhook.core.view import NamespaceView
from webhook.inventory.objects import STDIN, InputError, Manifest, read_manifests
from webhook.core import clusterpolicy
from webhook.core.kept import keep
from webhook.inventory.views import (ClusterAttacher, build_views_of, cluster_summaries, dependents_view, name_of,
                                     namespace_of, replace_cluster)
from webhook.wire.review import MalformedReview, check_object

# Operations that change what is stored (a CONNECT's object is not a stored one).
CHANGES = ("CREATE", "UPDATE", "DELETE")

# What the reader raises, under the name callers of the offline inventory (webhook/cli/main.py) catch:
# `problems` holds one line per problem, each naming the file and the line.
ObjectsError = InputError


def read_objects(root: str | Path) -> list[Mapping[str, Any]]:
    """Every Kubernetes object in the files at or below `root`, in file-name order."""
    if str(root) == STDIN:
        # Every server worker reads the objects again after the fork: stdin would be empty then.
        raise ObjectsError([f"{root}: the objects must be a file or folder, not stdin"])
    return [m.obj for m in read_manifests([str(root)], vet=_vet)]


def _vet(m: Manifest) -> list[str]:
    """The same shape checks a live request's objects get (webhook/wire/review.py): a Service or
    NetworkPolicy the apiserver would never hold must not become cluster state (a policy whose
    spec is a list once counted as a default-deny)."""
    try:
        check_object(m.group, m.kind, m.obj, "object")
    except MalformedReview as exc:
        return [f"{m.where}: {m.kind} {m.name}: {str(exc).removeprefix('object.')}"]
    return []


EMPTY_VIEWS_KEPT = 1024


class OfflineInventory:
    lags = False  # nothing to confirm live: see Inventory.lags
    def __init__(self, objects: Iterable[Mapping[str, Any]] = (), required_labels: Iterable[str] = ()) -> None:
        """`required_labels`: the keys of `labels.required`, so that views record which objects
        lack them (for the periodic scan)."""
        self._lock = threading.Lock()
        self._required = tuple(required_labels)
        objects = list(objects)
        # Cluster-wide and CNI policies (webhook/core/clusterpolicy.py): attached to each view as
        # it is handed out, so a namespace no object names yet is covered too.
        self._cluster = cluster_summaries(objects)
        self._attach = ClusterAttacher()
        self._views: dict[str, NamespaceView] = build_views_of(objects, self._required)
        self._empty: dict[str, NamespaceView] = {}

    @classmethod
    def from_path(cls, root: str | Path | None, required_labels: Iterable[str] = ()) -> "OfflineInventory":
        return cls(read_objects(root) if root else (), required_labels)

    def ready(self) -> bool:
        return True

    def view(self, namespace: str) -> NamespaceView:
        if not namespace:  # a cluster-scoped request: decided on the namespaces with LoadBalancers
            return dependents_view(list(self._views.values()), self._cluster)
        return self._attach(self._stored(namespace), self._cluster)

    def _stored(self, namespace: str) -> NamespaceView:
        view = self._views.get(namespace)
        if view is not None:
            return view
        # A namespace the files do not name reads as empty. The same empty view each time, so
        # what is worked out from a view once (its fingerprint, its cluster-wide policies) is
        # not worked out again on every request for it. Bounded: any namespace name can come.
        empty = self._empty.get(namespace)
        if empty is None:
            empty = keep(self._empty, namespace, NamespaceView(name=namespace), EMPTY_VIEWS_KEPT)
        return empty

    def confirm(self, namespace: str) -> NamespaceView:
        # Nothing lags here: the files and the observed requests are the whole truth.
        return self.view(namespace)

    def views(self) -> list[NamespaceView]:
        return [self._attach(v, self._cluster) for v in self._views.values()]

    def observe(self, req: AdmissionRequest) -> None:
        # Only what netguard reviews: a request for another group's NetworkPolicy is let
        # through unreviewed and must not become a policy here.
        if req.dry_run or req.sub_resource or req.operation not in CHANGES:
            return
        if (req.group, req.kind) in clusterpolicy.KINDS:  # guarded where they isolate; state anyway
            with self._lock:
                typed = {**req.current, "kind": req.kind,
                         "apiVersion": f"{req.group}/{str(req.current.get('apiVersion', 'v')).rpartition('/')[2]}"}
                self._cluster = replace_cluster(self._cluster, typed, deleted=req.operation == "DELETE")
            return
        if (req.group, req.kind) not in REVIEWED:
            return
        self._apply(req.current, req.kind, deleted=req.operation == "DELETE",
                    namespace=req.namespace or namespace_of(req.current))

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _apply(self, obj: Mapping[str, Any], kind: str, deleted: bool, namespace: str) -> None:
        """A Service or NetworkPolicy of `namespace` stored or deleted."""
        name = name_of(obj)
        if kind == "Service" and not self._required:
            # Most Service writes change nothing kept here (a re-apply, an edit of a LoadBalancer
            # that stays one): a view holds only whether each Service is a LoadBalancer. Read
            # without the lock: a racing write of the same Service leaves either order's state.
            known = self._views.get(namespace)
            if known is not None and (name in known.load_balancers) == (not deleted and is_load_balancer(obj)):
                return
        with self._lock:
            view = self._stored(namespace)
            if kind == "NetworkPolicy":
                view = view.without_policy(name) if deleted else view.with_policy(obj)
            else:
                view = view.with_load_balancer(name, not deleted and is_load_balancer(obj))
            if self._required:
                view = view.with_unlabelled(kind, name, () if deleted else missing_labels(obj, self._required))
            self._views[namespace] = view
