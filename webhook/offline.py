"""The offline inventory: cluster state from YAML files, kept current by what netguard allows.

This is the embedded default (no cluster needed). It is loaded from `--objects DIR`, read by
webhook.objects exactly as `netguard check` reads its manifests, and updated by each non-dry-run
Service or NetworkPolicy CREATE/UPDATE/DELETE that netguard allowed at the validating stage.
Each server worker keeps its own copy: with more than one worker, a change a request made is
seen only by the worker that answered it (the live inventory has no such limit).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping  # not typing's: isinstance on it is slow
from pathlib import Path
from typing import Any, Iterable

from webhook.decide import REVIEWED
from webhook.labels import is_load_balancer
from webhook.objects import STDIN, InputError, api_group, read_manifests
from webhook.review import AdmissionRequest
from webhook.state import NamespaceView

# The kinds that make up cluster state, as (API group, kind). The group matters: Calico's
# projectcalico.org NetworkPolicy has other semantics (its `action: Allow` rule is no allow-all).
STATE_KINDS = {("", "Namespace"), ("", "Service"), ("networking.k8s.io", "NetworkPolicy")}
# Operations that change what is stored (a CONNECT's object is not a stored one).
CHANGES = ("CREATE", "UPDATE", "DELETE")

# What the reader raises, under the name callers of the offline inventory (cli.py) catch:
# `problems` holds one line per problem, each naming the file and the line.
ObjectsError = InputError


def read_objects(root: str | Path) -> list[Mapping[str, Any]]:
    """Every Kubernetes object in the files at or below `root`, in file-name order."""
    if str(root) == STDIN:
        # Every server worker reads the objects again after the fork: stdin would be empty then.
        raise ObjectsError([f"{root}: the objects must be a file or folder, not stdin"])
    return [m.obj for m in read_manifests([str(root)])]


def _label_value(value: Any) -> str:
    """A label value made a string, as decisions expect: the reader keeps dates as strings, but
    objects handed in directly may still hold a date, number or boolean, and such a value copied
    into a patch by labels.fromNamespace would not serialise to JSON (or would not be a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class OfflineInventory:
    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, NamespaceView] = {}
        for obj in objects:
            self._apply(obj, api_group(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""),
                        deleted=False)

    @classmethod
    def from_path(cls, root: str | Path | None) -> "OfflineInventory":
        return cls(read_objects(root) if root else ())

    def ready(self) -> bool:
        return True

    def view(self, namespace: str) -> NamespaceView:
        return self._views.get(namespace) or NamespaceView(name=namespace)

    def confirm(self, namespace: str) -> NamespaceView:
        # Nothing lags here: the files and the observed requests are the whole truth.
        return self.view(namespace)

    def views(self) -> list[NamespaceView]:
        return list(self._views.values())

    def observe(self, req: AdmissionRequest) -> None:
        # Only what netguard reviews: a request for another group's NetworkPolicy is let
        # through unreviewed and must not become a policy here.
        if req.dry_run or (req.group, req.kind) not in REVIEWED or req.operation not in CHANGES:
            return
        self._apply(req.current, req.group, req.kind, deleted=req.operation == "DELETE",
                    namespace=req.namespace)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _apply(self, obj: Mapping[str, Any], group: str, kind: str, deleted: bool,
               namespace: str = "") -> None:
        if (group, kind) not in STATE_KINDS:
            return
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        name = str(metadata.get("name", ""))
        if kind == "Namespace":
            namespace = name
        namespace = namespace or str(metadata.get("namespace") or "default")
        load_balancer = kind == "Service" and not deleted and is_load_balancer(obj)
        if kind == "Service":
            # The usual case is a Service the view already has right (every re-apply of a
            # LoadBalancer, every ClusterIP): nothing changes, so take no lock that the other
            # threads would queue on. A concurrent change is simply ordered after this one.
            known = self._views.get(namespace)
            if known is not None and (name in known.load_balancers) == load_balancer:
                return
        with self._lock:
            view = self.view(namespace)
            if kind == "Namespace":
                labels = metadata.get("labels")
                labels = labels if isinstance(labels, Mapping) else {}
                view = NamespaceView(name=namespace,
                                     labels={str(k): _label_value(v) for k, v in labels.items()},
                                     policies=view.policies, load_balancers=view.load_balancers,
                                     known=True)
            elif kind == "NetworkPolicy":
                view = view.without_policy(name) if deleted else view.with_policy(obj)
            else:
                view = view.with_load_balancer(name, load_balancer)
            self._views[namespace] = view
