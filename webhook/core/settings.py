"""The whole configuration as one typed tree: `Settings`, its defaults, and each rule's settings
from the registry. Loaded and validated from YAML by webhook/core/config.py; the reference in the
README and the ConfigMap in manifests/ are generated from these defaults (webhook/core/reference.py).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from webhook.core import registry
from webhook.core.egress import EgressSettings
from webhook.core.options import FailureMode, LabelSettings, RuleSettings
from webhook.core.rule import RuleContext

DEFAULT_OWN_NAMESPACE = "netguard-system"
DEFAULT_EXEMPT_NAMESPACES: frozenset[str] = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# kube-apiserver refuses request bodies over 3 MiB (MaxRequestBodyBytes, k8s.io/apiserver
# pkg/server/config.go) and etcd stores objects up to 1.5 MiB (its --max-request-bytes default):
# an UPDATE's review carries the new object (up to 3 MiB) and the stored old one (up to 1.5 MiB)
# plus the envelope, as JSON (a protobuf or YAML request grows when re-encoded). 8 MiB holds that
# with room; the server bounds what a body of that size may cost (docs/serving.md, Connections).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_SCAN_INTERVAL_SECONDS = 60


def _default_rules() -> Mapping[str, RuleSettings]:
    return types.MappingProxyType({rule.name: rule.settings() for rule in registry.RULES})


@dataclass(frozen=True)
class Settings:
    """The whole configuration. Build it with parse_settings/default_settings (or load_settings
    for a file).

    Constructed directly, it normalises itself: own_namespace is added to exempt_namespaces,
    rules is filled with the defaults of every registered rule and made read-only.
    """

    labels: LabelSettings = field(default_factory=LabelSettings)
    exempt_namespaces: frozenset[str] = DEFAULT_EXEMPT_NAMESPACES
    own_namespace: str = DEFAULT_OWN_NAMESPACE
    # hash=False: a MappingProxyType is not hashable; equality still compares it.
    rules: Mapping[str, RuleSettings] = field(default_factory=_default_rules, hash=False)
    failure_mode: FailureMode = FailureMode.CLOSED
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    scan_interval_seconds: int = DEFAULT_SCAN_INTERVAL_SECONDS
    egress: EgressSettings = field(default_factory=EgressSettings)
    # What each rule is handed on every call, built once.
    _contexts: Mapping[str, RuleContext] = field(init=False, repr=False, compare=False, hash=False)
    # (rule's admit, its context) in the rules' order: what `decide.validate` walks on every call.
    admitters: tuple[tuple[Callable[..., Any], RuleContext], ...] = field(
        init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "exempt_namespaces", frozenset(self.exempt_namespaces) | {self.own_namespace}
        )
        unknown = sorted(set(self.rules) - set(registry.RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown rule name(s) {unknown}; expected {', '.join(registry.RULE_NAMES)}")
        rules = {}
        for rule in registry.RULES:
            given = self.rules.get(rule.name)
            rules[rule.name] = rule.settings(**given.values) if given is not None else rule.settings()
        object.__setattr__(self, "rules", types.MappingProxyType(rules))
        object.__setattr__(self, "_contexts", types.MappingProxyType(
            {name: RuleContext(own, self.labels, self.egress) for name, own in rules.items()}))
        object.__setattr__(self, "admitters", tuple((rule.admit, self._contexts[rule.name]) for rule in registry.RULES))

    def rule(self, name: str) -> RuleSettings:
        """The settings of rule `name`; KeyError for a name that is not a registered rule."""
        registry.rule(name)
        return self.rules[name]

    def namespace_label_keys(self) -> tuple[str, ...]:
        """The namespace label keys decisions read: labels.fromNamespace and the keys
        egress.namespaceSelector names (the live inventory keeps only these)."""
        return tuple(dict.fromkeys(self.labels.from_namespace + self.egress.label_keys()))

    def context(self, name: str) -> RuleContext:
        """What rule `name` reads of this configuration."""
        return self._contexts[name]


def default_settings() -> Settings:
    """The configuration used when every key is left out."""
    return Settings()
