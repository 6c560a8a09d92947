"""Shared test helpers: the recorded AdmissionReviews and a small AdmissionReview v1 factory.

`load_fixture(name)` returns the body a real kube-apiserver sent (tests/fixtures/apiserver-reviews).
`make_review(**overrides)` builds one for a Service or NetworkPolicy with readable overrides:

    make_review(operation="UPDATE", old=service("web", type="ClusterIP"),
                obj=service("web", type="LoadBalancer"), dry_run=True)

Objects are built with `service(...)`, `policy(...)` and `namespace(...)`; settings with
`settings(...)`, which goes through `dataclasses.replace(default_settings(), ...)`.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from webhook.core.options import Action
from webhook.core.rules.loadbalancer import DryRunMode
from webhook.core.settings import Settings, default_settings
from webhook.core.view import NamespaceView
from webhook.inventory.views import build_views_of
from webhook.core.request import AdmissionRequest
from webhook.wire.review import parse_review

FIXTURES = Path(__file__).parent / "fixtures" / "apiserver-reviews"

# request.kind / request.resource of the kinds tests send.
KINDS: Mapping[str, tuple[str, str, str]] = {
    "Service": ("", "v1", "services"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
    "Pod": ("", "v1", "pods"),
    "ConfigMap": ("", "v1", "configmaps"),
    "Namespace": ("", "v1", "namespaces"),
}

_MISSING: Any = object()
_uids = itertools.count(1)


# --------------------------------------------------------------------------- recorded reviews


def fixture_names(stage: str | None = None) -> list[str]:
    """Recorded file names (without .json) in the order the apiserver sent them."""
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    if stage is not None:
        names = [n for n in names if n.split("-")[1] == stage]
    return names


def load_recording(name: str) -> dict[str, Any]:
    """The whole recording: `path`, `headers` and `body`. `name` may omit `.json`."""
    path = FIXTURES / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def load_fixture(name: str) -> dict[str, Any]:
    """The recorded AdmissionReview body (a fresh copy each call: tests may change it)."""
    return load_recording(name)["body"]


# --------------------------------------------------------------------------- objects


def _metadata(name: str, namespace: str | None, labels: Mapping[str, str] | None,
              annotations: Mapping[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels is not None:
        metadata["labels"] = dict(labels)
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return metadata


def service(name: str = "web", *, type: str | None = "ClusterIP", namespace: str = "shop",
            labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
            **spec: Any) -> dict[str, Any]:
    """A Service; `type=None` leaves spec.type out (the API then defaults it to ClusterIP)."""
    body: dict[str, Any] = {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                            "selector": {"app": name}}
    if type is not None:
        body["type"] = type
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _metadata(name, namespace, labels, annotations), "spec": body}


def policy(name: str = "default-deny", spec: Mapping[str, Any] | None = None, *,
           namespace: str = "shop", labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A NetworkPolicy; the default spec (`podSelector: {}` alone) is an ingress default-deny."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _metadata(name, namespace, labels, None),
            "spec": copy.deepcopy(dict(spec)) if spec is not None else {"podSelector": {}}}


def namespace(name: str = "shop", labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(name, None, labels, None)}


def _default_object(kind: str, name: str | None, ns: str) -> dict[str, Any]:
    if kind == "Service":
        return service(name or "web", namespace=ns)
    if kind == "NetworkPolicy":
        return policy(name or "default-deny", namespace=ns)
    return {"apiVersion": "v1", "kind": kind, "metadata": _metadata(name or "thing", ns, None, None)}


# --------------------------------------------------------------------------- reviews


def make_review(*, kind: str = "Service", operation: str = "CREATE", namespace: str = "shop",
                name: str | None = None, obj: Any = _MISSING, old: Any = _MISSING,
                dry_run: bool = False, uid: str | None = None, group: str | None = None,
                user: str = "tester", field_manager: str = "kubectl-client-side-apply",
                api_version: str = "admission.k8s.io/v1") -> dict[str, Any]:
    """An AdmissionReview v1 as kube-apiserver sends it.

    Defaults: CREATE of a ClusterIP Service `web` in `shop`. `obj` defaults to a plain object of
    `kind` on CREATE/UPDATE and to None on DELETE; `old` defaults to a copy of `obj` on UPDATE,
    to that plain object on DELETE, and to None on CREATE. Pass `obj=None`/`old=None` explicitly
    to leave one out. `name` defaults to the object's own name.
    """
    if obj is _MISSING:
        obj = _default_object(kind, name, namespace) if operation in ("CREATE", "UPDATE") else None
    if old is _MISSING:
        if operation == "UPDATE":
            old = copy.deepcopy(obj)
        elif operation == "DELETE":
            old = _default_object(kind, name, namespace)
        else:
            old = None
    if name is None:
        for source in (obj, old):
            if isinstance(source, Mapping) and isinstance(source.get("metadata"), Mapping):
                name = source["metadata"].get("name")
                break
    api_group, version, resource = KINDS.get(kind, ("", "v1", kind.lower() + "s"))
    if group is not None:
        api_group = group
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                    "DELETE": "DeleteOptions"}.get(operation, "CreateOptions")
    options: dict[str, Any] = {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"}
    if operation != "DELETE":
        options["fieldManager"] = field_manager
    if dry_run:
        options["dryRun"] = ["All"]
    request: dict[str, Any] = {
        "uid": uid if uid is not None else f"00000000-0000-4000-8000-{next(_uids):012d}",
        "kind": {"group": api_group, "version": version, "kind": kind},
        "resource": {"group": api_group, "version": version, "resource": resource},
        "requestKind": {"group": api_group, "version": version, "kind": kind},
        "requestResource": {"group": api_group, "version": version, "resource": resource},
        "name": name or "",
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": copy.deepcopy(obj),
        "oldObject": copy.deepcopy(old),
        "dryRun": dry_run,
        "options": options,
    }
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def make_request(**overrides: Any) -> AdmissionRequest:
    """`parse_review(make_review(**overrides))`: the parsed request the decision core takes."""
    return parse_review(make_review(**overrides))


def fixture_request(name: str) -> AdmissionRequest:
    return parse_review(load_fixture(name))


# --------------------------------------------------------------------------- views


def view_of(objects: Iterable[Mapping[str, Any]] = (), namespace: str = "shop") -> NamespaceView:
    """The one way tests build a namespace view: from raw objects, exactly as the inventories and
    `netguard audit` build theirs (webhook/inventory/views.py)."""
    return build_views_of(objects).get(namespace) or NamespaceView(name=namespace)


# --------------------------------------------------------------------------- settings


def settings(*, actions: Mapping[str, str] | None = None, dry_run: str | None = None,
             prefix: str | None = None, from_namespace: tuple[str, ...] | None = None,
             required: tuple[str, ...] | None = None, **fields: Any) -> Settings:
    """default_settings() with overrides: `actions={"required-labels": "warn"}`,
    `dry_run="warn"` (loadbalancer rule), label settings, or any Settings field."""
    base = default_settings()
    rules = dict(base.rules)
    for rule, action in (actions or {}).items():
        rules[rule] = rules[rule].replace(action=Action(action))
    if dry_run is not None:
        name = "loadbalancer-requires-default-deny"
        rules[name] = rules[name].replace(dry_run=DryRunMode(dry_run))
    labels = base.labels
    label_changes = {k: v for k, v in (("prefix", prefix), ("from_namespace", from_namespace),
                                       ("required", required)) if v is not None}
    if label_changes:
        labels = dataclasses.replace(labels, **label_changes)
    return dataclasses.replace(base, rules=rules, labels=labels, **fields)


__all__ = [
    "FIXTURES", "fixture_names", "fixture_request", "load_fixture",
    "load_recording", "make_request", "make_review", "namespace", "policy", "service", "settings", "view_of",
]
