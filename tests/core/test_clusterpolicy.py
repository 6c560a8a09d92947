"""Cluster-wide and CNI policies: which isolate a namespace from outside the cluster, each row
citing the document it follows (webhook/core/clusterpolicy.py, docs/clusterpolicies.md)."""

from __future__ import annotations

from functools import partial

import pytest

from webhook.core import clusterpolicy
from webhook.core.calico import parse_selector

NPAPI = "https://network-policy-api.sigs.k8s.io/reference/spec/"
CNP_TYPES = "https://github.com/kubernetes-sigs/network-policy-api/blob/main/apis/v1alpha2/clusternetworkpolicy_types.go"
GNP = "https://docs.tigera.io/calico/latest/reference/resources/globalnetworkpolicy"
CALICO_NP = "https://docs.tigera.io/calico/latest/reference/resources/networkpolicy"
CALICO_LABELS = "https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels"
CILIUM_INTRO = "https://docs.cilium.io/en/stable/security/policy/intro/"
CILIUM_DENY = "https://docs.cilium.io/en/stable/security/policy/deny/"
CILIUM_ENTITIES = "https://docs.cilium.io/en/stable/security/policy/language/#entities-based"
CILIUM_RULE = "https://docs.cilium.io/en/stable/network/kubernetes/policy/#ciliumnetworkpolicy"


def obj(api_version, kind, spec, name="p", namespace=None, key="spec"):
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, key: spec}


anp = partial(obj, "policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy")
banp = partial(obj, "policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy", name="default")
cnp_api = partial(obj, "policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy")
gnp = partial(obj, "projectcalico.org/v3", "GlobalNetworkPolicy")
calico_np = partial(obj, "projectcalico.org/v3", "NetworkPolicy", namespace="shop")
ccnp = partial(obj, "cilium.io/v2", "CiliumClusterwideNetworkPolicy")
cilium_np = partial(obj, "cilium.io/v2", "CiliumNetworkPolicy", namespace="shop")


EVERY_NS = {"namespaces": {}}
DENY_ALL_NS = {"action": "Deny", "from": [{"namespaces": {}}]}

# (policy, isolates shop (labels team=a), applies to shop, document)
CASES = [
    # network-policy-api: ingress peers are namespaces and pods only -- never outside.
    (anp({"priority": 1, "subject": EVERY_NS, "ingress": [DENY_ALL_NS]}), False, True, NPAPI),
    (banp({"subject": EVERY_NS, "ingress": [DENY_ALL_NS]}), False, True, NPAPI),
    (banp({"subject": {"pods": {"namespaceSelector": {}, "podSelector": {}}}, "ingress": [DENY_ALL_NS]}),
     False, True, NPAPI),
    (banp({"subject": {"namespaces": {"matchLabels": {"team": "b"}}}, "ingress": [DENY_ALL_NS]}),
     False, False, NPAPI),
    (cnp_api({"tier": "Admin", "priority": 1, "subject": EVERY_NS, "ingress": [DENY_ALL_NS]}), False, True, CNP_TYPES),
    (cnp_api({"tier": "Baseline", "priority": 1, "subject": EVERY_NS, "ingress": [DENY_ALL_NS]}),
     False, True, CNP_TYPES),
    # Calico: a policy selecting every pod, types [Ingress], no rules: denied at the end of the tier.
    (gnp({"selector": "all()", "types": ["Ingress"]}), True, True, GNP),
    (gnp({"types": ["Ingress"]}), True, True, GNP),  # selector defaults to all()
    (gnp({"selector": "all()"}), True, True, GNP),  # types default to [Ingress] without egress rules
    (gnp({"selector": "all()", "egress": [{"action": "Allow"}]}), False, True, GNP),  # types [Egress]
    (gnp({"selector": "all()", "types": ["Egress"]}), False, True, GNP),
    (gnp({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}), True, True, GNP),
    (gnp({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Log"}, {"action": "Deny"}]}),
     True, True, GNP),
    # An earlier Allow from every address wins over the Deny after it (first match decides).
    (gnp({"selector": "all()", "types": ["Ingress"],
          "ingress": [{"action": "Allow", "source": {"nets": ["0.0.0.0/0", "::/0"]}}, {"action": "Deny"}]}),
     False, True, GNP),
    (gnp({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]}), False, True, GNP),
    # An Allow on one port only: the rest still ends denied.
    (gnp({"selector": "all()", "types": ["Ingress"],
          "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [443]}}]}), True, True, GNP),
    (gnp({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Pass"}]}), False, True, GNP),
    (gnp({"selector": "app == 'web'", "types": ["Ingress"]}), False, False, GNP),  # some pods only
    (gnp({"selector": "all()", "namespaceSelector": "team == 'a'", "types": ["Ingress"]}), True, True, GNP),
    (gnp({"selector": "all()", "namespaceSelector": "team == 'b'", "types": ["Ingress"]}), False, False, GNP),
    (gnp({"selector": "all()", "namespaceSelector": "projectcalico.org/name in {'shop', 'web'}",
          "types": ["Ingress"]}), True, True, CALICO_LABELS),
    (gnp({"selector": "projectcalico.org/namespace == 'shop'", "types": ["Ingress"]}), True, True, GNP),
    (gnp({"selector": "all()", "namespaceSelector": "team == 'a' || team == 'b'", "types": ["Ingress"]}),
     False, False, GNP),  # a selector netguard does not read: never counted
    (gnp({"selector": "all()", "types": ["Ingress"], "preDNAT": True, "applyOnForward": True}), False, False, GNP),
    (calico_np({"selector": "all()", "types": ["Ingress"]}), True, True, CALICO_NP),
    (calico_np({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]}), False, True, CALICO_NP),
    # Cilium: an empty rule selects the endpoints for default-deny and admits nothing.
    (cilium_np({"endpointSelector": {}, "ingress": [{}]}), True, True, CILIUM_INTRO),
    (cilium_np({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}), True, True, CILIUM_INTRO),
    (cilium_np({"endpointSelector": {}, "ingress": []}), False, True, CILIUM_RULE),  # empty: no ingress section
    (cilium_np({"endpointSelector": {}, "ingress": [{}], "enableDefaultDeny": {"ingress": False}}),
     False, True, CILIUM_RULE),
    (cilium_np({"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}]}), False, True, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "ingress": [{"fromEntities": ["all"]}]}), False, True, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "ingress": [{"fromEntities": ["world"],
                                                    "toPorts": [{"ports": [{"port": "443"}]}]}]}),
     True, True, CILIUM_ENTITIES),
    # Every IPv4 address on every port: open (an IPv4 cluster's LoadBalancer brings nothing else).
    (cilium_np({"endpointSelector": {}, "ingress": [{"fromCIDR": ["0.0.0.0/0"]}]}), False, True, CILIUM_RULE),
    (cilium_np({"endpointSelector": {}, "ingress": [{"fromCIDR": ["192.0.2.0/24"]}]}), True, True, CILIUM_RULE),
    (cilium_np({"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["world"]}],
                "enableDefaultDeny": {"ingress": False}}), True, True, CILIUM_DENY),
    (cilium_np({"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}), False, False, CILIUM_RULE),
    (ccnp({"endpointSelector": {}, "ingress": [{}]}), True, True, CILIUM_RULE),
    (ccnp({"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop"}}, "ingress": [{}]}),
     True, True, CILIUM_RULE),
    (ccnp({"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "web"}}, "ingress": [{}]}),
     False, False, CILIUM_RULE),
    (ccnp({"endpointSelector": {"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.team": "a"}},
           "ingress": [{}]}), True, True, CILIUM_RULE),
    (ccnp({"endpointSelector": {"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "NotIn",
                                                      "values": ["kube-system"]}]}, "ingress": [{}]}),
     True, True, "https://docs.cilium.io/en/latest/network/servicemesh/default-deny-ingress-policy/"),
    (ccnp({"nodeSelector": {}, "ingress": [{}]}), False, False, CILIUM_RULE),  # a host policy
]


@pytest.mark.parametrize("policy, isolates, applies, document", CASES,
                         ids=[f"{c[0]['kind']}-{i}" for i, c in enumerate(CASES)])
def test_isolation_from_outside(policy, isolates, applies, document):
    [summary] = clusterpolicy.summarize(policy)
    labels = {"team": "a"}
    assert summary.applies_to("shop", labels) is applies, document
    assert (summary.isolates and summary.applies_to("shop", labels)) is isolates, document


def test_a_deny_that_only_names_pods_and_namespaces_says_why():
    [summary] = clusterpolicy.summarize(banp({"subject": EVERY_NS, "ingress": [DENY_ALL_NS]}))
    assert summary.label == "BaselineAdminNetworkPolicy default"
    assert "only pods and namespaces" in summary.note and not summary.isolates
    [quiet] = clusterpolicy.summarize(anp({"priority": 1, "subject": EVERY_NS,
                                           "ingress": [{"action": "Allow", "from": [{"namespaces": {}}]}]}))
    assert quiet.note == ""  # nothing there looks like isolation


def test_open_outside_of_calico_and_cilium_allows():
    [calico] = clusterpolicy.summarize(gnp({"selector": "all()", "types": ["Ingress"], "ingress": [
        {"action": "Allow", "source": {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"]}}]}))
    assert "10.0.0.0/16" in calico.open_outside and "10.1.0.0/16" not in calico.open_outside
    assert calico.label == "Calico GlobalNetworkPolicy p"
    [cilium] = clusterpolicy.summarize(cilium_np({"endpointSelector": {}, "ingress": [
        {"fromEntities": ["world-ipv4"]}]}))
    # All of one family open is no isolation (webhook/core/view.py counts families the same way).
    assert cilium.open_outside == ("0.0.0.0/0",) and not cilium.isolates
    assert cilium.label == "CiliumNetworkPolicy shop/p"


def test_a_cilium_policy_of_several_rules_is_one_summary_per_rule():
    policy = obj("cilium.io/v2", "CiliumNetworkPolicy", [{"endpointSelector": {}, "ingress": [{}]},
                                                          {"endpointSelector": {}, "egress": [{}]}],
                 namespace="shop", key="specs")
    summaries = clusterpolicy.summarize(policy)
    assert [(s.name, s.isolates) for s in summaries] == [("p#0", True), ("p#1", False)]


@pytest.mark.parametrize("text, terms", [
    ("all()", ()), ("", ()), ("team == 'a'", (("==", "team", ("a",)),)),
    ("has(team) && team != \"b\"", (("has", "team", ()), ("!=", "team", ("b",)))),
    ("team in {'a', 'b'}", (("in", "team", ("a", "b")),)),
    ("team not in {'a'}", (("not in", "team", ("a",)),)),
    ("!has(team)", (("!has", "team", ()),)),
    ("a == 'x' || b == 'y'", None), ("(a == 'x')", None), (42, None),
])
def test_calico_selectors_netguard_reads(text, terms):
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    assert parse_selector(text) == terms


@pytest.mark.parametrize("policy", [
    banp({"subject": {"namespaces": {"matchLabels": ["a"]}}, "ingress": [DENY_ALL_NS]}),
    banp({"subject": "everything", "ingress": "x"}),
    ccnp({"endpointSelector": {"matchExpressions": "x"}, "ingress": [{}]}),
    ccnp({"endpointSelector": {"matchLabels": ["x"]}, "ingress": [{}]}),
    ccnp({"endpointSelector": [], "ingress": [{}]}),
    gnp({"selector": 7, "types": ["Ingress"], "ingress": "x"}),
    gnp({"selector": "all()", "types": "Ingress"}),
])
def test_policies_of_the_wrong_shape_never_isolate(policy):
    [summary] = clusterpolicy.summarize(policy)
    assert not summary.isolates


def test_other_objects_are_no_cluster_policies():
    assert clusterpolicy.summarize({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}) == ()
    assert clusterpolicy.summarize({"apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy"}) == ()


@pytest.mark.parametrize("labels", [{"team": "a"}, {"team": "b"}, {}])
@pytest.mark.parametrize("namespace", ["shop", "web"])
def test_the_index_finds_what_matching_every_summary_finds(namespace, labels):
    summaries = clusterpolicy.relevant(s for case in CASES for s in clusterpolicy.summarize(case[0]))
    assert len(summaries) > 20
    index = clusterpolicy.Index(summaries)
    found = index.applying(namespace, labels)
    # (The table's policies share names; a cluster's are unique by kind, namespace and name.)
    assert sorted(map(repr, found)) == sorted(map(repr, clusterpolicy.applying(summaries, namespace, labels)))
    assert found


def test_discovery_takes_the_preferred_version_serving_each_kind():
    # https://kubernetes.io/docs/reference/using-api/api-concepts/#discovery-api
    documents = {
        "/apis/projectcalico.org": {"versions": [{"version": "v3"}], "preferredVersion": {"version": "v3"}},
        "/apis/projectcalico.org/v3": {"resources": [
            {"name": "globalnetworkpolicies", "kind": "GlobalNetworkPolicy"},
            {"name": "globalnetworkpolicies/status", "kind": "GlobalNetworkPolicy"},
            {"name": "networkpolicies", "kind": "NetworkPolicy"}]},
        "/apis/policy.networking.k8s.io": {"versions": [{"version": "v1alpha1"}, {"version": "v1alpha2"}],
                                           "preferredVersion": {"version": "v1alpha2"}},
        "/apis/policy.networking.k8s.io/v1alpha2": {"resources": [
            {"name": "clusternetworkpolicies", "kind": "ClusterNetworkPolicy"},
            {"name": "adminnetworkpolicies", "kind": "AdminNetworkPolicy"}]},
        "/apis/policy.networking.k8s.io/v1alpha1": {"resources": [
            {"name": "adminnetworkpolicies", "kind": "AdminNetworkPolicy"},
            {"name": "baselineadminnetworkpolicies", "kind": "BaselineAdminNetworkPolicy"}]},
    }
    found = clusterpolicy.discover(documents.get)  # cilium.io: not served (None)
    assert found == {
        "GlobalNetworkPolicy": ("/apis/projectcalico.org/v3/globalnetworkpolicies", "projectcalico.org/v3"),
        "NetworkPolicy": ("/apis/projectcalico.org/v3/networkpolicies", "projectcalico.org/v3"),
        "ClusterNetworkPolicy": ("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
                                 "policy.networking.k8s.io/v1alpha2"),
        "AdminNetworkPolicy": ("/apis/policy.networking.k8s.io/v1alpha2/adminnetworkpolicies",
                               "policy.networking.k8s.io/v1alpha2"),
        "BaselineAdminNetworkPolicy": ("/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
                                       "policy.networking.k8s.io/v1alpha1"),
    }
    assert clusterpolicy.discover(lambda path: {"versions": "garbage"}) == {}
