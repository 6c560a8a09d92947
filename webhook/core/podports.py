"""The ports a Service sends its traffic to on its pods, as far as the given workloads tell.

What `netguard fix` opens in the allow policy it writes for a LoadBalancer: each Service port's
target port, to the letter of the Service API
(https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec,
`ports.targetPort`): a number is the pods' port; an absent targetPort is the `port` field (an
identity map); a name "will be looked up as a named port in the target Pod's container ports".
Such a name is resolved here against the container ports of the workloads whose pod template the
Service's selector selects (Pod `containers[].ports[]`, whose protocol defaults to TCP:
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports). When it
cannot be resolved to one number, the name itself is kept: a NetworkPolicy port may be "a
numerical or named port on a pod" and is looked up on each pod as the Service's is
(https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/#NetworkPolicySpec,
`ingress.ports.port`).

Pure: dicts in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable

DEFAULT_PROTOCOL = "TCP"  # of a ServicePort, a ContainerPort and a NetworkPolicyPort alike

# (apiVersion group, kind) -> the path to its pod template (a Pod is its own).
TEMPLATE_PATHS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class Workload:
    """What a Service's port lookup needs of a workload: where its pods are, their labels, and
    their containers' named ports as (name, protocol) -> containerPort."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    named_ports: Mapping[tuple[str, str], int]

    @property
    def title(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class TargetPort:
    """One port the allow policy opens: a number or a container port name, and why that."""

    protocol: str
    port: int | str
    how: str  # one of the HOW_* below
    detail: str = ""  # for a name kept as a name: why it was not resolved

    @property
    def resolved(self) -> bool:
        return self.how != KEPT_NAME


NUMBER = "targetPort"  # a number given as targetPort
IDENTITY = "port"  # no targetPort: the port field
RESOLVED = "named port resolved"
KEPT_NAME = "named port kept"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dig(obj: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    for key in path:
        obj = _mapping(obj.get(key))
    return obj


def workload(obj: Mapping[str, Any]) -> Workload | None:
    """The workload view of an object that has a pod template (TEMPLATE_PATHS), else None."""
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    group = api_version.rpartition("/")[0]
    path = TEMPLATE_PATHS.get((group, kind))
    if path is None:
        return None
    metadata = _mapping(obj.get("metadata"))
    template = _dig(obj, path)
    labels = _mapping(_mapping(template.get("metadata")).get("labels"))
    named: dict[tuple[str, str], int] = {}
    # Only `containers`: the Service's named-port lookup reads the pod's containers' ports.
    for container in _mapping(template.get("spec")).get("containers") or ():
        for port in _mapping(container).get("ports") or ():
            port = _mapping(port)
            name, number = port.get("name"), port.get("containerPort")
            if isinstance(name, str) and name and isinstance(number, int) and not isinstance(number, bool):
                named.setdefault((name, str(port.get("protocol") or DEFAULT_PROTOCOL)), number)
    return Workload(kind, str(metadata.get("namespace") or "default"), str(metadata.get("name") or ""),
                    {str(k): str(v) for k, v in labels.items()}, named)


def selected(selector: Mapping[str, Any], workloads: Iterable[Workload], namespace: str) -> list[Workload]:
    """The workloads of `namespace` whose pods a Service selector selects: a Service's selector
    is a map of labels the pods must all carry."""
    wanted = {str(k): str(v) for k, v in selector.items()}
    return [w for w in workloads if w.namespace == namespace
            and all(w.labels.get(k) == v for k, v in wanted.items())]


def target_ports(service: Mapping[str, Any], workloads: Iterable[Workload] | None) -> list[TargetPort]:
    """The target port of each Service port, in the Service's order, without repeats.
    `workloads` None: the pods are not known at all (an admission request holds the Service
    alone), so a named target port stays a name."""
    spec = _mapping(service.get("spec"))
    namespace = str(_mapping(service.get("metadata")).get("namespace") or "default")
    pods = None if workloads is None else selected(_mapping(spec.get("selector")), workloads, namespace)
    found: list[TargetPort] = []
    for entry in spec.get("ports") or ():
        entry = _mapping(entry)
        protocol = str(entry.get("protocol") or DEFAULT_PROTOCOL)
        target = entry.get("targetPort")
        if target is None:
            port = entry.get("port")
            if port is None:
                continue  # the apiserver refuses a Service port without a port
            one = TargetPort(protocol, port, IDENTITY)
        elif isinstance(target, str):
            one = _named(protocol, target, pods)
        else:
            one = TargetPort(protocol, target, NUMBER)
        if all((p.protocol, p.port) != (one.protocol, one.port) for p in found):
            found.append(one)
    return found


def _named(protocol: str, name: str, pods: list[Workload] | None) -> TargetPort:
    if pods is None:
        return TargetPort(protocol, name, KEPT_NAME, "the request holds the Service, not its pods: "
                                                     "the name is looked up on each pod, as the Service's is")
    if not pods:
        return TargetPort(protocol, name, KEPT_NAME, "no workload among the inputs has pods its selector selects")
    numbers = sorted({w.named_ports[(name, protocol)] for w in pods if (name, protocol) in w.named_ports})
    titles = ", ".join(w.title for w in pods)
    if not numbers:
        return TargetPort(protocol, name, KEPT_NAME,
                          f"no container of {titles} has a port named {name} over {protocol}")
    if len(numbers) > 1:
        return TargetPort(protocol, name, KEPT_NAME,
                          f"{titles} number it differently ({', '.join(map(str, numbers))}); "
                          "the name is looked up on each pod, as the Service's is")
    return TargetPort(protocol, numbers[0], RESOLVED, f"the container port named {name} in {titles}")
