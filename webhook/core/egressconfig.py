"""The `egress:` section of the configuration, validated into `EgressSettings`
(webhook/core/egress.py). webhook/core/config.py hands it its YAML walker, so every error names
the file, the line and the dotted key as everywhere else.

    egress:
      required: true
      namespaceSelector:            # a Kubernetes LabelSelector
        matchLabels: {exposure: public}
        matchExpressions:
        - {key: tier, operator: In, values: [edge, web]}
      dns:
        namespace: kube-system
        podLabels: {k8s-app: kube-dns}
        ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]

The selector follows the API's own validation of a LabelSelector:
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/ --
operator one of In, NotIn, Exists, DoesNotExist; values non-empty for In and NotIn, empty for
Exists and DoesNotExist; label keys and values as for any label
(https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from webhook.core import netpol
from webhook.core.egress import DnsTarget, EgressSettings

KEYS = ("required", "namespaceSelector", "dns")
SELECTOR_KEYS = ("matchLabels", "matchExpressions")
EXPRESSION_KEYS = ("key", "operator", "values")
DNS_KEYS = ("namespace", "podLabels", "ports")
PORT_KEYS = ("protocol", "port")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
PROTOCOLS = ("TCP", "UDP", "SCTP")

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _BOOL = _TAG + "str", _TAG + "int", _TAG + "bool"
_LABEL_VALUE_RE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
# An IANA service name, as a container port's name must be (ContainerPort.name).
_PORT_NAME_RE = re.compile(r"[a-z0-9](?:-?[a-z0-9])*")

Check = Callable[[str], "str | None"]


def _got(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return repr(node.value) if node.tag == _STR else str(node.value or "nothing")
    return "a list" if isinstance(node, SequenceNode) else "a mapping"


def _label_value_problem(value: str) -> str | None:
    if len(value) <= 63 and _LABEL_VALUE_RE.fullmatch(value):
        return None
    return ("label value must be at most 63 characters of alphanumerics, '-', '_' and '.', "
            "starting and ending alphanumeric (or empty)")


def _port_name_problem(value: str) -> str | None:
    if len(value) <= 15 and _PORT_NAME_RE.fullmatch(value) and re.search("[a-z]", value):
        return None
    return "a port name must be at most 15 lowercase alphanumerics or '-', with a letter, no '--'"


def build(w: Any, node: Node, key: str, label_key_problem: Check, namespace_problem: Check) -> EgressSettings:
    """EgressSettings from the `egress` node; `w` is config.py's walker (fail, mapping, string,
    choice, string_list), the checks its label-key and namespace-name rules."""
    section = w.mapping(node, key, KEYS)
    settings = EgressSettings()
    required = settings.required
    if "required" in section:
        value = section["required"]
        if not (isinstance(value, ScalarNode) and value.tag == _BOOL):
            w.fail(value, f"{key}.required", f"must be true or false (got {_got(value)})")
        required = SafeConstructor().construct_yaml_bool(value)
    selector = settings.namespace_selector
    if "namespaceSelector" in section:
        selector = _selector(w, section["namespaceSelector"], f"{key}.namespaceSelector", label_key_problem)
    dns = settings.dns
    if "dns" in section:
        dns = _dns(w, section["dns"], f"{key}.dns", label_key_problem, namespace_problem)
    return EgressSettings(required=required, namespace_selector=selector, dns=dns)


def _labels(w: Any, node: Node, key: str, label_key_problem: Check) -> tuple[tuple[str, str], ...]:
    """A map of label keys to label values, as matchLabels or a pod's labels."""
    if not isinstance(node, MappingNode):
        if isinstance(node, ScalarNode) and node.tag == _TAG + "null":
            return ()
        w.fail(node, key, "must be a mapping of label keys to label values")
    found: dict[str, str] = {}
    for key_node, value_node in node.value:
        name = w.string(key_node, key)
        child = f"{key}.{name}"
        problem = label_key_problem(name)
        if problem:
            w.fail(key_node, child, f"{problem} (got {name!r})")
        if name in found:
            w.fail(key_node, child, "duplicate key")
        value = w.string(value_node, child)
        problem = _label_value_problem(value)
        if problem:
            w.fail(value_node, child, f"{problem} (got {value!r})")
        found[name] = value
    return tuple(sorted(found.items()))


def _selector(w: Any, node: Node, key: str, label_key_problem: Check) -> netpol.Selector:
    section = w.mapping(node, key, SELECTOR_KEYS)
    match_labels = _labels(w, section["matchLabels"], f"{key}.matchLabels", label_key_problem) \
        if "matchLabels" in section else ()
    expressions = []
    if "matchExpressions" in section:
        items = section["matchExpressions"]
        if not isinstance(items, SequenceNode):
            w.fail(items, f"{key}.matchExpressions", "must be a list of {key, operator, values}")
        for index, item in enumerate(items.value):
            expressions.append(_expression(w, item, f"{key}.matchExpressions[{index}]", label_key_problem))
    return match_labels, tuple(sorted(expressions))


def _expression(w: Any, node: Node, key: str, label_key_problem: Check) -> tuple[str, str, tuple[str, ...]]:
    fields = w.mapping(node, key, EXPRESSION_KEYS)
    for needed in ("key", "operator"):
        if needed not in fields:
            w.fail(node, f"{key}.{needed}", "is required")
    label = w.string(fields["key"], f"{key}.key")
    problem = label_key_problem(label)
    if problem:
        w.fail(fields["key"], f"{key}.key", f"{problem} (got {label!r})")
    operator = w.string(fields["operator"], f"{key}.operator")
    if operator not in OPERATORS:
        w.fail(fields["operator"], f"{key}.operator", f"must be one of {', '.join(OPERATORS)} (got {operator!r})")
    values: tuple[str, ...] = ()
    if "values" in fields:
        values = tuple(w.string_list(fields["values"], f"{key}.values", _label_value_problem, "label values"))
    where = fields.get("values", node)
    if operator in ("In", "NotIn") and not values:
        w.fail(where, f"{key}.values", f"must be a non-empty list with operator {operator}")
    if operator in ("Exists", "DoesNotExist") and values:
        w.fail(where, f"{key}.values", f"must be empty with operator {operator}")
    return label, operator, tuple(sorted(values))


def _dns(w: Any, node: Node, key: str, label_key_problem: Check, namespace_problem: Check) -> DnsTarget:
    section = w.mapping(node, key, DNS_KEYS)
    default = DnsTarget()
    namespace = default.namespace
    if "namespace" in section:
        namespace = w.string(section["namespace"], f"{key}.namespace")
        problem = namespace_problem(namespace)
        if problem:
            w.fail(section["namespace"], f"{key}.namespace", f"{problem} (got {namespace!r})")
    pod_labels = default.pod_labels
    if "podLabels" in section:
        pod_labels = _labels(w, section["podLabels"], f"{key}.podLabels", label_key_problem)
    ports = default.ports
    if "ports" in section:
        ports = _ports(w, section["ports"], f"{key}.ports")
    return DnsTarget(namespace=namespace, pod_labels=pod_labels, ports=ports)


def _ports(w: Any, node: Node, key: str) -> tuple[tuple[str, "int | str"], ...]:
    if not isinstance(node, SequenceNode) or not node.value:
        w.fail(node, key, "must be a non-empty list of {protocol, port}")
    found: list[tuple[str, int | str]] = []
    for index, item in enumerate(node.value):
        item_key = f"{key}[{index}]"
        fields = w.mapping(item, item_key, PORT_KEYS)
        if "port" not in fields:
            w.fail(item, f"{item_key}.port", "is required")
        protocol = "TCP"  # the API's default for a NetworkPolicyPort
        if "protocol" in fields:
            protocol = w.string(fields["protocol"], f"{item_key}.protocol")
            if protocol not in PROTOCOLS:
                w.fail(fields["protocol"], f"{item_key}.protocol",
                       f"must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
        port_node = fields["port"]
        port: int | str
        if isinstance(port_node, ScalarNode) and port_node.tag == _INT:
            port = SafeConstructor().construct_yaml_int(port_node)
            if not 1 <= port <= 65535:
                w.fail(port_node, f"{item_key}.port", f"must be a port number 1-65535 or a port name (got {port})")
        else:
            port = w.string(port_node, f"{item_key}.port")
            problem = _port_name_problem(port)
            if problem:
                w.fail(port_node, f"{item_key}.port", f"must be a port number 1-65535 or a port name: {problem} (got {port!r})")
        if (protocol, port) in found:
            w.fail(item, item_key, f"duplicate port {protocol} {port}")
        found.append((protocol, port))
    return tuple(found)
