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

from webhook.core.kept import exact_json, keep

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


def spec_problem(group: str, kind: str, obj: Mapping[str, Any], where: str, decoded: bool = False) -> str | None:
    """What is wrong with the spec of an object of this kind, or None (also for other kinds).

    `decoded`: the object comes from decoded JSON (a request's body), so it holds JSON's own
    types only, and a spec found fine can be known again by its encoding. Objects from YAML or
    from Python may hold dates, tuples or enums that encode like a string or a list: they are
    always walked."""
    shape = SPECS.get((group, kind))
    spec = obj.get("spec")
    if shape is None or spec is None:
        return None
    key = _fine_key(group, kind, spec) if decoded else None
    if key is not None and key in _FINE:
        return None
    problem = shape(spec)
    if problem is not None:
        return f"{where}.spec{problem[0]} {problem[1]}"
    if key is not None:
        keep(_FINE, key, None, FINE_KEPT)
    return None


# Specs already found fine, by their exact JSON: every apply of an object is reviewed twice with
# the same spec (the mutating webhook, then the validating one), and a GitOps sync sends it again
# and again. Encoding a small spec costs a fraction of walking its shape. Only fine specs are
# kept, so a refusal is always worked out (and worded) afresh; bounded in count and in size.
FINE_KEPT = 1024
FINE_SPEC_BYTES = 2048
_FINE: dict[tuple[str, str, bytes], None] = {}


def _fine_key(group: str, kind: str, spec: Any) -> tuple[str, str, bytes] | None:
    # None for a lone surrogate (refused as malformed later) or a spec too long to keep: walked.
    data = exact_json(spec, FINE_SPEC_BYTES)
    return None if data is None else (group, kind, data)
