"""webhook/core/config.py and webhook/cli/configfile.py: loading, defaults, validation and error
locations."""

from __future__ import annotations

import dataclasses
import pickle
import textwrap
import types

import pytest

from webhook.core import registry
from webhook.core.options import Action, FailureMode, LabelSettings, RuleSettings
from webhook.core.registry import RULE_NAMES
from webhook.core.rules.loadbalancer import DryRunMode
from webhook.core.settings import Settings, default_settings
from webhook.core.config import ConfigError, parse_settings
from webhook.cli.configfile import load_settings

LB, GUARD, LABELS = "loadbalancer-requires-default-deny", "protect-default-deny", "required-labels"


def rule_settings(name: str, action: Action = Action.DENY, **options) -> RuleSettings:
    """Rule `name`'s settings with `action` and `options`, the rest at their defaults."""
    return registry.rule(name).settings(action, **options)


KUBE_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}


def write(tmp_path, text: str, name: str = "netguard.yaml"):
    """Write `text` (dedented, leading newline dropped) so line 1 is its first line."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("# only a comment\n\n# and another\n", id="only-comments"),
        pytest.param("---\n", id="empty-document"),
        pytest.param("{}\n", id="empty-mapping"),
        pytest.param("labels:\nrules:\n", id="empty-sections"),
    ],
)
def test_defaults_when_empty(tmp_path, text):
    settings = load_settings(write(tmp_path, text))
    assert settings == default_settings()


def test_default_values():
    s = default_settings()
    assert s.labels == LabelSettings(prefix="netguard", from_namespace=(), required=())
    assert s.own_namespace == "netguard-system"
    assert s.exempt_namespaces == frozenset(KUBE_NAMESPACES | {"netguard-system"})
    assert tuple(s.rules) == RULE_NAMES
    assert all(r == rule_settings(name) and r.action == Action.DENY for name, r in s.rules.items())
    assert s.rule(LB).dry_run == DryRunMode.SAME
    assert s.failure_mode is FailureMode.CLOSED
    assert s.max_body_bytes == 8388608
    assert RULE_NAMES == ("loadbalancer-requires-default-deny", "protect-default-deny", "required-labels")


def test_defaults_file_round_trips(tmp_path):
    """The documented defaults, written out in full, give the default settings."""
    path = write(
        tmp_path,
        """
        labels:
          prefix: netguard
          fromNamespace: []
          required: []
        exemptNamespaces: [kube-system, kube-public, kube-node-lease]
        ownNamespace: netguard-system
        rules:
          loadbalancer-requires-default-deny: {action: deny, dryRun: same}
          protect-default-deny: {action: deny}
          required-labels: {action: deny}
        failureMode: closed
        maxBodyBytes: 8388608
        """,
    )
    assert load_settings(path) == default_settings()


# --------------------------------------------------------------------------- valid files


def test_full_valid_file(tmp_path):
    path = write(
        tmp_path,
        """
        # netguard configuration
        labels:
          prefix: sec.example.com
          fromNamespace: [team, example.com/cost-center]
          required:
            - team
            - app.kubernetes.io/name
        exemptNamespaces:
          - kube-system
          - monitoring
        ownNamespace: guard
        rules:
          loadbalancer-requires-default-deny:
            action: warn
            dryRun: warn
          protect-default-deny:
            action: audit
          required-labels:
            action: warn
        failureMode: open
        maxBodyBytes: 1048576
        """,
    )
    assert load_settings(path) == Settings(
        labels=LabelSettings(
            prefix="sec.example.com",
            from_namespace=("team", "example.com/cost-center"),
            required=("team", "app.kubernetes.io/name"),
        ),
        exempt_namespaces=frozenset({"kube-system", "monitoring", "guard"}),
        own_namespace="guard",
        rules={
            "loadbalancer-requires-default-deny": rule_settings(LB, Action.WARN, dry_run=DryRunMode.WARN),
            "protect-default-deny": rule_settings(GUARD, Action.AUDIT),
            "required-labels": rule_settings(LABELS, Action.WARN),
        },
        failure_mode=FailureMode.OPEN,
        max_body_bytes=1048576,
    )


def test_parse_settings_matches_load_settings(tmp_path):
    text = "failureMode: open\nmaxBodyBytes: 1024\n"
    assert parse_settings(text) == load_settings(write(tmp_path, text))


def test_partial_rule_keeps_defaults(tmp_path):
    path = write(
        tmp_path,
        """
        rules:
          loadbalancer-requires-default-deny:
            dryRun: warn
          required-labels: {action: audit}
        """,
    )
    s = load_settings(path)
    assert s.rule("loadbalancer-requires-default-deny") == rule_settings(LB, Action.DENY, dry_run=DryRunMode.WARN)
    assert s.rule("required-labels") == rule_settings(LABELS, Action.AUDIT)
    assert s.rule("protect-default-deny") == rule_settings(GUARD)
    assert tuple(s.rules) == RULE_NAMES
    # untouched sections keep their defaults too
    assert s.labels == LabelSettings()
    assert s.max_body_bytes == 8388608


def test_partial_labels_keep_defaults(tmp_path):
    s = load_settings(write(tmp_path, "labels:\n  required: [team]\n"))
    assert s.labels == LabelSettings(prefix="netguard", from_namespace=(), required=("team",))


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("", KUBE_NAMESPACES | {"netguard-system"}, id="default"),
        pytest.param("ownNamespace: guard\n", KUBE_NAMESPACES | {"guard"}, id="own-added-to-default"),
        pytest.param("exemptNamespaces: []\n", {"netguard-system"}, id="empty-list-keeps-own"),
        pytest.param(
            "exemptNamespaces: [monitoring]\nownNamespace: guard\n", {"monitoring", "guard"}, id="own-added-to-list"
        ),
        pytest.param("exemptNamespaces: [guard]\nownNamespace: guard\n", {"guard"}, id="own-listed-explicitly"),
    ],
)
def test_own_namespace_always_exempt(tmp_path, text, expected):
    s = load_settings(write(tmp_path, text))
    assert s.own_namespace in s.exempt_namespaces
    assert s.exempt_namespaces == frozenset(expected)


def test_own_namespace_exempt_when_constructed_directly():
    s = Settings(own_namespace="guard", exempt_namespaces=frozenset({"x"}))
    assert s.exempt_namespaces == frozenset({"x", "guard"})


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("1", 1, id="one"),
        pytest.param("0x10", 16, id="hex"),
        pytest.param("1_000", 1000, id="underscores"),
    ],
)
def test_max_body_bytes_integer_forms(value, expected):
    assert parse_settings(f"maxBodyBytes: {value}\n").max_body_bytes == expected


def test_quoted_and_flow_forms_are_fine():
    s = parse_settings('ownNamespace: "guard"\nfailureMode: \'open\'\nrules: {required-labels: {action: warn}}\n')
    assert s.own_namespace == "guard"
    assert s.failure_mode is FailureMode.OPEN
    assert s.rule("required-labels").action is Action.WARN


# --------------------------------------------------------------------------- immutability


def test_settings_is_frozen():
    s = default_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_body_bytes = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.labels.prefix = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rule("required-labels").action = Action.WARN  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del s.rule("required-labels").action  # type: ignore[misc]


def test_rule_options_are_read_without_the_attribute_error_fallback():
    # Rules read their options on every admission call: each must be found as the settings'
    # own attribute, not by __getattr__ after a failed lookup.
    own = rule_settings(LB, Action.WARN, dry_run=DryRunMode.WARN)
    assert vars(own)["action"] is Action.WARN and vars(own)["dry_run"] is DryRunMode.WARN
    assert own.action is Action.WARN and own.values["dry_run"] is DryRunMode.WARN
    with pytest.raises(AttributeError, match="no option 'colour'"):
        own.colour  # noqa: B018
    with pytest.raises(ValueError, match="replace"):
        RuleSettings({"replace": Action.DENY})


def test_rules_mapping_is_immutable():
    s = default_settings()
    assert isinstance(s.rules, types.MappingProxyType)
    with pytest.raises(TypeError):
        s.rules["required-labels"] = rule_settings(LABELS, Action.AUDIT)  # type: ignore[index]
    with pytest.raises(TypeError):
        del s.rules["required-labels"]  # type: ignore[attr-defined]


def test_collections_are_immutable_types():
    s = parse_settings("labels:\n  required: [a]\n  fromNamespace: [b]\nexemptNamespaces: [c]\n")
    assert isinstance(s.labels.required, tuple)
    assert isinstance(s.labels.from_namespace, tuple)
    assert isinstance(s.exempt_namespaces, frozenset)
    hash(s)  # usable as a dict key / in sets


def test_rule_unknown_name():
    with pytest.raises(KeyError):
        default_settings().rule("no-such-rule")


def test_settings_rejects_unknown_rule_name_directly():
    with pytest.raises(ValueError):
        Settings(rules={"no-such-rule": rule_settings(GUARD)})


def test_enums_are_strings():
    assert Action("audit") is Action.AUDIT and Action.DENY == "deny"
    assert DryRunMode("warn") is DryRunMode.WARN
    assert FailureMode("open") is FailureMode.OPEN


# --------------------------------------------------------------------------- errors

BAD_CASES = [
    pytest.param(
        """
        labels:
          prefix: netguard
        ownNamespace: guard
        exemptNamspaces: [a]
        """,
        4, "exemptNamspaces", "unknown key", id="unknown-top-key",
    ),
    pytest.param(
        """
        labels:
          prefx: netguard
        """,
        2, "labels.prefx", "unknown key", id="unknown-labels-key",
    ),
    pytest.param(
        """
        rules:
          protect-default-deny: {action: deny}
          require-labels:
            action: warn
        """,
        3, "rules.require-labels", "unknown key", id="unknown-rule-name",
    ),
    pytest.param(
        """
        rules:
          required-labels:
            action: deny
            mode: strict
        """,
        4, "rules.required-labels.mode", "unknown key", id="unknown-rule-key",
    ),
    pytest.param(
        """
        # comment
        failureMode: open

        rules:
          protect-default-deny: {action: deny}
          required-labels:
            action: block
        """,
        7, "rules.required-labels.action", "must be one of deny, warn, audit (got 'block')", id="bad-action",
    ),
    pytest.param(
        """
        rules:
          required-labels:
            action: DENY
        """,
        3, "rules.required-labels.action", "must be one of", id="action-wrong-case",
    ),
    pytest.param(
        """
        rules:
          loadbalancer-requires-default-deny:
            action: deny
            dryRun: skip
        """,
        4, "rules.loadbalancer-requires-default-deny.dryRun", "must be one of same, warn", id="bad-dry-run",
    ),
    pytest.param(
        """
        rules:
          loadbalancer-requires-default-deny: {action: deny, dryRun: warn}
          protect-default-deny:
            action: deny
            dryRun: warn
        """,
        5, "rules.protect-default-deny.dryRun", "only loadbalancer-requires-default-deny takes dryRun",
        id="dry-run-on-rule-without-it",
    ),
    pytest.param(
        """
        rules:
          required-labels: warn
        """,
        2, "rules.required-labels", "must be a mapping", id="rule-not-mapping",
    ),
    pytest.param(
        """
        rules:
          - required-labels
        """,
        2, "rules", "must be a mapping", id="rules-not-mapping",
    ),
    pytest.param(
        """
        ownNamespace: guard
        maxBodyBytes: "8388608"
        """,
        2, "maxBodyBytes", "not a string", id="max-body-string",
    ),
    pytest.param(
        """
        ownNamespace: guard

        maxBodyBytes: 0
        """,
        3, "maxBodyBytes", "greater than 0", id="max-body-zero",
    ),
    pytest.param(
        "maxBodyBytes: -5\n",
        1, "maxBodyBytes", "greater than 0", id="max-body-negative",
    ),
    pytest.param(
        """
        failureMode: closed
        maxBodyBytes: true
        """,
        2, "maxBodyBytes", "not a boolean", id="max-body-bool",
    ),
    pytest.param(
        "maxBodyBytes: 1.5\n",
        1, "maxBodyBytes", "integer", id="max-body-float",
    ),
    pytest.param(
        """
        failureMode: shut
        """,
        1, "failureMode", "must be one of closed, open (got 'shut')", id="bad-failure-mode",
    ),
    pytest.param(
        """
        failureMode: yes
        """,
        1, "failureMode", "must be one of closed, open", id="failure-mode-bool",
    ),
    pytest.param(
        """
        labels:
          required:
            - team
            - "bad key"
        """,
        4, "labels.required[1]", "label key name", id="bad-label-key-name",
    ),
    pytest.param(
        """
        labels:
          fromNamespace:
            - Example.COM/team
        """,
        3, "labels.fromNamespace[0]", "label key prefix", id="bad-label-key-prefix",
    ),
    pytest.param(
        """
        labels:
          fromNamespace: ["team-"]
        """,
        2, "labels.fromNamespace[0]", "label key name", id="label-key-ends-with-dash",
    ),
    pytest.param(
        """
        labels:
          required: ["%s"]
        """ % ("a" * 64),
        2, "labels.required[0]", "label key name", id="label-key-name-too-long",
    ),
    pytest.param(
        """
        labels:
          required: [team, 5]
        """,
        2, "labels.required[1]", "must be a string", id="label-key-not-string",
    ),
    pytest.param(
        """
        labels:
          required: team
        """,
        2, "labels.required", "must be a list", id="label-keys-not-list",
    ),
    pytest.param(
        """
        labels:
          prefix: Net_Guard
        """,
        2, "labels.prefix", "DNS subdomain", id="bad-prefix",
    ),
    pytest.param(
        """
        labels:
          prefix: netguard.
        """,
        2, "labels.prefix", "DNS subdomain", id="prefix-trailing-dot",
    ),
    pytest.param(
        """
        labels:
          prefix: ""
        """,
        2, "labels.prefix", "DNS subdomain", id="empty-prefix",
    ),
    pytest.param(
        """
        labels:
          prefix: %s
        """ % ".".join(["a" * 60] * 5),
        2, "labels.prefix", "253", id="prefix-too-long",
    ),
    pytest.param(
        """
        labels:
          prefix: no
        """,
        2, "labels.prefix", "must be a string", id="prefix-bool",
    ),
    pytest.param(
        """
        labels:
          required:
            - team
            - app
            - team
        """,
        5, "labels.required[2]", "duplicate 'team' (first given on line 3)", id="duplicate-required",
    ),
    pytest.param(
        """
        labels:
          fromNamespace: [team, team]
        """,
        2, "labels.fromNamespace[1]", "duplicate", id="duplicate-from-namespace",
    ),
    pytest.param(
        """
        exemptNamespaces:
          - kube-system
          - Monitoring
        """,
        3, "exemptNamespaces[1]", "namespace name", id="bad-exempt-namespace",
    ),
    pytest.param(
        """
        ownNamespace: netguard_system
        """,
        1, "ownNamespace", "namespace name", id="bad-own-namespace",
    ),
    pytest.param(
        """
        ownNamespace:
        """,
        1, "ownNamespace", "must be a string", id="own-namespace-empty",
    ),
    pytest.param(
        """
        ownNamespace: %s
        """ % ("a" * 64),
        1, "ownNamespace", "namespace name", id="own-namespace-too-long",
    ),
    pytest.param(
        """
        failureMode: open
        failureMode: closed
        """,
        2, "failureMode", "duplicate key (first given on line 1)", id="duplicate-key",
    ),
]


@pytest.mark.parametrize("text, line, key, reason", BAD_CASES)
def test_bad_config(tmp_path, text, line, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    err = info.value
    message = str(err)
    assert err.path == str(path)
    assert err.line == line
    assert err.key == key
    assert reason in err.reason
    assert message.startswith(f"{path} line {line}: {key}: "), message
    assert reason in message


def test_error_message_format():
    text = (
        "# netguard\n"                             # 1
        "labels:\n"                                # 2
        "  prefix: netguard\n"                     # 3
        "failureMode: closed\n"                    # 4
        "rules:\n"                                 # 5
        "  required-labels:\n"                     # 6
        "    action: block\n"                      # 7
    )
    with pytest.raises(ConfigError) as info:
        parse_settings(text, "netguard.yaml")
    assert str(info.value) == (
        "netguard.yaml line 7: rules.required-labels.action: must be one of deny, warn, audit (got 'block')"
    )


@pytest.mark.parametrize(
    "text, line, reason",
    [
        pytest.param("- a\n- b\n", 1, "top level must be a mapping (got a list)", id="list"),
        pytest.param("# header\n\njust a string\n", 3, "top level must be a mapping (got 'just a string')", id="scalar"),
        pytest.param("42\n", 1, "top level must be a mapping (got 42)", id="number"),
    ],
)
def test_top_level_not_mapping(tmp_path, text, line, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.line == line
    assert info.value.key == ""
    assert str(info.value) == f"{path} line {line}: {reason}"


@pytest.mark.parametrize(
    "text, line",
    [
        pytest.param("labels:\n  prefix: netguard\nownNamespace: a: b\n", 3, id="mapping-value-in-scalar"),
        pytest.param("labels:\n  prefix: netguard\n required: []\n", 3, id="bad-indent"),
        pytest.param("failureMode: open\nrules: [a, b\n", 3, id="unclosed-flow-at-eof"),
        pytest.param("failureMode: open\n\tmaxBodyBytes: 1\n", 2, id="tab-indent"),
        pytest.param("failureMode: open\n---\nfailureMode: closed\n", 2, id="two-documents"),
        pytest.param("failureMode: *nothing\n", 1, id="undefined-alias"),
        pytest.param("failureMode: open\nownNamespace: a\x00b\n", 2, id="control-character"),
    ],
)
def test_yaml_syntax_error_line(tmp_path, text, line):
    path = tmp_path / "netguard.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.line == line
    assert info.value.key == ""
    assert "invalid YAML" in info.value.reason
    assert str(info.value).startswith(f"{path} line {line}: invalid YAML")


def test_unclosed_flow_names_where_it_started():
    with pytest.raises(ConfigError) as info:
        parse_settings("failureMode: open\nrules: [a, b\n")
    assert "starts on line 2" in info.value.reason


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    err = info.value
    assert err.line == 0
    assert err.path == str(path)
    assert err.key == ""
    assert "not found" in err.reason
    assert str(err) == f"{path}: {err.reason}"


def test_unreadable_path_is_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)  # a directory
    assert info.value.line == 0
    assert "cannot read" in info.value.reason


def test_not_utf8_is_config_error(tmp_path):
    path = tmp_path / "netguard.yaml"
    path.write_bytes(b"ownNamespace: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.line == 0
    assert "UTF-8" in info.value.reason


def test_config_error_is_value_error_and_pickles():
    err = ConfigError("netguard.yaml", 3, "rules.x", "bad")
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.line, copy.key, copy.reason) == ("netguard.yaml", 3, "rules.x", "bad")
    assert str(copy) == str(err) == "netguard.yaml line 3: rules.x: bad"


def test_parse_settings_default_source_name():
    with pytest.raises(ConfigError) as info:
        parse_settings("bogus: 1\n")
    assert str(info.value).startswith("<config> line 1: bogus: unknown key; expected one of ")
