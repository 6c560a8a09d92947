"""Egress control through the decision core: the table (tests/egress_cases.py), the label
selector to the letter of the API, the policy-type labels, the fix-it YAML (applied, it makes the
LoadBalancer admitted without a warning), the configuration and its errors, and the default:
nothing about egress is required."""

from __future__ import annotations

import pytest
import yaml

from tests.egress_cases import (CONFIG, IDS, INDEXED, NOT_SELECTED, SELECTOR, expect, namespace_of,
                                review, state_objects)
from tests.denials import fix_documents, named
from tests.reviews import make_request, namespace, policy, service, view_of
from webhook.core import decide, labels, messages, netpol
from webhook.core.config import ConfigError, parse_settings
from webhook.core.egress import EgressSettings
from webhook.core.settings import default_settings
from webhook.wire.review import parse_review

SETTINGS = parse_settings(CONFIG, "egress.yaml")
CLUSTER_WIDE = parse_settings("egress: {required: true}\n", "egress.yaml")
NP_API = "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/"
DENY_IN = {"podSelector": {}, "policyTypes": ["Ingress"]}
WEB_IN = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
          "ingress": [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]}


def decide_row(index, case, settings):
    req = parse_review(review(index, case))
    return decide.validate(req, view_of(state_objects(index, case), namespace_of(index)), settings)


@pytest.mark.parametrize("index, case", INDEXED, ids=IDS)
def test_egress_case(index, case):
    decision = decide_row(index, case, SETTINGS)
    expect(case, decision.allowed, decision.rule, list(decision.warnings))


def test_every_row_cites_its_source():
    assert all("https://kubernetes.io/docs/" in case.why or "egress.required" in case.why
               for _, case in INDEXED)


@pytest.mark.parametrize("index, case", INDEXED, ids=IDS)
def test_off_by_default_nothing_about_egress_is_required(index, case):
    decision = decide_row(index, case, default_settings())
    # Only the row without an ingress default-deny is refused, as before egress control.
    assert decision.allowed is (case.id != "selected-namespace-needs-ingress-too"), (case.id, decision)
    assert not any("egress" in w for w in decision.warnings)


@pytest.mark.parametrize("index, case", [(i, c) for i, c in INDEXED if c.labels is NOT_SELECTED],
                         ids=[c.id for c in (c for _, c in INDEXED) if c.labels is NOT_SELECTED])
def test_cluster_wide_requires_it_everywhere(index, case):
    # The rows an unselected namespace lets pass are refused once every namespace is selected.
    decision = decide_row(index, case, CLUSTER_WIDE)
    assert not decision.allowed, (case.id, decision)


def test_a_namespace_of_unknown_labels_is_held_to_the_selector():
    """`netguard check` without the Namespace manifest: the selector may select it, so the
    requirement holds, and the denial says why (a check never passes what the server refuses)."""
    state = [policy("deny", DENY_IN, namespace="shop"), policy("web", WEB_IN, namespace="shop")]
    req = make_request(obj=service("web", type="LoadBalancer", namespace="shop"))
    refused = decide.validate(req, view_of(state, "shop"), SETTINGS)
    assert not refused.allowed and "does not know the labels of namespace shop" in refused.message
    wide = decide.validate(req, view_of(state, "shop"), CLUSTER_WIDE)
    assert not wide.allowed and "does not know the labels" not in wide.message
    known = decide.validate(req, view_of([namespace("shop", NOT_SELECTED), *state], "shop"), SETTINGS)
    assert known.allowed and not known.warnings


# --------------------------------------------------------------------------- the selector

SELECTORS = [  # (selector, namespace labels, selected?, the API rule)
    ({}, {}, True, "an empty selector selects everything"),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, "matchLabels: the pair must be present"),
    ({"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False, "matchLabels pairs are ANDed"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, {"a": "3"}, True,
     "In: the value is one of the values"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False,
     "In: a missing key matches no value"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True,
     "NotIn: a missing key is not among the values"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False,
     "NotIn: the value is one of the values"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True, "Exists: the key, any value"),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False,
     "DoesNotExist: the key is absent"),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False,
     "matchLabels and matchExpressions are ANDed"),
]


@pytest.mark.parametrize("selector, ns_labels, selected, why", SELECTORS, ids=[s[3] for s in SELECTORS])
def test_namespace_selector_to_the_letter(selector, ns_labels, selected, why):
    # SELECTOR (the LabelSelector API reference) for every row.
    assert SELECTOR.startswith("https://kubernetes.io/docs/reference/kubernetes-api/")
    text = yaml.safe_dump({"egress": {"required": True, "namespaceSelector": selector}})
    egress = parse_settings(text, "egress.yaml").egress
    view = view_of([namespace("shop", ns_labels)], "shop")
    assert egress.required_in(view) is selected, why
    assert set(egress.label_keys()) == {*selector.get("matchLabels", {}),
                                        *(e["key"] for e in selector.get("matchExpressions", []))}


def test_the_live_inventory_keeps_the_label_keys_the_selector_reads():
    settings = parse_settings("labels: {fromNamespace: [team]}\n" + CONFIG, "egress.yaml")
    assert settings.namespace_label_keys() == ("team", "exposure", "tier")
    assert default_settings().namespace_label_keys() == ()
    assert EgressSettings(required=False, namespace_selector=SETTINGS.egress.namespace_selector).label_keys() == ()


# --------------------------------------------------------------------------- policy-type labels

POLICY_TYPES = [  # (spec, label, the API rule), all from NP_API (NetworkPolicySpec.policyTypes)
    ({"podSelector": {}, "policyTypes": ["Egress"]}, "default-deny-egress", "every pod, Egress, no egress rules"),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, "default-deny-all", "both types, no rules"),
    ({"podSelector": {}, "egress": []}, "default-deny-ingress",
     "policyTypes omitted and no egress rules: Ingress only"),
    ({"podSelector": {}, "egress": [{}]}, "default-deny-ingress",
     "policyTypes omitted with egress rules: Ingress and Egress; egress allows everything"),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}]}, "default-deny-egress",
     "ingress allowed to all, egress denied"),
    ({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]}, "isolate-egress",
     "some pods, no egress rules: those pods are isolated for egress"),
    ({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}],
                                                                "ports": [{"protocol": "UDP", "port": 53}]}]},
     "allow", "egress rules allow what they list"),
]


@pytest.mark.parametrize("spec, label, why", POLICY_TYPES, ids=[p[2] for p in POLICY_TYPES])
def test_policy_type_labels_follow_the_directions(spec, label, why):
    assert NP_API.endswith("network-policy-v1/")
    assert labels.policy_type(policy("p", spec)) == label, why


# --------------------------------------------------------------------------- the fix-it YAML


@pytest.mark.parametrize("config, ns_labels", [(CONFIG, {"exposure": "public"}),
                                               ("egress: {required: true}\n", {})])
@pytest.mark.parametrize("state", [[], [policy("deny", DENY_IN, namespace="shop")]], ids=["none", "ingress"])
def test_applying_the_fix_admits_the_load_balancer_without_warnings(config, ns_labels, state):
    settings = parse_settings(config, "egress.yaml")
    objects = [namespace("shop", ns_labels), *state, policy("web", WEB_IN, namespace="shop")]
    req = make_request(obj=service("web", type="LoadBalancer", namespace="shop"))
    refused = decide.validate(req, view_of(objects, "shop"), settings)
    assert not refused.allowed
    fix = fix_documents(refused.message)
    names = [d["metadata"]["name"] for d in fix]
    assert names == (["default-deny-egress"] if state else ["default-deny-ingress", "default-deny-egress"]) \
        + ["allow-dns-egress"]
    dns = fix[-1]["spec"]["egress"][0]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    admitted = decide.validate(req, view_of(objects + fix, "shop"), settings)
    assert admitted.allowed and admitted.warnings == (), admitted
    # The fix's own policies pass the guard, and carry the labels that say what they do.
    assert [labels.policy_type(d) for d in fix][-2:] == ["default-deny-egress", "allow"]


def test_the_dns_target_is_the_configured_one():
    settings = parse_settings("""\
egress:
  required: true
  dns:
    namespace: dns
    podLabels: {app.kubernetes.io/name: coredns}
    ports: [{protocol: UDP, port: 5353}, {port: dns-tcp}]
""", "egress.yaml")
    req = make_request(obj=service("web", type="LoadBalancer", namespace="shop"))
    refused = decide.validate(req, view_of([namespace("shop"), policy("deny", DENY_IN)], "shop"), settings)
    dns = named(fix_documents(refused.message), "allow-dns-egress")["spec"]["egress"][0]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "dns"}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "coredns"}
    assert dns["ports"] == [{"protocol": "UDP", "port": 5353}, {"protocol": "TCP", "port": "dns-tcp"}]
    assert "UDP 5353 and TCP dns-tcp to the pods app.kubernetes.io/name=coredns of namespace dns" in refused.message


def test_messages_keep_the_ingress_texts_when_egress_is_not_missing():
    assert messages.loadbalancer_summary("a", "b") == \
        "Service a/b: LoadBalancer without a default-deny ingress NetworkPolicy in its namespace"
    assert messages.loadbalancer_summary("a", "b", ("Ingress", "Egress")) == \
        "Service a/b: LoadBalancer without a default-deny ingress and egress NetworkPolicy in its namespace"
    assert messages.default_deny_yaml("a") == messages.default_deny_yaml("a", netpol.INGRESS)


# --------------------------------------------------------------------------- configuration

BAD = [  # (text, line, key, part of the reason)
    ("egress: {required: yes please}\n", 1, "egress.required", "must be true or false"),
    ("egress: [true]\n", 1, "egress", "must be a mapping"),
    ("egress:\n  requird: true\n", 2, "egress.requird", "did you mean 'required'"),
    ("egress:\n  namespaceSelector: {matchLabel: {a: b}}\n", 2, "egress.namespaceSelector.matchLabel",
     "did you mean 'matchLabels'"),
    ("egress:\n  namespaceSelector:\n    matchExpressions:\n    - {key: a, operator: In}\n", 4,
     "egress.namespaceSelector.matchExpressions[0].values", "non-empty list with operator In"),
    ("egress:\n  namespaceSelector:\n    matchExpressions:\n    - {key: a, operator: Exists, values: [x]}\n",
     4, "egress.namespaceSelector.matchExpressions[0].values", "must be empty with operator Exists"),
    ("egress:\n  namespaceSelector:\n    matchExpressions:\n    - {key: a, operator: Equals, values: [x]}\n",
     4, "egress.namespaceSelector.matchExpressions[0].operator", "In, NotIn, Exists, DoesNotExist"),
    ("egress:\n  namespaceSelector:\n    matchExpressions:\n    - {operator: Exists}\n",
     4, "egress.namespaceSelector.matchExpressions[0].key", "is required"),
    ("egress:\n  namespaceSelector:\n    matchLabels: {'-a': b}\n", 3,
     "egress.namespaceSelector.matchLabels.-a", "label key name"),
    ("egress:\n  namespaceSelector:\n    matchLabels: {a: 'b c'}\n", 3,
     "egress.namespaceSelector.matchLabels.a", "label value"),
    ("egress:\n  dns: {namespace: Kube_System}\n", 2, "egress.dns.namespace", "valid namespace name"),
    ("egress:\n  dns:\n    ports: []\n", 3, "egress.dns.ports", "non-empty list"),
    ("egress:\n  dns:\n    ports: [{protocol: ICMP, port: 53}]\n", 3, "egress.dns.ports[0].protocol",
     "TCP, UDP, SCTP"),
    ("egress:\n  dns:\n    ports: [{port: 0}]\n", 3, "egress.dns.ports[0].port", "1-65535"),
    ("egress:\n  dns:\n    ports: [{protocol: UDP}]\n", 3, "egress.dns.ports[0].port", "is required"),
    ("egress:\n  dns:\n    ports: [{port: 53}, {protocol: TCP, port: 53}]\n", 3, "egress.dns.ports[1]",
     "duplicate port TCP 53"),
]


@pytest.mark.parametrize("text, line, key, reason", BAD, ids=[b[2] for b in BAD])
def test_a_bad_egress_configuration_names_file_line_and_key(text, line, key, reason):
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "netguard.yaml")
    error = caught.value
    assert (error.path, error.line, error.key) == ("netguard.yaml", line, key), str(error)
    assert reason in error.reason, str(error)


def test_a_full_egress_configuration_parses():
    egress = SETTINGS.egress
    assert egress.required is True
    assert egress.namespace_selector == netpol.frozen_selector(
        {"matchLabels": {"exposure": "public"},
         "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["legacy"]}]})
    assert default_settings().egress == EgressSettings() and not EgressSettings().required
