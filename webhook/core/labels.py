"""The labels netguard derives, so Security and Ops can read an object without reading its spec.

Labels under the configured prefix are owned by netguard and always reflect the spec; labels
copied from the namespace are only added when missing (mutation must not fight GitOps: a changed
value puts an Argo CD app out of sync, an added one does not).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from webhook.core import netpol
from webhook.core.cloud import is_internal_load_balancer

EXPOSURE = "exposure"
POLICY_TYPE = "policy-type"

def service_type(service: Mapping[str, Any] | None) -> str:
    # The API defaults an omitted type to ClusterIP.
    return str(netpol.spec_of(service).get("type") or "ClusterIP")


def is_load_balancer(service: Mapping[str, Any] | None) -> bool:
    return service_type(service) == "LoadBalancer"


def exposure(service: Mapping[str, Any]) -> str:
    """public | private | node | cluster | external-name."""
    kind = service_type(service)
    if kind == "LoadBalancer":
        return "private" if is_internal_load_balancer(service) else "public"
    return {"NodePort": "node", "ExternalName": "external-name"}.get(kind, "cluster")


def policy_type(policy: Mapping[str, Any]) -> str:
    """What the policy does, in one word (docs/design.md, Labels):

    - default-deny-all | default-deny-ingress | default-deny-egress: it selects every pod of the
      namespace and allows nothing in that direction;
    - isolate-all | isolate-ingress | isolate-egress: it selects some pods and allows them nothing
      in that direction (they are isolated: only what other policies allow gets through);
    - allow: it allows some traffic in every direction it covers.
    """
    spec = netpol.spec_of(policy)
    denied = netpol.default_deny_directions(spec)
    if denied:
        return _direction_label("default-deny", denied)
    isolated = netpol.isolated_directions(spec)
    if isolated:
        return _direction_label("isolate", isolated)
    return "allow"


def _direction_label(prefix: str, directions: frozenset[str]) -> str:
    return _DIRECTION_LABELS[prefix, directions]


_DIRECTION_LABELS = {(prefix, directions): f"{prefix}-{word}" for prefix in ("default-deny", "isolate")
                     for directions, word in ((netpol.BOTH, "all"), (netpol.ONLY_INGRESS, "ingress"),
                                              (netpol.ONLY_EGRESS, "egress"))}


def metadata_map(obj: Mapping[str, Any] | None, field: str) -> Mapping[str, str]:
    metadata = (obj or {}).get("metadata") or {}
    return metadata.get(field) or {}


def missing_labels(obj: Mapping[str, Any] | None, required: Iterable[str]) -> tuple[str, ...]:
    """The keys of `required` the object's labels lack, in `required`'s order."""
    labels = metadata_map(obj, "labels")
    if not isinstance(labels, Mapping):
        labels = {}
    return tuple(key for key in required if key not in labels)


def owned_labels(kind: str, obj: Mapping[str, Any], prefix: str) -> dict[str, str]:
    if kind == "Service":
        return {f"{prefix}/{EXPOSURE}": exposure(obj)}
    if kind == "NetworkPolicy":
        return {f"{prefix}/{POLICY_TYPE}": policy_type(obj)}
    return {}


def desired_changes(kind: str, obj: Mapping[str, Any], prefix: str,
                    from_namespace: tuple[str, ...], namespace_labels: Mapping[str, str],
                    owned: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels to set: owned ones (`owned`, else owned_labels) that differ from the spec,
    copied ones that are missing."""
    current = metadata_map(obj, "labels")
    changes = {key: namespace_labels[key] for key in from_namespace
               if key not in current and key in namespace_labels}
    owned = owned_labels(kind, obj, prefix) if owned is None else owned
    # Owned labels last: they win over anything copied, so the result always reflects the spec.
    changes.update({k: v for k, v in owned.items() if current.get(k) != v})
    return changes
