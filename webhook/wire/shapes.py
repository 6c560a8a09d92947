"""The shape of the Services and NetworkPolicies netguard reads, checked before any rule runs.

kube-apiserver decodes every object into its Go type before admission, so a real request always
has these shapes: a field is absent, null, or of its API type. A request that breaks them is
forged or broken, and is refused as malformed (HTTP 400) with the path of the first bad field.
Checking up front means an exception raised while deciding is always netguard's own bug (HTTP
500), never the client's.

Only the fields the rules and labels read are described; everything else passes as it is.
API types: https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/ and
https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

# A shape checks one value and returns what is wrong with it (None when nothing is): `check(value,
# path)`. null is accepted everywhere (the API omits empty fields; JSON may spell them null).
Shape = Callable[[Any, str], "str | None"]


def _scalar(test: Callable[[Any], bool], what: str) -> Shape:
    def check(value: Any, path: str) -> str | None:
        return None if value is None or test(value) else f"{path} must be {what}, got {_name(value)}"
    return check


def _name(value: Any) -> str:
    return {dict: "a map", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


STRING = _scalar(lambda v: isinstance(v, str), "a string")
INTEGER = _scalar(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
INT_OR_STRING = _scalar(lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)),
                        "an integer or a string")


def list_of(item: Shape) -> Shape:
    def check(value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, list):
            return f"{path} must be a list, got {_name(value)}"
        for index, element in enumerate(value):
            problem = item(element, f"{path}[{index}]")
            if problem:
                return problem
        return None
    return check


def map_of(fields: Mapping[str, Shape]) -> Shape:
    def check(value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            return f"{path} must be a map, got {_name(value)}"
        for key, shape in fields.items():
            problem = shape(value.get(key), f"{path}.{key}")
            if problem:
                return problem
        return None
    return check


def _strings(value: Any, path: str) -> str | None:
    """A map of string to string (labels, a Service's selector)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"{path} must be a map of strings, got {_name(value)}"
    for key, element in value.items():
        if not isinstance(element, str):
            return f"{path}[{key!r}] must be a string, got {_name(element)}"
    return None


STRING_MAP: Shape = _strings

LABEL_SELECTOR = map_of({
    "matchLabels": STRING_MAP,
    "matchExpressions": list_of(map_of({"key": STRING, "operator": STRING, "values": list_of(STRING)})),
})
_PEER = map_of({
    "podSelector": LABEL_SELECTOR,
    "namespaceSelector": LABEL_SELECTOR,
    "ipBlock": map_of({"cidr": STRING, "except": list_of(STRING)}),
})
_POLICY_PORT = map_of({"protocol": STRING, "port": INT_OR_STRING, "endPort": INTEGER})

NETWORK_POLICY_SPEC = map_of({
    "podSelector": LABEL_SELECTOR,
    "policyTypes": list_of(STRING),
    "ingress": list_of(map_of({"from": list_of(_PEER), "ports": list_of(_POLICY_PORT)})),
    "egress": list_of(map_of({"to": list_of(_PEER), "ports": list_of(_POLICY_PORT)})),
})
SERVICE_SPEC = map_of({
    "type": STRING,
    "ports": list_of(map_of({"name": STRING, "protocol": STRING, "port": INTEGER,
                             "targetPort": INT_OR_STRING, "nodePort": INTEGER})),
    "selector": STRING_MAP,
    "loadBalancerSourceRanges": list_of(STRING),
    "loadBalancerClass": STRING,
})

# (API group, kind) -> the shape of its spec.
SPECS: Mapping[tuple[str, str], Shape] = {
    ("", "Service"): SERVICE_SPEC,
    ("networking.k8s.io", "NetworkPolicy"): NETWORK_POLICY_SPEC,
}


def spec_problem(group: str, kind: str, obj: Mapping[str, Any], where: str) -> str | None:
    """What is wrong with the spec of an object of this kind, or None (also for other kinds)."""
    shape = SPECS.get((group, kind))
    return shape(obj.get("spec"), f"{where}.spec") if shape is not None else None
