"""The objects that deploy netguard, as dicts: its namespace, RBAC, configuration, Service,
Deployment, PodDisruptionBudget, NetworkPolicies and the two webhook configurations.
Rendered and checked by webhook/cli/manifests.py.
"""

from __future__ import annotations

import math
from typing import Any

from webhook.core import reference
from webhook.inventory.kube import LIVE_READ_GETS, LIVE_READ_TIMEOUT

DEFAULT_NAMESPACE = "netguard-system"
DEFAULT_IMAGE = "netguard:latest"

NAME = "netguard"  # every object netguard deploys is called this, except the policies
TLS_SECRET = "netguard-tls"
CONFIG_MAP = "netguard-config"
PORT = 8443
CERTS_DIR = "/etc/netguard/certs"
CONFIG_DIR = "/etc/netguard/config"
CONFIG_FILE = "netguard.yaml"
UID = 10001

LABELS = {"app.kubernetes.io/name": NAME}
# The apiserver waits this long for an answer. A live read (LIVE_READ_GETS requests, each bounded
# by LIVE_READ_TIMEOUT) must fit with room to answer, so that netguard's own "could not confirm"
# denial, which says what to do, reaches the client rather than the apiserver's timeout.
WEBHOOK_TIMEOUT_SECONDS = math.ceil(LIVE_READ_GETS * sum(LIVE_READ_TIMEOUT)) + 2

# The objects that only make sense when netguard runs in the cluster; omitted with `url`.
IN_CLUSTER_KINDS = frozenset({
    "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
    "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy",
})

# Namespaces the webhooks are never called for: the control plane's own (so a netguard outage
# cannot block it) and netguard's (so netguard can always be repaired or redeployed). The other
# exemptions of the configuration (kube-public, kube-node-lease) are enforced by netguard itself.
_ALWAYS_SKIPPED = ("kube-system",)

# --------------------------------------------------------------------------- configuration

def config_yaml(namespace: str = DEFAULT_NAMESPACE) -> str:
    """netguard.yaml with every key at its default (ownNamespace = `namespace`), commented:
    generated from the settings' defaults (webhook/core/reference.py)."""
    return reference.defaults_yaml(namespace)


# --------------------------------------------------------------------------- objects

def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(LABELS)
    meta.update(extra)
    return meta


def _selector() -> dict[str, Any]:
    return {"matchLabels": dict(LABELS)}


def _namespace(ns: str) -> dict[str, Any]:
    meta = _meta(ns)
    # The Deployment meets the "restricted" Pod Security Standard; enforce it for the namespace.
    meta["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _rbac(ns: str) -> list[dict[str, Any]]:
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(NAME),
            "rules": [
                {"apiGroups": [""], "resources": ["namespaces", "services"], "verbs": list(read)},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": list(read)},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(NAME),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
        },
    ]


def _config_map(ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CONFIG_MAP, ns),
            "data": {CONFIG_FILE: config_yaml(ns)}}


def _service(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(NAME, ns),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(LABELS),
            "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
        },
    }


def _probe(path: str, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def _deployment(ns: str, image: str) -> dict[str, Any]:
    args = ["serve", "--bind", f"0.0.0.0:{PORT}", "--certs", CERTS_DIR,
            "--config", f"{CONFIG_DIR}/{CONFIG_FILE}", "--workers", "2"]
    container = {
        "name": NAME,
        "image": image,
        # IfNotPresent also for :latest, so an image loaded with `kind load` is used as is.
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz", 5),
        "livenessProbe": _probe("/healthz", 10),
        # Memory is limited; CPU is not, so throttling never adds latency to admission calls.
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Let the endpoint removal reach kube-apiserver before gunicorn stops accepting.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "volumeMounts": [
            {"name": "tls", "mountPath": CERTS_DIR, "readOnly": True},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod_spec = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 40,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Hard: the two replicas on different nodes. Soft: and in different zones when possible.
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": _selector(),
        }],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": _selector()},
        }]}},
        "containers": [container],
        "volumes": [
            # Mounted as a whole (no subPath), so a rotated certificate reaches the pod.
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
            {"name": "config", "configMap": {"name": CONFIG_MAP}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME, ns),
        "spec": {
            "replicas": 2,
            "selector": _selector(),
            # Never fewer ready replicas than wanted: the validating webhook fails closed.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec},
        },
    }


def _pdb(ns: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(NAME, ns),
            "spec": {"minAvailable": 1, "selector": _selector()}}


def _network_policy(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(name, ns), "spec": spec}


def _network_policies(ns: str) -> list[dict[str, Any]]:
    def tcp(port: int) -> dict[str, Any]:
        return {"protocol": "TCP", "port": port}

    return [
        # Ingress and Egress default-deny: netguard passes its own rule.
        _network_policy(ns, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        # kube-apiserver calls the webhook from an address that cannot be predicted: any source,
        # but only the webhook port (so this policy does not cancel the default-deny).
        _network_policy(ns, "netguard-allow-webhook", {
            "podSelector": _selector(), "policyTypes": ["Ingress"],
            "ingress": [{"ports": [tcp(PORT)]}],
        }),
        # The API server: 443 for the kubernetes Service, 6443 for its endpoints after DNAT.
        _network_policy(ns, "netguard-allow-apiserver", {
            "podSelector": _selector(), "policyTypes": ["Egress"],
            "egress": [{"ports": [tcp(443), tcp(6443)]}],
        }),
        _network_policy(ns, "netguard-allow-dns", {
            "podSelector": _selector(), "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "UDP", "port": 53}, tcp(53)]}],
        }),
    ]


def _client_config(ns: str, path: str, ca_bundle: str, url: str | None) -> dict[str, Any]:
    if url is not None:
        return {"url": f"{url}{path}", "caBundle": ca_bundle}
    return {"service": {"name": NAME, "namespace": ns, "path": path, "port": 443}, "caBundle": ca_bundle}


def _rule(group: str, resource: str, operations: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": ["v1"], "operations": list(operations),
            "resources": [resource], "scope": "Namespaced"}


def _webhook(name: str, client_config: dict[str, Any], rules: list[dict[str, Any]],
             ns: str, failure_policy: str) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": client_config,
        "rules": rules,
        "namespaceSelector": {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": [*_ALWAYS_SKIPPED, ns] if ns not in _ALWAYS_SKIPPED else list(_ALWAYS_SKIPPED),
        }]},
        "failurePolicy": failure_policy,
        "sideEffects": "None",
        "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
    }


def deployment_objects(ns: str, image: str) -> list[dict[str, Any]]:
    """Everything but the webhook configurations, in apply order."""
    return [_namespace(ns), *_rbac(ns), _config_map(ns), _service(ns), _deployment(ns, image), _pdb(ns),
            *_network_policies(ns)]


def webhook_configurations(ns: str, ca_bundle: str, url: str | None) -> list[dict[str, Any]]:
    def hook(name: str, path: str, rules: list[dict[str, Any]], failure_policy: str) -> dict[str, Any]:
        return _webhook(name, _client_config(ns, path, ca_bundle, url), rules, ns, failure_policy)

    create_update = ["CREATE", "UPDATE"]
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": _meta(NAME),
        "webhooks": [
            # loadbalancer-requires-default-deny (CREATE, UPDATE), required-labels (CREATE, UPDATE).
            hook("services.netguard.io", "/validate", [_rule("", "services", create_update)], "Fail"),
            # protect-default-deny (UPDATE, DELETE), required-labels (CREATE, UPDATE).
            hook("networkpolicies.netguard.io", "/validate",
                 [_rule("networking.k8s.io", "networkpolicies", ["CREATE", "UPDATE", "DELETE"])], "Fail"),
        ],
    }
    # Mutation only adds informational labels: an outage must not block every Service and
    # NetworkPolicy write on its account (the validating webhooks are the guard and fail closed).
    labels = hook("labels.netguard.io", "/mutate",
                  [_rule("", "services", create_update),
                   _rule("networking.k8s.io", "networkpolicies", create_update)], "Ignore")
    labels["reinvocationPolicy"] = "Never"
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": _meta(NAME),
        "webhooks": [labels],
    }
    return [validating, mutating]


