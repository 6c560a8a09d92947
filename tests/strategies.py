"""Hypothesis strategies for netguard's hostile-input tests (tests/serve/test_hostile.py).

Two families:

* hostile bodies: arbitrary JSON, AdmissionReview-shaped dicts with fields replaced by values of
  the wrong type, raw texts with duplicated keys, and plain bytes;
* realistic objects: Services and NetworkPolicies valid per the Kubernetes API (labels whose keys
  hold '/' and '~', every Service type or none, selectors, policyTypes, ingress/egress rules).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from tests.reviews import make_review

# --------------------------------------------------------------------------- hostile JSON

# Short texts; the default alphabet of st.text excludes lone surrogates (those are covered by
# explicit tests, see test_hostile.py).
short_text = st.text(max_size=12)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    short_text,
)

json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(short_text, children, max_size=4),
    ),
    max_leaves=12,
)

# A value that is never a JSON object: what a field expecting a map must refuse.
non_objects = st.one_of(scalars, st.lists(json_values, max_size=3))

# Every field netguard reads (and a few it does not), as paths into an AdmissionReview.
REVIEW_PATHS: tuple[tuple[str, ...], ...] = (
    ("apiVersion",), ("kind",), ("request",),
    ("request", "uid"), ("request", "kind"), ("request", "kind", "kind"),
    ("request", "kind", "group"), ("request", "kind", "version"), ("request", "resource"),
    ("request", "operation"), ("request", "namespace"), ("request", "name"),
    ("request", "object"), ("request", "oldObject"), ("request", "dryRun"),
    ("request", "userInfo"), ("request", "userInfo", "username"), ("request", "userInfo", "groups"),
    ("request", "options"), ("request", "options", "fieldManager"),
    ("request", "object", "metadata"), ("request", "object", "metadata", "name"),
    ("request", "object", "metadata", "labels"), ("request", "object", "metadata", "labels", "app"),
    ("request", "object", "metadata", "annotations"),
    ("request", "object", "spec"), ("request", "object", "spec", "type"),
    ("request", "object", "spec", "ports"), ("request", "object", "spec", "selector"),
    ("request", "object", "spec", "podSelector"), ("request", "object", "spec", "policyTypes"),
    ("request", "object", "spec", "ingress"), ("request", "object", "spec", "egress"),
    ("request", "oldObject", "metadata"), ("request", "oldObject", "metadata", "labels"),
    ("request", "oldObject", "spec"), ("request", "oldObject", "spec", "type"),
    ("request", "oldObject", "spec", "podSelector"), ("request", "oldObject", "spec", "ingress"),
)

_DELETE = object()

NAMESPACES = ("shop", "", "kube-system", "netguard-system", "team-a")


def _set_path(body: Any, path: tuple[str, ...], value: Any) -> None:
    node = body
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if not isinstance(node, dict):
        return
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def well_formed_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """An AdmissionReview a kube-apiserver could send (the starting point of the mangling)."""
    kind = draw(st.sampled_from(["Service", "NetworkPolicy", "ConfigMap"]))
    operation = draw(st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT"]))
    ns = draw(st.sampled_from(NAMESPACES))
    obj = old = None
    if kind == "Service":
        obj = draw(services(namespace=ns))
        old = draw(services(namespace=ns))
    elif kind == "NetworkPolicy":
        obj = draw(network_policies(namespace=ns))
        old = draw(network_policies(namespace=ns))
    kwargs: dict[str, Any] = {}
    if obj is not None and operation in ("CREATE", "UPDATE"):
        kwargs["obj"] = obj
    if old is not None and operation in ("UPDATE", "DELETE"):
        kwargs["old"] = old
    if operation == "CONNECT":
        kwargs.update(obj=None, old=None)
    return make_review(kind=kind, operation=operation, namespace=ns,
                       dry_run=draw(st.booleans()), **kwargs)


@st.composite
def mangled_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed review with 1-4 fields replaced by values of other types, or removed."""
    body = copy.deepcopy(draw(well_formed_reviews()))
    paths = draw(st.lists(st.sampled_from(REVIEW_PATHS), min_size=1, max_size=4, unique=True))
    for path in paths:
        value = draw(st.one_of(st.just(_DELETE), non_objects, json_values,
                               st.dictionaries(short_text, json_values, max_size=3)))
        _set_path(body, path, value)
    return body


@st.composite
def duplicated_key_texts(draw: st.DrawFn) -> str:
    """Raw JSON text in which keys repeat, e.g. '{"request": 1, "request": {...}}'.

    Python (like Go's encoding/json, which the apiserver uses) keeps the last value.
    """
    review = draw(well_formed_reviews())
    request = review["request"]

    def render(mapping: dict[str, Any], dup_keys: list[str], junk: list[Any], first: list[bool]) -> str:
        parts = []
        for key, value in mapping.items():
            encoded = json.dumps(value)
            if key in dup_keys:
                i = dup_keys.index(key)
                other = json.dumps(junk[i])
                pair = [f"{json.dumps(key)}:{other}", f"{json.dumps(key)}:{encoded}"]
                parts.extend(pair if first[i] else pair[::-1])
            else:
                parts.append(f"{json.dumps(key)}:{encoded}")
        return "{" + ",".join(parts) + "}"

    request_keys = draw(st.lists(st.sampled_from(sorted(request)), max_size=3, unique=True))
    request_junk = [draw(json_values) for _ in request_keys]
    request_first = [draw(st.booleans()) for _ in request_keys]
    request_text = render(request, request_keys, request_junk, request_first)
    top_keys = draw(st.lists(st.sampled_from(["apiVersion", "kind", "request"]), max_size=2, unique=True))
    top_parts = []
    for key in ("apiVersion", "kind", "request"):
        good = request_text if key == "request" else json.dumps(review[key])
        pair = [f"{json.dumps(key)}:{json.dumps(draw(json_values))}", f"{json.dumps(key)}:{good}"]
        if key in top_keys:
            top_parts.extend(pair if draw(st.booleans()) else pair[::-1])
        else:
            top_parts.append(pair[1])
    return "{" + ",".join(top_parts) + "}"


def nested_text(depth: int, opener: str) -> str:
    """`depth` levels of '[' or '{"a":' around a 1."""
    if opener == "[":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# --------------------------------------------------------------------------- realistic objects

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
names = st.text(alphabet=_NAME_CHARS, min_size=1, max_size=10).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum())

# Label keys: plain, prefixed (so '/', which a JSON pointer writes '~1'), with '~' (written '~0'),
# and netguard's own keys.
label_keys = st.one_of(
    names,
    st.builds(lambda p, n: f"{p}.example.com/{n}", names, names),
    st.builds(lambda a, b: f"{a}~{b}", names, names),
    st.builds(lambda a, b: f"{a}/{b}~1{a}", names, names),
    st.sampled_from(["app", "team", "example.com/owner", "~", "/", "~1", "~0", "a/b/c",
                     "netguard/exposure", "netguard/policy-type", "netguard/other",
                     "sec.example.com/exposure"]),
)
label_values = st.text(alphabet=_NAME_CHARS + "._", max_size=12)
label_maps = st.dictionaries(label_keys, label_values, max_size=6)

INTERNAL_ANNOTATIONS = (
    "service.beta.kubernetes.io/aws-load-balancer-internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal",
    "networking.gke.io/load-balancer-type",
    "cloud.google.com/load-balancer-type",
)
annotation_maps = st.dictionaries(
    st.one_of(st.sampled_from(INTERNAL_ANNOTATIONS), label_keys),
    st.sampled_from(["true", "True", "false", "internal", "Internal", "0.0.0.0/0", "", "x"]),
    max_size=3)

SERVICE_TYPES = (None, "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_MISSING = object()


@st.composite
def metadata(draw: st.DrawFn, namespace: str = "shop") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": draw(names), "namespace": namespace}
    labels = draw(st.one_of(st.just(_MISSING), st.none(), label_maps))
    if labels is not _MISSING:
        meta["labels"] = labels
    annotations = draw(st.one_of(st.just(_MISSING), annotation_maps))
    if annotations is not _MISSING:
        meta["annotations"] = annotations
    return meta


port_numbers = st.integers(min_value=1, max_value=65535)
port_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8).filter(
    lambda s: s[0] != "-" and s[-1] != "-")
protocols = st.sampled_from(["TCP", "UDP", "SCTP"])


@st.composite
def service_ports(draw: st.DrawFn) -> dict[str, Any]:
    port: dict[str, Any] = {"port": draw(port_numbers)}
    if draw(st.booleans()):
        port["protocol"] = draw(protocols)
    if draw(st.booleans()):
        port["targetPort"] = draw(st.one_of(port_numbers, port_names))
    if draw(st.booleans()):
        port["name"] = draw(port_names)
    return port


@st.composite
def services(draw: st.DrawFn, namespace: str = "shop") -> dict[str, Any]:
    spec: dict[str, Any] = {}
    kind = draw(st.sampled_from(SERVICE_TYPES))
    if kind is not None:
        spec["type"] = kind
    if kind == "ExternalName":
        spec["externalName"] = "db.example.com"
    else:
        spec["ports"] = draw(st.lists(service_ports(), max_size=3))
    if draw(st.booleans()):
        spec["selector"] = draw(st.dictionaries(label_keys, label_values, max_size=3))
    if kind == "LoadBalancer" and draw(st.booleans()):
        spec["loadBalancerSourceRanges"] = draw(st.lists(
            st.sampled_from(["0.0.0.0/0", "::/0", "203.0.113.0/24", "10.0.0.0/8"]), max_size=2))
    return {"apiVersion": "v1", "kind": "Service", "metadata": draw(metadata(namespace)), "spec": spec}


expressions = st.builds(
    lambda key, op, values: {"key": key, "operator": op,
                             **({"values": values} if op in ("In", "NotIn") else {})},
    label_keys, st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
    st.lists(label_values, min_size=1, max_size=3))

label_selectors = st.fixed_dictionaries({}, optional={
    "matchLabels": st.dictionaries(label_keys, label_values, max_size=3),
    "matchExpressions": st.lists(expressions, max_size=2),
})

ip_blocks = st.fixed_dictionaries(
    {"cidr": st.sampled_from(["0.0.0.0/0", "::/0", "10.0.0.0/8", "203.0.113.0/24"])},
    optional={"except": st.lists(st.sampled_from(["10.1.0.0/16", "10.2.0.0/16"]), max_size=2)})

peers = st.one_of(
    st.fixed_dictionaries({"podSelector": label_selectors}),
    st.fixed_dictionaries({"namespaceSelector": label_selectors}),
    st.fixed_dictionaries({"podSelector": label_selectors, "namespaceSelector": label_selectors}),
    st.fixed_dictionaries({"ipBlock": ip_blocks}),
)


@st.composite
def policy_ports(draw: st.DrawFn) -> dict[str, Any]:
    port: dict[str, Any] = {}
    if draw(st.booleans()):
        port["protocol"] = draw(protocols)
    choice = draw(st.sampled_from(["none", "number", "name", "range"]))
    if choice == "number":
        port["port"] = draw(port_numbers)
    elif choice == "name":
        port["port"] = draw(port_names)
    elif choice == "range":
        start = draw(st.integers(min_value=1, max_value=65000))
        port["port"] = start
        port["endPort"] = draw(st.integers(min_value=start, max_value=65535))
    return port


def policy_rules(direction_key: str):
    return st.fixed_dictionaries({}, optional={
        direction_key: st.lists(peers, max_size=3),
        "ports": st.lists(policy_ports(), max_size=2),
    })


@st.composite
def network_policy_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    selector = draw(st.one_of(st.just(_MISSING), st.just({}), label_selectors))
    if selector is not _MISSING:
        spec["podSelector"] = selector
    types = draw(st.one_of(st.just(_MISSING), st.just([]),
                           st.lists(st.sampled_from(["Ingress", "Egress"]), min_size=1, max_size=2,
                                    unique=True)))
    if types is not _MISSING:
        spec["policyTypes"] = types
    for key, peer_key in (("ingress", "from"), ("egress", "to")):
        rules = draw(st.one_of(st.just(_MISSING), st.none(), st.just([]),
                               st.lists(policy_rules(peer_key), min_size=1, max_size=3)))
        if rules is not _MISSING:
            spec[key] = rules
    return spec


@st.composite
def network_policies(draw: st.DrawFn, namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": draw(metadata(namespace)), "spec": draw(network_policy_specs())}


# --------------------------------------------------------------------------- impossible shapes


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list indices) to a value inside `node`."""
    found = []
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return found
    for key, child in items:
        found.append(prefix + (key,))
        found.extend(_paths(child, prefix + (key,)))
    return found


@st.composite
def impossible_objects(draw: st.DrawFn, kind: str, namespace: str = "shop") -> dict[str, Any]:
    """A valid Service or NetworkPolicy with 1-2 values inside it (or under spec, a new key the
    code reads) replaced by arbitrary JSON: the shapes an apiserver would never send."""
    obj = copy.deepcopy(draw(services(namespace) if kind == "Service" else network_policies(namespace)))
    extra = ["type", "ports", "selector"] if kind == "Service" else ["podSelector", "policyTypes",
                                                                     "ingress", "egress"]
    candidates = [p for p in _paths(obj) if p[0] != "apiVersion" and p[0] != "kind"]
    candidates += [("spec", key) for key in extra]
    for path in draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True)):
        node = obj
        for key in path[:-1]:
            if not isinstance(node, (dict, list)):
                break
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int)
                                          and path[-1] < len(node)):
                node[path[-1]] = draw(json_values)
    return obj
