"""NetworkPolicy semantics (docs/design.md) and the labels derived from them and from Services.

Each row is one policy shape as the API serves it; expectations follow the Kubernetes docs:
https://kubernetes.io/docs/concepts/services-networking/network-policies/
"""

from __future__ import annotations

import pytest

from tests.reviews import policy, service
from webhook.core import labels, netpol
from webhook.core.view import NamespaceView, PolicySummary

I, E = netpol.INGRESS, netpol.EGRESS
ALLOW_DNS = [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]}]
FROM_FRONTEND = [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]


# --------------------------------------------------------------------------- policyTypes


@pytest.mark.parametrize("spec, expected", [
    pytest.param({"podSelector": {}}, {I}, id="omitted-no-rules-is-ingress-only"),
    pytest.param({"podSelector": {}, "ingress": FROM_FRONTEND}, {I}, id="omitted-ingress-rules-ingress-only"),
    pytest.param({"podSelector": {}, "egress": ALLOW_DNS}, {I, E}, id="omitted-egress-rules-adds-egress"),
    pytest.param({"podSelector": {}, "egress": []}, {I}, id="omitted-empty-egress-list-no-egress"),
    pytest.param({"podSelector": {}, "egress": None}, {I}, id="omitted-null-egress-no-egress"),
    pytest.param({"podSelector": {}, "policyTypes": [E]}, {E}, id="explicit-egress-only"),
    pytest.param({"podSelector": {}, "policyTypes": [I]}, {I}, id="explicit-ingress-only"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E]}, {I, E}, id="explicit-both"),
    pytest.param({"podSelector": {}, "policyTypes": [E], "ingress": FROM_FRONTEND}, {E},
                 id="explicit-egress-ignores-ingress-section"),
    pytest.param({"podSelector": {}, "policyTypes": [I], "egress": ALLOW_DNS}, {I},
                 id="explicit-ingress-ignores-egress-section"),
])
def test_effective_policy_types(spec, expected):
    assert netpol.effective_policy_types(spec) == frozenset(expected)


# --------------------------------------------------------------------------- podSelector


@pytest.mark.parametrize("selector, selects_all", [
    pytest.param({}, True, id="empty-map"),
    pytest.param(None, True, id="null"),
    pytest.param({"matchLabels": {}}, True, id="empty-matchLabels"),
    pytest.param({"matchExpressions": []}, True, id="empty-matchExpressions"),
    pytest.param({"matchLabels": {}, "matchExpressions": []}, True, id="both-empty"),
    pytest.param({"matchLabels": {"app": "web"}}, False, id="matchLabels"),
    pytest.param({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, False, id="matchExpressions"),
    pytest.param({"matchLabels": {}, "matchExpressions": [{"key": "app", "operator": "Exists"}]}, False,
                 id="empty-labels-but-expressions"),
])
def test_selects_all(selector, selects_all):
    assert netpol.selects_all(selector) is selects_all


@pytest.mark.parametrize("spec", [
    pytest.param({"podSelector": {}}, id="empty-map"),
    pytest.param({"podSelector": None}, id="null"),
    pytest.param({}, id="absent"),
    pytest.param({"podSelector": {"matchLabels": {}}}, id="empty-matchLabels"),
    pytest.param({"podSelector": {"matchExpressions": []}}, id="empty-matchExpressions"),
])
def test_every_empty_pod_selector_form_makes_a_default_deny(spec):
    assert netpol.default_deny_directions(spec) == {I}


@pytest.mark.parametrize("selector", [
    pytest.param({"matchLabels": {"app": "web"}}, id="matchLabels"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]},
                 id="matchExpressions"),
])
def test_non_empty_pod_selector_is_never_default_deny(selector):
    spec = {"podSelector": selector, "policyTypes": [I, E]}
    assert netpol.default_deny_directions(spec) == frozenset()
    # It isolates the pods it selects (they get nothing from it): not "allow", which misled.
    assert labels.policy_type(policy("db-only", spec)) == "isolate-all"


# --------------------------------------------------------------------------- default-deny


@pytest.mark.parametrize("spec, directions", [
    pytest.param({"podSelector": {}, "policyTypes": [I]}, {I}, id="ingress-absent"),
    pytest.param({"podSelector": {}, "policyTypes": [I], "ingress": []}, {I}, id="ingress-empty-list"),
    pytest.param({"podSelector": {}, "policyTypes": [I], "ingress": None}, {I}, id="ingress-null"),
    pytest.param({"podSelector": {}, "policyTypes": [I], "ingress": FROM_FRONTEND}, set(), id="ingress-rules"),
    pytest.param({"podSelector": {}, "policyTypes": [I], "ingress": [{}]}, set(), id="ingress-allow-all-rule"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E]}, {I, E}, id="both-no-rules"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E], "ingress": [], "egress": []}, {I, E},
                 id="both-empty-lists"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E], "egress": ALLOW_DNS}, {I},
                 id="both-egress-rules-leave-ingress"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E], "ingress": FROM_FRONTEND}, {E},
                 id="both-ingress-rules-leave-egress"),
    pytest.param({"podSelector": {}, "policyTypes": [E]}, {E}, id="egress-only"),
    pytest.param({"podSelector": {}, "egress": ALLOW_DNS}, {I}, id="omitted-types-with-egress-rules"),
    pytest.param({"podSelector": {}, "egress": []}, {I}, id="omitted-types-egress-empty"),
    pytest.param({"podSelector": {"matchLabels": {"app": "web"}}}, set(), id="selected-pods-only"),
])
def test_default_deny_directions(spec, directions):
    assert netpol.default_deny_directions(spec) == frozenset(directions)


@pytest.mark.parametrize("spec, policy_type", [
    pytest.param({"podSelector": {}, "policyTypes": [I, E]}, "default-deny-all", id="all"),
    pytest.param({"podSelector": {}}, "default-deny-ingress", id="ingress-implicit"),
    pytest.param({"podSelector": {}, "policyTypes": [I]}, "default-deny-ingress", id="ingress-explicit"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E], "egress": ALLOW_DNS}, "default-deny-ingress",
                 id="ingress-with-dns-egress"),
    pytest.param({"podSelector": {}, "policyTypes": [E]}, "default-deny-egress", id="egress"),
    pytest.param({"podSelector": {}, "policyTypes": [I, E], "ingress": FROM_FRONTEND}, "default-deny-egress",
                 id="egress-with-ingress-rules"),
    pytest.param({"podSelector": {}, "ingress": FROM_FRONTEND}, "allow", id="allow-rules"),
    # Some pods selected, nothing allowed: they are isolated, not allowed anything.
    pytest.param({"podSelector": {"matchLabels": {"app": "web"}}}, "isolate-ingress", id="isolate-selected-pods"),
    pytest.param({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": [E]}, "isolate-egress",
                 id="isolate-selected-pods-egress"),
    pytest.param({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": [I, E], "ingress": FROM_FRONTEND},
                 "isolate-egress", id="selected-pods-allowed-in-isolated-out"),
    pytest.param({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": FROM_FRONTEND}, "allow",
                 id="allow-selected-pods"),
])
def test_policy_type_label(spec, policy_type):
    assert labels.policy_type(policy("p", spec)) == policy_type


def test_policy_summary_records_default_deny_and_name():
    summary = PolicySummary.of(policy("deny-all", {"podSelector": {}, "policyTypes": [I, E]}))
    assert summary.name == "deny-all"
    assert summary.default_deny == {I, E}
    assert summary.open_outside == ()


# --------------------------------------------------------------------------- cancelling policies


def _ingress(*rules, selector=None, types=None):
    spec = {"podSelector": {} if selector is None else selector, "ingress": list(rules)}
    if types is not None:
        spec["policyTypes"] = types
    return spec


BOTH = frozenset({"IPv4", "IPv6"})
V4, V6, NONE = frozenset({"IPv4"}), frozenset({"IPv6"}), frozenset()
# Which address families a policy alone admits completely, to every pod on every port. Only a
# rule with no `from` or ipBlock peers can admit an outside address: podSelector and
# namespaceSelector select pods, never outside addresses
# (https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/#NetworkPolicyPeer).
@pytest.mark.parametrize("spec, families", [
    pytest.param(_ingress({}), BOTH, id="empty-rule"),
    pytest.param(_ingress({"from": []}), BOTH, id="empty-from-list"),
    pytest.param(_ingress({"from": [{"podSelector": {}}]}), NONE, id="from-empty-podSelector-peer"),
    pytest.param(_ingress({"from": [{"namespaceSelector": {}}]}), NONE, id="from-empty-namespaceSelector-peer"),
    pytest.param(_ingress({"from": [{"namespaceSelector": {}, "podSelector": {}}]}), NONE,
                 id="from-both-selectors-empty"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}), V4, id="ipBlock-all-ipv4"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "::/0"}}]}), V6, id="ipBlock-all-ipv6"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}]}),
                 V4, id="ipBlock-halves-are-all-ipv4"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/1"}}]}, {"from": [{"ipBlock": {"cidr": "128.0.0.0/1"}}]}),
                 V4, id="halves-in-two-rules"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}},
                                    {"ipBlock": {"cidr": "10.0.0.0/8"}}]}), V4, id="except-covered-by-another-peer"),
    pytest.param(_ingress({"from": [{"podSelector": {"matchLabels": {"app": "x"}}},
                                    {"ipBlock": {"cidr": "0.0.0.0/0"}}]}), V4,
                 id="one-all-peer-among-others"),
    pytest.param(_ingress(FROM_FRONTEND[0], {}), BOTH, id="second-rule-allows-all"),
    pytest.param(_ingress({}, types=[I, E]), BOTH, id="explicit-ingress-type"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}), NONE,
                 id="ipBlock-with-except"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}), NONE, id="ipBlock-narrow"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "not-a-cidr"}}]}), NONE, id="ipBlock-unreadable"),
    pytest.param(_ingress({"ports": [{"protocol": "TCP", "port": 80}]}), NONE, id="empty-from-but-port"),
    pytest.param(_ingress({"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP"}]}), NONE,
                 id="all-peers-but-protocol-only-port"),
    pytest.param(_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}), NONE,
                 id="ipBlock-all-but-port"),
    pytest.param(_ingress({"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}), NONE,
                 id="labelled-namespaceSelector"),
    pytest.param(_ingress({"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}]}),
                 NONE, id="all-namespaces-but-labelled-pods"),
    pytest.param(_ingress({}, selector={"matchLabels": {"app": "web"}}), NONE, id="policy-selects-some-pods"),
    pytest.param(_ingress({}, types=[E]), NONE, id="policy-without-ingress-type"),
    pytest.param({"podSelector": {}}, NONE, id="default-deny-itself"),
    pytest.param({"podSelector": {}, "ingress": []}, NONE, id="empty-ingress-list"),
])
def test_what_a_policy_opens_to_every_outside_address(spec, families):
    assert netpol.opens_every_outside_address(spec) == families
    view = NamespaceView("shop").with_policy(policy("deny", {"podSelector": {}})).with_policy(policy("p", spec))
    assert view.open_families() == families
    assert view.cancelling_policies() == (["p"] if families else [])


def test_policies_together_can_cancel_a_default_deny():
    # Policies are additive: two halves of IPv4 in two policies admit every IPv4 address.
    view = (NamespaceView("shop").with_policy(policy("deny", {"podSelector": {}}))
            .with_policy(policy("low", _ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/1"}}]})))
            .with_policy(policy("high", _ingress({"from": [{"ipBlock": {"cidr": "128.0.0.0/1"}}]}))))
    assert view.open_families() == V4 and view.cancelling_policies() == ["high", "low"]
    assert view.without_policy("high").open_families() == NONE


def test_namespace_view_reports_default_deny_and_cancelling_policies_apart():
    view = (NamespaceView("shop")
            .with_policy(policy("deny", {"podSelector": {}}))
            .with_policy(policy("open-all", _ingress({})))
            .with_policy(policy("web", _ingress({}, selector={"matchLabels": {"app": "web"}}))))
    assert view.default_deny_policies() == ["deny"]
    assert view.default_deny_policies(E) == []
    assert view.cancelling_policies() == ["open-all"]
    assert view.without_policy("deny").default_deny_policies() == []


# --------------------------------------------------------------------------- Service exposure


@pytest.mark.parametrize("svc, exposure", [
    pytest.param(service(type="LoadBalancer"), "public", id="loadbalancer-public"),
    pytest.param(service(type="LoadBalancer", annotations={
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}), "private", id="aws-internal"),
    pytest.param(service(type="LoadBalancer", annotations={
        "service.beta.kubernetes.io/aws-load-balancer-internal": "0.0.0.0/0"}), "public",
        id="aws-internal-legacy-cidr"),  # the AWS Load Balancer Controller cannot parse it: not surely internal
    pytest.param(service(type="LoadBalancer", annotations={
        "service.beta.kubernetes.io/aws-load-balancer-internal": "false"}), "public", id="aws-internal-false"),
    pytest.param(service(type="LoadBalancer", annotations={
        "service.beta.kubernetes.io/azure-load-balancer-internal": "true"}), "private", id="azure-internal"),
    pytest.param(service(type="LoadBalancer", annotations={
        "networking.gke.io/load-balancer-type": "Internal"}), "private", id="gke-internal"),
    pytest.param(service(type="LoadBalancer", annotations={
        "cloud.google.com/load-balancer-type": "Internal"}), "private", id="gke-internal-older"),
    pytest.param(service(type="LoadBalancer", annotations={"example.com/internal": "true"}), "public",
                 id="unrelated-annotation"),
    pytest.param(service(type="NodePort"), "node", id="nodeport"),
    pytest.param(service(type="ClusterIP"), "cluster", id="clusterip"),
    pytest.param(service(type="ClusterIP", clusterIP="None"), "cluster", id="headless"),
    pytest.param(service(type=None), "cluster", id="type-omitted"),
    pytest.param(service(type="ExternalName", externalName="example.org"), "external-name", id="externalname"),
    pytest.param(service(type="ClusterIP", annotations={
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}), "cluster",
        id="internal-annotation-on-clusterip"),
])
def test_service_exposure(svc, exposure):
    assert labels.exposure(svc) == exposure


@pytest.mark.parametrize("svc, is_lb", [
    pytest.param(service(type="LoadBalancer"), True, id="loadbalancer"),
    pytest.param(service(type="NodePort"), False, id="nodeport"),
    pytest.param(service(type=None), False, id="type-omitted"),
    pytest.param(None, False, id="no-object"),
])
def test_is_load_balancer(svc, is_lb):
    assert labels.is_load_balancer(svc) is is_lb
