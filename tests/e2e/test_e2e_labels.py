"""The labels netguard's mutating webhook adds, read back from what the API stored.

The session's netguard runs with `labels.fromNamespace: [team]` (conftest.NETGUARD_CONFIG)."""

from __future__ import annotations

import pytest

from apiserver import default_deny, network_policy, service, skip_reason

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

EXPOSURE, POLICY_TYPE = "netguard/exposure", "netguard/policy-type"
INTERNAL_AWS = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}


def test_labels_on_stored_services_and_policies(kube, netguard):
    namespace = kube.new_namespace("e2e-labels", labels={"team": "payments"})
    create_policy = kube.networking.create_namespaced_network_policy
    create_service = kube.core.create_namespaced_service

    create_policy(namespace, default_deny("deny-ingress"))
    create_policy(namespace, network_policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    create_policy(namespace, network_policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]}))
    create_policy(namespace, network_policy("allow-web", {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"ports": [{"protocol": "TCP", "port": 8080}]}],
    }, labels={"team": "edge"}))
    create_service(namespace, service("web"))
    create_service(namespace, service("internal", annotations=INTERNAL_AWS))
    # A wrong value under netguard's prefix is corrected; a user-set `team` is kept.
    create_service(namespace, service("mine", labels={"team": "storefront", EXPOSURE: "cluster"}))
    create_service(namespace, service("plain", "ClusterIP"))
    create_service(namespace, service("nodes", "NodePort"))

    policies = {name: kube.policy_labels(namespace, name)
                for name in ("deny-ingress", "deny-all", "deny-egress", "allow-web")}
    services = {name: kube.service_labels(namespace, name)
                for name in ("web", "internal", "mine", "plain", "nodes")}

    assert {n: l.get(POLICY_TYPE) for n, l in policies.items()} == {
        "deny-ingress": "default-deny-ingress", "deny-all": "default-deny-all",
        "deny-egress": "default-deny-egress", "allow-web": "allow"}
    assert {n: l.get(EXPOSURE) for n, l in services.items()} == {
        "web": "public", "internal": "private", "mine": "public", "plain": "cluster", "nodes": "node"}
    assert {n: l.get("team") for n, l in policies.items()} == {
        "deny-ingress": "payments", "deny-all": "payments", "deny-egress": "payments", "allow-web": "edge"}
    assert {n: l.get("team") for n, l in services.items()} == {
        "web": "payments", "internal": "payments", "mine": "storefront", "plain": "payments",
        "nodes": "payments"}


def test_no_team_label_when_the_namespace_has_none(kube, netguard):
    namespace = kube.new_namespace("e2e-noteam")
    kube.networking.create_namespaced_network_policy(namespace, default_deny())
    kube.core.create_namespaced_service(namespace, service("web"))
    labels = kube.service_labels(namespace, "web")
    assert labels.get(EXPOSURE) == "public" and "team" not in labels
    assert kube.policy_labels(namespace, "default-deny").get(POLICY_TYPE) == "default-deny-ingress"
