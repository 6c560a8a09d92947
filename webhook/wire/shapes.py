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

# A shape checks one value and returns None when it is fine, else (path below the value, what is
# wrong). The path is only built on the way back up from a problem: checking a good object (every
# real request) formats no string. null is accepted everywhere (the API omits empty fields; JSON
# may spell them null).
Problem = tuple[str, str]
Shape = Callable[[Any], "Problem | None"]


def _name(value: Any) -> str:
    return {dict: "a map", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


# Decoded JSON holds exact types: a value whose type is one of a shape's EXACT types is fine
# without calling the shape (map_of skips the call; a review has dozens of such fields).
_EXACT: dict[Shape, tuple[type, ...]] = {}


def _scalar(test: Callable[[Any], bool], what: str, exact: tuple[type, ...]) -> Shape:
    def check(value: Any) -> Problem | None:
        return None if value is None or test(value) else ("", f"must be {what}, got {_name(value)}")
    _EXACT[check] = exact
    return check


STRING = _scalar(lambda v: isinstance(v, str), "a string", (str,))
INTEGER = _scalar(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", (int,))
INT_OR_STRING = _scalar(lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)),
                        "an integer or a string", (int, str))


def list_of(item: Shape) -> Shape:
    exact = _EXACT.get(item, ())

    def check(value: Any) -> Problem | None:
        if value is None:
            return None
        if type(value) is not list:
            return "", f"must be a list, got {_name(value)}"
        for index, element in enumerate(value):
            if type(element) not in exact:
                problem = item(element)
                if problem is not None:
                    return f"[{index}]{problem[0]}", problem[1]
        return None
    return check


def map_of(fields: Mapping[str, Shape]) -> Shape:
    items = tuple((key, shape, _EXACT.get(shape, ())) for key, shape in fields.items())

    def check(value: Any) -> Problem | None:
        if value is None:
            return None
        if type(value) is not dict and not isinstance(value, Mapping):  # the ABC test is slow
            return "", f"must be a map, got {_name(value)}"
        for key, shape, exact in items:
            field = value.get(key)
            if field is not None and type(field) not in exact:
                problem = shape(field)
                if problem is not None:
                    return f".{key}{problem[0]}", problem[1]
        return None
    return check


def _strings(value: Any) -> Problem | None:
    """A map of string to string (labels, a Service's selector)."""
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        return "", f"must be a map of strings, got {_name(value)}"
    for key, element in value.items():
        if type(element) is not str:
            return f"[{key!r}]", f"must be a string, got {_name(element)}"
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
    problem = shape(obj.get("spec")) if shape is not None else None
    return None if problem is None else f"{where}.spec{problem[0]} {problem[1]}"
