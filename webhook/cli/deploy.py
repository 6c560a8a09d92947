"""The objects that deploy netguard, as dicts: its namespace, RBAC, configuration, Service,
Deployment, PodDisruptionBudget, ResourceQuota and NetworkPolicies (the two webhook
configurations are in webhook/cli/webhooks.py). Rendered and checked by webhook/cli/manifests.py.
"""

from __future__ import annotations

import math
from typing import Any

from webhook.cli.webhooks import LABELS, NAME
from webhook.core import reference
from webhook.inventory.kube import LIVE_READ_GETS, LIVE_READ_TIMEOUT
from webhook.serve.version import version

DEFAULT_NAMESPACE = "netguard-system"
IMAGE_REPOSITORY = "netguard"
# Critical for the cluster: while netguard is down, Service and NetworkPolicy writes are refused
# (the validating webhooks fail closed), so its pods are the last to be preempted or evicted.
DEFAULT_PRIORITY_CLASS = "system-cluster-critical"
# The oldest Kubernetes the manifests are written and checked for (tests/cli/test_kube_schemas.py).
MIN_KUBERNETES = "1.28"

TLS_SECRET = "netguard-tls"
CONFIG_MAP = "netguard-config"
PORT = 8443
METRICS_PORT = 8080  # plain HTTP: /healthz, /readyz and /metrics for kubelet probes and Prometheus
CERTS_DIR = "/etc/netguard/certs"
CONFIG_DIR = "/etc/netguard/config"
CONFIG_FILE = "netguard.yaml"
UID = 10001

# The apiserver waits this long for an answer. A live read (LIVE_READ_GETS requests, each bounded
# by LIVE_READ_TIMEOUT) must fit with room to answer, so that netguard's own "could not confirm"
# denial, which says what to do, reaches the client rather than the apiserver's timeout.
WEBHOOK_TIMEOUT_SECONDS = math.ceil(LIVE_READ_GETS * sum(LIVE_READ_TIMEOUT)) + 2

# The objects that only make sense when netguard runs in the cluster; omitted with `url`.
IN_CLUSTER_KINDS = frozenset({
    "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
    "Service", "Deployment", "PodDisruptionBudget", "ResourceQuota", "NetworkPolicy",
})


def default_image() -> str:
    """netguard's image at this package's version, never `latest`: `netguard:0.1.0`. A PEP 440
    local version (`0+unknown`) has a '+', which an image tag cannot hold: it becomes '-'."""
    return f"{IMAGE_REPOSITORY}:{version().replace('+', '-')}"

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
    # The Deployment meets the "restricted" Pod Security Standard; enforce it for the namespace,
    # as that standard stood in the oldest Kubernetes supported, so that an upgrade of the
    # cluster never changes what is enforced here; warn by the latest one, to see it coming.
    meta["labels"].update({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": f"v{MIN_KUBERNETES}",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
    })
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _cluster_policy_resources() -> dict[str, set[str]]:
    from webhook.core.clusterpolicy import KINDS

    found: dict[str, set[str]] = {}
    for (group, _), (resource, _) in KINDS.items():
        found.setdefault(group, set()).add(resource)
    return dict(sorted(found.items(), key=lambda item: ["policy.networking.k8s.io", "projectcalico.org",
                                                        "cilium.io"].index(item[0])))


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
                # The cluster-wide and CNI policies (webhook/inventory/clusterwatch.py), where served.
                *({"apiGroups": [group], "resources": sorted(resources), "verbs": ["list", "watch"]}
                  for group, resources in _cluster_policy_resources().items()),
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


def _config_map(ns: str, config_text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CONFIG_MAP, ns),
            "data": {CONFIG_FILE: config_text}}


def _service(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(NAME, ns),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(LABELS),
            "ports": [
                {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                # Plain HTTP for Prometheus (and anyone checking health) inside the cluster.
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def _probe(path: str, period: int, failures: int = 3) -> dict[str, Any]:
    # On the plain-HTTP port: the kubelet presents no client certificate, so probes of the
    # webhook port would fail as soon as `--client-ca` turns on mutual TLS there.
    return {
        "httpGet": {"path": path, "port": "metrics", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _deployment(ns: str, image: str, priority_class: str | None) -> dict[str, Any]:
    args = ["serve", "--bind", f"0.0.0.0:{PORT}", f"--metrics-bind=0.0.0.0:{METRICS_PORT}",
            "--certs", CERTS_DIR, "--config", f"{CONFIG_DIR}/{CONFIG_FILE}", "--workers", "2"]
    container = {
        "name": NAME,
        "image": image,
        # A versioned tag never changes, so the nodes' copy is good (and `kind load` works).
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        # Liveness waits until the server answered once (up to 2 s x 30 = 60 s to start), so a
        # slow start on a loaded node is not killed; readiness then gates the Service.
        "startupProbe": _probe("/healthz", 2, failures=30),
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
    pod_spec: dict[str, Any] = {
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
        "nodeSelector": {"kubernetes.io/os": "linux"},  # the image is a Linux one
        "containers": [container],
        "volumes": [
            # Mounted as a whole (no subPath), so a rotated certificate reaches the pod.
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
            {"name": "config", "configMap": {"name": CONFIG_MAP}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
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


def _critical_pods_quota(ns: str) -> dict[str, Any]:
    """Lets the namespace run pods of the system-* priority classes: an API server whose Priority
    admission plugin limits them (`limitedResources`, as on several managed offerings) admits
    such pods only in namespaces with a matching quota. The limit is a bound, not a need."""
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(f"{NAME}-critical-pods", ns),
            "spec": {"hard": {"pods": "10"}, "scopeSelector": {"matchExpressions": [
                {"operator": "In", "scopeName": "PriorityClass", "values": [DEFAULT_PRIORITY_CLASS]}]}}}


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
        # Plain HTTP: from pods of the cluster only (Prometheus), never from outside addresses.
        # The kubelet's probes need no rule: traffic from the pod's own node is always allowed.
        _network_policy(ns, "netguard-allow-metrics", {
            "podSelector": _selector(), "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [tcp(METRICS_PORT)]}],
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


def deployment_objects(ns: str, image: str, config_text: str,
                       priority_class: str | None = DEFAULT_PRIORITY_CLASS) -> list[dict[str, Any]]:
    """Everything but the webhook configurations, in apply order. The quota for critical pods
    comes only with the priority class it is for, before the Deployment whose pods need it."""
    quota = [_critical_pods_quota(ns)] if priority_class == DEFAULT_PRIORITY_CLASS else []
    return [_namespace(ns), *_rbac(ns), _config_map(ns, config_text), *quota, _service(ns),
            _deployment(ns, image, priority_class), _pdb(ns), *_network_policies(ns)]
