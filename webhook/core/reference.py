"""The configuration reference, generated from the settings' own defaults and the rules'
declarations, so the README, the ConfigMap in manifests/ and `netguard config` can never drift
from what netguard really does (tests/core/test_reference.py holds the README and the kustomize
base to this text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from webhook.core import registry
from webhook.core.options import FailureMode
from webhook.core.settings import Settings, default_settings


@dataclass(frozen=True)
class Key:
    """One top-level (or labels.) key: how it reads in YAML, its default, what it means."""

    key: str
    default: Callable[[Settings], str]
    kind: str
    doc: str


def _flow_list(values) -> str:
    return "[" + ", ".join(values) + "]"


def _flow_map(pairs) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


def _flow_selector(selector) -> str:
    match_labels, expressions = selector
    parts = []
    if match_labels:
        parts.append(("matchLabels", _flow_map(match_labels)))
    if expressions:
        parts.append(("matchExpressions", _flow_list(
            _flow_map([("key", k), ("operator", o)] + ([("values", _flow_list(v))] if v else []))
            for k, o, v in expressions)))
    return _flow_map(parts)


KEYS: tuple[Key, ...] = (
    Key("labels.prefix", lambda s: s.labels.prefix, "DNS subdomain",
        "the label-key prefix netguard owns: it writes PREFIX/exposure and PREFIX/policy-type, "
        "always reflecting the spec"),
    Key("labels.fromNamespace", lambda s: _flow_list(s.labels.from_namespace), "list of label keys",
        "copied from the object's namespace when the object lacks them (never overwritten)"),
    Key("labels.required", lambda s: _flow_list(s.labels.required), "list of label keys",
        "every Service and NetworkPolicy must carry them (rule required-labels)"),
    Key("exemptNamespaces", lambda s: _flow_list(sorted(s.exempt_namespaces - {s.own_namespace})),
        "list of namespace names",
        "never checked or mutated; a list given replaces the default; ownNamespace is always added"),
    Key("ownNamespace", lambda s: s.own_namespace, "namespace name", "netguard's own namespace, always exempt"),
    Key("failureMode", lambda s: s.failure_mode.value, " | ".join(m.value for m in FailureMode),
        "what the live inventory answers when cluster state cannot be known: closed denies, open "
        "allows with a warning"),
    Key("maxBodyBytes", lambda s: str(s.max_body_bytes), "integer > 0",
        "the largest AdmissionReview body accepted, in bytes (kube-apiserver sends up to 3 MiB of "
        "object, and an UPDATE carries two)"),
    Key("scanIntervalSeconds", lambda s: str(s.scan_interval_seconds), "integer > 0",
        "how often each server worker rescans its inventory for violations (netguard_violations)"),
    Key("egress.required", lambda s: "true" if s.egress.required else "false", "true | false",
        "true: a namespace holding LoadBalancers must also have an egress default-deny NetworkPolicy "
        "(rules loadbalancer-requires-default-deny and protect-default-deny)"),
    Key("egress.namespaceSelector", lambda s: _flow_selector(s.egress.namespace_selector),
        "label selector",
        "with required: true, only the namespaces it selects (matchLabels; matchExpressions with In, "
        "NotIn, Exists or DoesNotExist); {} selects every namespace"),
    Key("egress.dns.namespace", lambda s: s.egress.dns.namespace, "namespace name",
        "where the DNS pods run: the egress default-deny's fix-it YAML allows DNS to them"),
    Key("egress.dns.podLabels", lambda s: _flow_map(s.egress.dns.pod_labels), "map of labels",
        "the DNS pods' labels"),
    Key("egress.dns.ports", lambda s: _flow_list(_flow_map([("protocol", p), ("port", n)])
                                                 for p, n in s.egress.dns.ports),
        "list of {protocol, port}", "the DNS ports (TCP, UDP or SCTP; a number or a port name)"),
)


def _rule_defaults(settings: Settings, name: str) -> str:
    values = settings.rule(name).values
    rule = registry.rule(name)
    return "{" + ", ".join(f"{o.key}: {values[o.attribute].value}" for o in rule.options) + "}"


def defaults_yaml(own_namespace: str | None = None) -> str:
    """netguard.yaml with every key at its default, commented; parses to the default settings
    (with `ownNamespace` = `own_namespace` when given)."""
    s = default_settings() if own_namespace is None else Settings(own_namespace=own_namespace)
    keys = {k.key: k for k in KEYS}

    def line(yaml_key: str, key: str, indent: str = "") -> str:
        k = keys[key]
        return f"{indent}{yaml_key}: {k.default(s)}   # {k.doc}\n"

    text = ("# netguard configuration. Every key is optional; the values below are the defaults.\n"
            "# Reference: `netguard config reference`. Unknown keys are errors.\n"
            "labels:\n")
    text += "".join(line(key.split(".")[1], key, "  ") for key in ("labels.prefix", "labels.fromNamespace",
                                                                   "labels.required"))
    text += line("exemptNamespaces", "exemptNamespaces") + line("ownNamespace", "ownNamespace")
    text += "rules:   # action: " + " | ".join(a.value for a in registry.RULES[0].options[0].choices) + "\n"
    for rule in registry.RULES:
        others = "; ".join(f"{o.key}: {' | '.join(c.value for c in o.choices)}" for o in rule.options[1:])
        text += f"  {rule.name}: {_rule_defaults(s, rule.name)}" + (f"   # {others}" if others else "") + "\n"
    text += "".join(line(key, key) for key in ("failureMode", "maxBodyBytes", "scanIntervalSeconds"))
    text += "egress:\n" + line("required", "egress.required", "  ") \
        + line("namespaceSelector", "egress.namespaceSelector", "  ") + "  dns:\n" \
        + "".join(line(key.rsplit(".", 1)[1], key, "    ")
                  for key in ("egress.dns.namespace", "egress.dns.podLabels", "egress.dns.ports"))
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a table cell


def reference_markdown() -> str:
    """The reference of every key, for the README."""
    s = default_settings()
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{k.key}` | {_cell(k.kind)} | `{k.default(s)}` | {k.doc} |" for k in KEYS]
    for rule in registry.RULES:
        for option in rule.options:
            choices = _cell(" | ".join(c.value for c in option.choices))
            rows.append(f"| `rules.{rule.name}.{option.key}` | {choices} | "
                        f"`{s.rule(rule.name).values[option.attribute].value}` | {option.doc} |")
    rules = [f"- `{rule.name}`: {rule.summary}." for rule in registry.RULES]
    return "\n".join(["The rules:", "", *rules, "", *rows]) + "\n"
