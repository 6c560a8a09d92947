"""netguard configuration: the one typed tree, loaded from YAML and validated here.

Configuration reference
=======================

netguard reads one YAML file (``netguard.yaml``). Every key is optional; a missing
key takes the default shown below, and an empty file (or one holding only comments)
means "all defaults". Unknown keys are errors at every level, so a typo never passes
silently. Every error names the file, the line and the dotted key, e.g.::

    netguard.yaml line 7: rules.required-labels.action: must be one of deny, warn, audit (got 'block')

The complete file, with the defaults::

    labels:
      prefix: netguard            # owner of the derived labels (netguard/exposure, netguard/policy-type)
      fromNamespace: []           # label keys copied from the namespace when the object lacks them
      required: []                # label keys checked by rule required-labels
    exemptNamespaces: [kube-system, kube-public, kube-node-lease]   # netguard's own namespace is always added
    ownNamespace: netguard-system # netguard's own namespace (always exempt)
    rules:                        # action: deny | warn | audit (audit = allow and record only)
      loadbalancer-requires-default-deny: {action: deny, dryRun: same, sourceRanges: ignore}   # dryRun: same | warn; sourceRanges: ignore | warn
      protect-default-deny: {action: deny}
      required-labels: {action: deny}
    failureMode: closed           # closed | open, used by the live inventory
    maxBodyBytes: 8388608         # positive int; largest AdmissionReview body accepted
    scanIntervalSeconds: 60       # positive int; how often the server rescans its inventory for violations

``labels`` (mapping)
    ``prefix`` (string, default ``netguard``)
        The label-key prefix netguard owns: the labels it derives are written as
        ``<prefix>/exposure`` and ``<prefix>/policy-type``. Must be a DNS subdomain:
        lowercase alphanumerics, ``-`` and ``.``, each dot-separated part starting and
        ending with an alphanumeric, at most 253 characters.
    ``fromNamespace`` (list of label keys, default ``[]``)
        Label keys copied from the object's namespace onto the object when the
        object does not carry them itself.
    ``required`` (list of label keys, default ``[]``)
        Label keys every object must carry; checked by rule ``required-labels``.

    A label key is ``[prefix/]name``: the optional prefix is a DNS subdomain (as for
    ``prefix`` above), the name is 1-63 characters of ``[A-Za-z0-9]``, ``-``, ``_`` and
    ``.``, starting and ending with an alphanumeric. Neither list may repeat a key.

``exemptNamespaces`` (list of namespace names, default ``[kube-system, kube-public, kube-node-lease]``)
    Namespaces netguard never checks or mutates. A list given here replaces the
    default list; ``ownNamespace`` is always added. Names are DNS-1123 labels: at most
    63 lowercase alphanumerics or ``-``, starting and ending with an alphanumeric.
    No name may be repeated.

``ownNamespace`` (namespace name, default ``netguard-system``)
    The namespace netguard itself runs in. It is always exempt.

``rules`` (mapping of rule name to settings)
    Keys must be rule names: ``loadbalancer-requires-default-deny``,
    ``protect-default-deny``, ``required-labels``. A rule not listed, or listed with
    only some keys, keeps the defaults for the rest.

    ``action`` (``deny`` | ``warn`` | ``audit``, default ``deny``)
        ``deny`` rejects the request; ``warn`` admits it with a warning to the client;
        ``audit`` admits it silently and only records the violation.
    ``dryRun`` (``same`` | ``warn``, default ``same``; only for ``loadbalancer-requires-default-deny``)
        How dry-run requests are treated: ``same`` applies ``action`` as for a real
        request; ``warn`` only warns on dry-run requests.

``sourceRanges`` (``ignore`` | ``warn``, default ``ignore``; only for ``loadbalancer-requires-default-deny``)
    ``warn`` adds a warning to a LoadBalancer without ``spec.loadBalancerSourceRanges``, or
    with ``0.0.0.0/0`` among them: it is open to every address.

``failureMode`` (``closed`` | ``open``, default ``closed``)
    What the live inventory does when it cannot tell the cluster state: ``closed``
    denies, ``open`` admits.

``scanIntervalSeconds`` (integer > 0, default ``60``)
    How often each server worker scans its inventory for current violations (LoadBalancers
    without a default-deny, cancelled default-denies) and publishes them as the
    ``netguard_violations`` metric.

``maxBodyBytes`` (integer > 0, default ``8388608`` = 8 MiB)
    The largest AdmissionReview request body accepted, in bytes.

Notes: values are typed; a quoted ``"8388608"`` is a string, not an integer, and
``yes``/``no``/``true``/``false`` are booleans, not strings. A mapping section
(``labels``, ``rules``, or one rule) left empty (``labels:``) means defaults; a list
or scalar key left empty is an error.

This module is pure: stdlib and PyYAML only, and nothing is built at import time.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import types
from dataclasses import dataclass, field
from typing import Mapping, NoReturn

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "Action",
    "ConfigError",
    "DryRunMode",
    "FailureMode",
    "LabelSettings",
    "RULE_NAMES",
    "RuleSettings",
    "Settings",
    "default_settings",
    "load_settings",
    "parse_settings",
]


# --------------------------------------------------------------------------- types


class Action(str, enum.Enum):
    """What a rule does with a violation."""

    DENY = "deny"
    WARN = "warn"
    AUDIT = "audit"  # allow and record only


class DryRunMode(str, enum.Enum):
    """How a rule treats dry-run requests."""

    SAME = "same"  # as a real request
    WARN = "warn"  # warn only


class SourceRangesMode(str, enum.Enum):
    """Whether a LoadBalancer open to every address (no loadBalancerSourceRanges) is warned."""

    IGNORE = "ignore"
    WARN = "warn"


class FailureMode(str, enum.Enum):
    """What the live inventory does when the cluster state is unknown."""

    CLOSED = "closed"
    OPEN = "open"


RULE_NAMES: tuple[str, ...] = (
    "loadbalancer-requires-default-deny",
    "protect-default-deny",
    "required-labels",
)

# The rules that take a dryRun setting.
_DRY_RUN_RULES = frozenset({"loadbalancer-requires-default-deny"})

DEFAULT_OWN_NAMESPACE = "netguard-system"
DEFAULT_EXEMPT_NAMESPACES: frozenset[str] = frozenset({"kube-system", "kube-public", "kube-node-lease"})
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_SCAN_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class RuleSettings:
    action: Action = Action.DENY
    dry_run: DryRunMode = DryRunMode.SAME
    source_ranges: SourceRangesMode = SourceRangesMode.IGNORE


@dataclass(frozen=True)
class LabelSettings:
    prefix: str = "netguard"
    from_namespace: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "from_namespace", tuple(self.from_namespace))
        object.__setattr__(self, "required", tuple(self.required))


def _default_rules() -> Mapping[str, RuleSettings]:
    return types.MappingProxyType({name: RuleSettings() for name in RULE_NAMES})


@dataclass(frozen=True)
class Settings:
    """The whole configuration. Build it with parse_settings/load_settings/default_settings.

    Constructed directly, it normalises itself: own_namespace is added to
    exempt_namespaces, rules is filled with defaults for every rule in RULE_NAMES and
    made read-only.
    """

    labels: LabelSettings = field(default_factory=LabelSettings)
    exempt_namespaces: frozenset[str] = DEFAULT_EXEMPT_NAMESPACES
    own_namespace: str = DEFAULT_OWN_NAMESPACE
    # hash=False: a MappingProxyType is not hashable; equality still compares it.
    rules: Mapping[str, RuleSettings] = field(default_factory=_default_rules, hash=False)
    failure_mode: FailureMode = FailureMode.CLOSED
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    scan_interval_seconds: int = DEFAULT_SCAN_INTERVAL_SECONDS

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "exempt_namespaces", frozenset(self.exempt_namespaces) | {self.own_namespace}
        )
        unknown = sorted(set(self.rules) - set(RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown rule name(s) {unknown}; expected {', '.join(RULE_NAMES)}")
        rules = {name: self.rules.get(name, RuleSettings()) for name in RULE_NAMES}
        object.__setattr__(self, "rules", types.MappingProxyType(rules))

    def rule(self, name: str) -> RuleSettings:
        """The settings of rule `name`; KeyError for a name not in RULE_NAMES."""
        try:
            return self.rules[name]
        except KeyError:
            raise KeyError(f"unknown rule {name!r}; expected one of {', '.join(RULE_NAMES)}") from None


def default_settings() -> Settings:
    """The configuration used when every key is left out."""
    return Settings()


# --------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A configuration file that cannot be used.

    path: the file (or source name); line: 1-based line of the offending node, 0 when
    no line applies (e.g. the file cannot be read); key: dotted key ("" for the whole
    document); reason: what is wrong.
    """

    def __init__(self, path: str, line: int, key: str, reason: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.reason = reason
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.path} line {self.line}" if self.line > 0 else f"{self.path}"
        return f"{where}: {self.key}: {self.reason}" if self.key else f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):  # keep pickling (e.g. across processes) working
        return (type(self), (self.path, self.line, self.key, self.reason))


# --------------------------------------------------------------------------- name checks

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_RE = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_NAMESPACE_RE = re.compile(_DNS_LABEL)
_LABEL_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")

_SUBDOMAIN_RULE = (
    "a DNS subdomain: lowercase alphanumerics, '-' and '.', each part starting and "
    "ending alphanumeric, at most 253 characters"
)


def _is_dns_subdomain(value: str) -> bool:
    return 0 < len(value) <= 253 and _DNS_SUBDOMAIN_RE.fullmatch(value) is not None


def _is_namespace(value: str) -> bool:
    return 0 < len(value) <= 63 and _NAMESPACE_RE.fullmatch(value) is not None


def _label_key_problem(value: str) -> str | None:
    """Why `value` is not a valid label key, or None when it is."""
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not _is_dns_subdomain(prefix):
            return f"label key prefix {prefix!r} must be {_SUBDOMAIN_RULE}"
    if not 0 < len(name) <= 63 or _LABEL_NAME_RE.fullmatch(name) is None:
        return (
            "label key name must be 1-63 characters of alphanumerics, '-', '_' and '.', "
            "starting and ending alphanumeric"
        )
    return None


# --------------------------------------------------------------------------- YAML walking

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _BOOL, _NULL, _FLOAT = (_TAG + t for t in ("str", "int", "bool", "null", "float"))

_TOP_KEYS = ("labels", "exemptNamespaces", "ownNamespace", "rules", "failureMode", "maxBodyBytes",
             "scanIntervalSeconds")
_LABEL_KEYS = ("prefix", "fromNamespace", "required")


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _got(node: Node) -> str:
    """A short description of a node's value for error messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _STR:
        return repr(node.value)
    if node.tag == _NULL:
        return "nothing"
    if node.tag.startswith(_TAG):
        return str(node.value)
    return f"a value tagged {node.tag}"


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


class _Walker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Node, key: str, reason: str) -> NoReturn:
        raise ConfigError(self.source, node.start_mark.line + 1, key, reason)

    def mapping(
        self,
        node: Node,
        key: str,
        allowed: tuple[str, ...],
        hint: Mapping[str, str] | None = None,
    ) -> dict[str, Node]:
        """The value nodes of a mapping whose keys must be in `allowed`.

        An empty value (null) counts as an empty mapping. `hint` gives a better reason
        for keys that are known elsewhere but not allowed here.
        """
        if _is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"must be a mapping with keys among {', '.join(allowed)} (got {_got(node)})")
        found: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR):
                self.fail(key_node, _join(key, str(getattr(key_node, "value", "?"))),
                          f"unknown key; expected one of {', '.join(allowed)}")
            name = key_node.value
            child = _join(key, name)
            if name not in allowed:
                reason = f"unknown key; expected one of {', '.join(allowed)}"
                if hint and name in hint:
                    reason = f"{hint[name]}; expected one of {', '.join(allowed)}"
                else:
                    close = difflib.get_close_matches(name, allowed, n=1)
                    if close:
                        reason += f" (did you mean {close[0]!r}?)"
                self.fail(key_node, child, reason)
            if name in found:
                self.fail(key_node, child, f"duplicate key (first given on line {first_line[name]})")
            found[name] = value_node
            first_line[name] = key_node.start_mark.line + 1
        return found

    def string(self, node: Node, key: str) -> str:
        if not (isinstance(node, ScalarNode) and node.tag == _STR):
            self.fail(node, key, f"must be a string (got {_got(node)})")
        return node.value

    def choice(self, node: Node, key: str, enum_type: type[enum.Enum]):
        choices = [member.value for member in enum_type]
        if not (isinstance(node, ScalarNode) and node.tag == _STR and node.value in choices):
            self.fail(node, key, f"must be one of {', '.join(choices)} (got {_got(node)})")
        return enum_type(node.value)

    def positive_int(self, node: Node, key: str) -> int:
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            self.fail(node, key, f"must be an integer greater than 0, not a boolean (got {_got(node)})")
        if isinstance(node, ScalarNode) and node.tag == _STR:
            self.fail(node, key, f"must be an integer greater than 0, not a string (got {_got(node)})")
        if not (isinstance(node, ScalarNode) and node.tag == _INT):
            self.fail(node, key, f"must be an integer greater than 0 (got {_got(node)})")
        value = SafeConstructor().construct_yaml_int(node)
        if value <= 0:
            self.fail(node, key, f"must be an integer greater than 0 (got {node.value})")
        return value

    def string_list(self, node: Node, key: str, check, what: str) -> list[str]:
        """A list of strings, each passing `check` (returns a problem or None), no repeats."""
        if not isinstance(node, SequenceNode):
            self.fail(node, key, f"must be a list of {what} (got {_got(node)})")
        values: list[str] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(node.value):
            item_key = f"{key}[{index}]"
            if not (isinstance(item, ScalarNode) and item.tag == _STR):
                self.fail(item, item_key, f"must be a string (got {_got(item)})")
            value = item.value
            problem = check(value)
            if problem:
                self.fail(item, item_key, f"{problem} (got {value!r})")
            if value in seen:
                self.fail(item, item_key, f"duplicate {value!r} (first given on line {seen[value]})")
            seen[value] = item.start_mark.line + 1
            values.append(value)
        return values


def _namespace_problem(value: str) -> str | None:
    if _is_namespace(value):
        return None
    return (
        "must be a valid namespace name (DNS-1123 label: at most 63 lowercase "
        "alphanumerics or '-', starting and ending alphanumeric)"
    )


def _build(root: Node | None, source: str) -> Settings:
    if root is None or _is_null(root):  # empty file, only comments, or a bare "---"
        return default_settings()
    w = _Walker(source)
    if not isinstance(root, MappingNode):
        w.fail(root, "", f"top level must be a mapping (got {_got(root)})")
    top = w.mapping(root, "", _TOP_KEYS)

    labels = LabelSettings()
    if "labels" in top:
        section = w.mapping(top["labels"], "labels", _LABEL_KEYS)
        prefix = labels.prefix
        if "prefix" in section:
            prefix = w.string(section["prefix"], "labels.prefix")
            if not _is_dns_subdomain(prefix):
                w.fail(section["prefix"], "labels.prefix", f"must be {_SUBDOMAIN_RULE} (got {prefix!r})")
        lists = {}
        for yaml_key in ("fromNamespace", "required"):
            if yaml_key in section:
                lists[yaml_key] = tuple(
                    w.string_list(section[yaml_key], f"labels.{yaml_key}", _label_key_problem, "label keys")
                )
        if "fromNamespace" in section:
            # Labels under the prefix always reflect the spec; a copy from the namespace would
            # fight the derived value on every update.
            w.string_list(section["fromNamespace"], "labels.fromNamespace",
                          lambda key: f"is under labels.prefix {prefix!r}, whose labels netguard derives"
                          if key.startswith(prefix + "/") else None, "label keys")
        labels = LabelSettings(
            prefix=prefix,
            from_namespace=lists.get("fromNamespace", ()),
            required=lists.get("required", ()),
        )

    own_namespace = DEFAULT_OWN_NAMESPACE
    if "ownNamespace" in top:
        own_namespace = w.string(top["ownNamespace"], "ownNamespace")
        problem = _namespace_problem(own_namespace)
        if problem:
            w.fail(top["ownNamespace"], "ownNamespace", f"{problem} (got {own_namespace!r})")

    exempt = DEFAULT_EXEMPT_NAMESPACES
    if "exemptNamespaces" in top:
        exempt = frozenset(
            w.string_list(top["exemptNamespaces"], "exemptNamespaces", _namespace_problem, "namespace names")
        )

    rules: dict[str, RuleSettings] = {}
    if "rules" in top:
        section = w.mapping(top["rules"], "rules", RULE_NAMES)
        for name, rule_node in section.items():
            base = f"rules.{name}"
            if name in _DRY_RUN_RULES:
                keys = w.mapping(rule_node, base, ("action", "dryRun", "sourceRanges"))
            else:
                keys = w.mapping(
                    rule_node, base, ("action",),
                    hint={"dryRun": f"only {', '.join(sorted(_DRY_RUN_RULES))} takes dryRun"},
                )
            action = Action.DENY
            dry_run = DryRunMode.SAME
            if "action" in keys:
                action = w.choice(keys["action"], f"{base}.action", Action)
            if "dryRun" in keys:
                dry_run = w.choice(keys["dryRun"], f"{base}.dryRun", DryRunMode)
            source_ranges = SourceRangesMode.IGNORE
            if "sourceRanges" in keys:
                source_ranges = w.choice(keys["sourceRanges"], f"{base}.sourceRanges", SourceRangesMode)
            rules[name] = RuleSettings(action=action, dry_run=dry_run, source_ranges=source_ranges)

    failure_mode = FailureMode.CLOSED
    if "failureMode" in top:
        failure_mode = w.choice(top["failureMode"], "failureMode", FailureMode)

    max_body_bytes = DEFAULT_MAX_BODY_BYTES
    if "maxBodyBytes" in top:
        max_body_bytes = w.positive_int(top["maxBodyBytes"], "maxBodyBytes")

    scan_interval = DEFAULT_SCAN_INTERVAL_SECONDS
    if "scanIntervalSeconds" in top:
        scan_interval = w.positive_int(top["scanIntervalSeconds"], "scanIntervalSeconds")

    return Settings(
        labels=labels,
        exempt_namespaces=exempt,
        own_namespace=own_namespace,
        rules=rules,
        failure_mode=failure_mode,
        max_body_bytes=max_body_bytes,
        scan_interval_seconds=scan_interval,
    )


# --------------------------------------------------------------------------- entry points


def parse_settings(text: str, source: str = "<config>") -> Settings:
    """Parse and validate configuration YAML; `source` names it in errors."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        reason = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
        context_mark = exc.context_mark
        if exc.context and exc.problem and not exc.context.startswith("while"):
            reason = f"invalid YAML: {exc.context}, {exc.problem}"
        elif exc.context and exc.problem:
            if context_mark is not None and mark is not None and context_mark.line != mark.line:
                reason += f" ({exc.context} that starts on line {context_mark.line + 1})"
            else:
                reason += f" ({exc.context})"
        raise ConfigError(source, line, "", reason) from None
    except yaml.reader.ReaderError as exc:
        char = exc.character
        code = ord(char) if isinstance(char, str) else char
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else 0
        raise ConfigError(
            source, line, "", f"invalid YAML: unacceptable character #x{code:04x}: {exc.reason}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, 0, "", f"invalid YAML: {exc}") from None
    return _build(root, source)


def load_settings(path: str | os.PathLike) -> Settings:
    """Read, parse and validate the configuration file at `path`."""
    source = os.fsdecode(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(source, 0, "", "cannot read configuration: file not found") from None
    except OSError as exc:
        raise ConfigError(source, 0, "", f"cannot read configuration: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source, 0, "", f"cannot read configuration: not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    return parse_settings(text, source)


def load_settings_or_default(path: str | os.PathLike | None) -> Settings:
    """The settings in `path`, or the defaults when no file is given (every command's --config)."""
    return load_settings(path) if path else default_settings()
