"""Egress for the cluster-wide and CNI policy families: which isolate a namespace's pods' egress to
outside the cluster, each row citing the document it follows (webhook/core/adminpolicy.py,
calico.py, cilium.py; docs/clusterpolicies.md), and how the view combines them (priority, Pass)."""

from __future__ import annotations

import pytest

from tests.core.test_clusterpolicy import (CALICO_NP, CILIUM_DENY, CILIUM_ENTITIES, CILIUM_INTRO, CILIUM_RULE,
                                           CNP_TYPES, GNP, anp, banp, calico_np, ccnp, cilium_np, cnp_api, gnp)
from webhook.core import adminpolicy, clusterpolicy, netpol
from webhook.core.view import NamespaceView

ANP_SPEC = "https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.AdminNetworkPolicySpec"
ANP_PEER = "https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.AdminNetworkPolicyEgressPeer"
ANP_PORTS = "https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.AdminNetworkPolicyPort"
BANP_SPEC = "https://network-policy-api.sigs.k8s.io/reference/spec/#policy.networking.k8s.io/v1alpha1.BaselineAdminNetworkPolicySpec"
CALICO_RULE = "https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#rule"
CILIUM_CIDR = "https://docs.cilium.io/en/stable/security/policy/language/#ip-cidr-based"
CILIUM_DNS = "https://docs.cilium.io/en/stable/security/policy/language/#dns-based"

EVERY_NS = {"namespaces": {}}
EVERYWHERE = {"networks": ["0.0.0.0/0", "::/0"]}
DENY_OUT = {"action": "Deny", "to": [EVERYWHERE]}
EVERY_NET = {"nets": ["0.0.0.0/0", "::/0"]}


def admin(*rules, priority=10, subject=EVERY_NS):
    return anp({"priority": priority, "subject": subject, "egress": list(rules)})


# (policy, isolates shop's egress to outside the cluster (labels team=a), document)
CASES = [
    # AdminNetworkPolicy: `networks` names outside addresses; Deny is final, rules in order.
    (admin(DENY_OUT), True, ANP_PEER),
    (admin({"action": "Deny", "to": [{"networks": ["0.0.0.0/1", "128.0.0.0/1", "::/0"]}]}), True, ANP_PEER),
    (admin({"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}), False, ANP_PEER),  # IPv6 stays open
    (admin({"action": "Deny", "to": [{"namespaces": {}}]}), False, ANP_PEER),  # in-cluster only
    (admin({"action": "Deny", "to": [{"nodes": {}}]}), False, ANP_PEER),
    (admin({**DENY_OUT, "ports": [{"portNumber": {"protocol": "TCP", "port": 443}}]}), False, ANP_PORTS),
    (admin({**DENY_OUT, "ports": {"allPorts": True}}), True, ANP_PORTS),  # the earlier v1alpha1 shape
    (admin({"action": "Allow", "to": [{"networks": ["0.0.0.0/0"]}]}, DENY_OUT), False, ANP_SPEC),
    (admin({"action": "Allow", "to": [{"networks": ["203.0.113.0/24"]}]}, DENY_OUT), True, ANP_SPEC),
    (admin({"action": "Allow", "to": [{"domainNames": ["api.example.com"]}]}, DENY_OUT), True, ANP_PEER),
    (admin({"action": "Pass", "to": [EVERYWHERE]}, DENY_OUT), False, ANP_SPEC),  # to the NetworkPolicies
    (admin({"action": "Allow", "to": [{"namespaces": {}}]}), False, ANP_SPEC),  # no verdict on the rest
    (admin(DENY_OUT, subject={"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}}),
     False, ANP_SPEC),  # some pods only
    (admin(DENY_OUT, subject={"namespaces": {"matchLabels": {"team": "b"}}}), False, ANP_SPEC),
    (anp({"subject": EVERY_NS, "egress": [DENY_OUT]}), False, ANP_SPEC),  # no priority: no shape the API takes
    # BaselineAdminNetworkPolicy: its deny of every outside address is a default-deny.
    (banp({"subject": EVERY_NS, "egress": [DENY_OUT]}), True, BANP_SPEC),
    (banp({"subject": EVERY_NS, "egress": [{"action": "Allow", "to": [EVERYWHERE]}, DENY_OUT]}), False, BANP_SPEC),
    (banp({"subject": EVERY_NS, "egress": [{"action": "Deny", "to": [{"namespaces": {}}]}]}), False, BANP_SPEC),
    (banp({"subject": EVERY_NS, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}), False, BANP_SPEC),
    # ClusterNetworkPolicy v1alpha2: Accept, Deny, Pass; `protocols` narrows.
    (cnp_api({"tier": "Admin", "priority": 1, "subject": EVERY_NS, "egress": [DENY_OUT]}), True, CNP_TYPES),
    (cnp_api({"tier": "Baseline", "priority": 1, "subject": EVERY_NS, "egress": [DENY_OUT]}), True, CNP_TYPES),
    (cnp_api({"tier": "Admin", "priority": 1, "subject": EVERY_NS,
              "egress": [{"action": "Accept", "to": [EVERYWHERE]}, DENY_OUT]}), False, CNP_TYPES),
    (cnp_api({"tier": "Admin", "priority": 1, "subject": EVERY_NS,
              "egress": [{**DENY_OUT, "protocols": [{"tcp": {"destinationPort": {"number": 443}}}]}]}),
     False, CNP_TYPES),
    (cnp_api({"tier": "Baseline", "priority": 1, "subject": EVERY_NS,
              "egress": [{"action": "Pass", "to": [EVERYWHERE]}]}), False, CNP_TYPES),
    # Calico: Egress in types, rules in order, denied at the end of the tier.
    (gnp({"selector": "all()", "types": ["Egress"]}), True, GNP),
    (gnp({"selector": "all()", "types": ["Ingress"]}), False, GNP),
    (gnp({"selector": "all()"}), False, GNP),  # types default to [Ingress] without egress rules
    (gnp({"selector": "all()", "egress": [{"action": "Deny"}]}), True, GNP),  # types default to [Egress]
    (gnp({"selector": "all()", "types": ["Ingress", "Egress"],
          "egress": [{"action": "Allow", "destination": EVERY_NET}, {"action": "Deny"}]}), False, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"], "egress": [{"action": "Allow"}]}), False, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"],
          "egress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [443]}}]}), True, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"],
          "egress": [{"action": "Allow", "destination": {"selector": "k8s-app == 'kube-dns'"}}]}), True, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"],
          "egress": [{"action": "Allow", "destination": {"nets": ["0.0.0.0/0"], "notNets": ["10.0.0.0/8"]}}]}),
     True, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"],
          "egress": [{"action": "Allow", "destination": {"domains": ["api.example.com"]}}]}), True, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"], "egress": [{"action": "Pass"}]}), False, CALICO_RULE),
    (gnp({"selector": "all()", "types": ["Egress"], "egress": [{"action": "Log"}, {"action": "Deny"}]}),
     True, CALICO_RULE),
    (gnp({"selector": "app == 'web'", "types": ["Egress"]}), False, GNP),
    (calico_np({"selector": "all()", "types": ["Egress"]}), True, CALICO_NP),
    # Cilium: an egress section puts the endpoints in default-deny at egress.
    (cilium_np({"endpointSelector": {}, "egress": [{}]}), True, CILIUM_INTRO),
    (cilium_np({"endpointSelector": {}, "egress": [{"toEndpoints": [{}]}]}), True, CILIUM_INTRO),
    (cilium_np({"endpointSelector": {}, "egress": []}), False, CILIUM_RULE),
    (cilium_np({"endpointSelector": {}, "ingress": [{}]}), False, CILIUM_RULE),  # ingress rules only
    (cilium_np({"endpointSelector": {}, "egress": [{}], "enableDefaultDeny": {"egress": False}}), False, CILIUM_RULE),
    (cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}), False, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["all"]}]}), False, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["world-ipv4"]}]}), False, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["cluster"]}]}), True, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["world"],
                                                   "toPorts": [{"ports": [{"port": "443"}]}]}]}), True, CILIUM_ENTITIES),
    (cilium_np({"endpointSelector": {}, "egress": [{"toCIDR": ["0.0.0.0/0"]}]}), False, CILIUM_CIDR),
    (cilium_np({"endpointSelector": {}, "egress": [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}]}]}),
     True, CILIUM_CIDR),
    (cilium_np({"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchPattern": "*"}]}]}), True, CILIUM_DNS),
    (cilium_np({"endpointSelector": {}, "egressDeny": [{"toEntities": ["world"]}],
                "enableDefaultDeny": {"egress": False}}), True, CILIUM_DENY),
    (cilium_np({"endpointSelector": {}, "egressDeny": [{"toEntities": ["world"], "toPorts": [{"ports": [{"port": "25"}]}]}],
                "enableDefaultDeny": {"egress": False}}), False, CILIUM_DENY),
    (ccnp({"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop"}}, "egress": [{}]}),
     True, CILIUM_RULE),
    (ccnp({"nodeSelector": {}, "egress": [{}]}), False, CILIUM_RULE),  # a host policy
]


@pytest.mark.parametrize("policy, isolates, document", CASES, ids=[f"{c[0]['kind']}-{i}" for i, c in enumerate(CASES)])
def test_egress_isolation_to_outside(policy, isolates, document):
    [summary] = clusterpolicy.summarize(policy)
    view = NamespaceView("shop", labels={"team": "a"}, known=True)
    applies = summary.applies_to("shop", {"team": "a"})
    assert (applies and bool(view.with_cluster((summary,)).default_deny_policies(netpol.EGRESS))) is isolates, document


def test_egress_rows_leave_ingress_as_it_was():
    """The ingress verdicts of these rows' families are what they were: an egress section never
    makes a policy count for ingress."""
    for policy, _, document in CASES:
        [summary] = clusterpolicy.summarize(policy)
        if summary.kind.endswith("AdminNetworkPolicy") or summary.kind == "ClusterNetworkPolicy":
            assert not summary.isolates, document
        if not policy["spec"].get("ingress") and summary.kind.startswith("Cilium"):
            assert not summary.isolates, document


def test_open_destinations_are_kept_for_the_cancel_count():
    [calico] = clusterpolicy.summarize(gnp({"selector": "all()", "types": ["Egress"], "egress": [
        {"action": "Allow", "destination": {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"]}}]}))
    assert "10.0.0.0/16" in calico.open_egress and "10.1.0.0/16" not in calico.open_egress and calico.isolates_egress
    [allow] = clusterpolicy.summarize(admin({"action": "Allow", "to": [{"networks": ["203.0.113.0/24"]}]}, DENY_OUT))
    assert allow.open_egress == ("203.0.113.0/24",) and allow.priority == 10 and not allow.passes_egress
    [cilium] = clusterpolicy.summarize(cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["world-ipv6"]}]}))
    assert cilium.open_egress == ("::/0",) and cilium.open_outside == ()


@pytest.mark.parametrize("policy, note", [
    (admin({"action": "Deny", "to": [{"namespaces": {}}]}), adminpolicy.EGRESS_NOTE),
    (admin({"action": "Pass", "to": [EVERYWHERE]}, DENY_OUT), adminpolicy.PASS_NOTE),
    (banp({"subject": EVERY_NS, "egress": [{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]}),
     adminpolicy.EGRESS_NOTE),
    (cilium_np({"endpointSelector": {}, "egress": [{}], "enableDefaultDeny": {"egress": False}}),
     "enableDefaultDeny.egress is false: it only adds to what is allowed"),
    (gnp({"selector": "all()", "types": ["Egress"], "egress": [{"action": "Pass"}]}),
     "its egress rules pass outside destinations to the next tier"),
    (cnp_api({"tier": "Baseline", "priority": 1, "subject": EVERY_NS, "egress": [{"action": "Pass", "to": [EVERYWHERE]}]}),
     adminpolicy.BASELINE_PASS_NOTE),
    (admin(DENY_OUT), ""),
    (admin({"action": "Allow", "to": [{"namespaces": {}}]}), ""),  # nothing that looks like isolation
])
def test_what_looks_like_egress_isolation_but_is_not_says_why(policy, note):
    [summary] = clusterpolicy.summarize(policy)
    assert summary.egress_note == note


def _view(*policies, **kwargs):
    summaries = tuple(s for p in policies for s in clusterpolicy.summarize(p))
    return NamespaceView("shop", known=True, cluster=clusterpolicy.applying(summaries, "shop", {}), **kwargs)


def _named(name, policy):
    return {**policy, "metadata": {"name": name}}


PASS_ALL = {"action": "Pass", "to": [EVERYWHERE]}


@pytest.mark.parametrize("deny_priority, pass_priority, counted", [(10, 5, False), (10, 10, False), (5, 10, True)])
def test_an_admin_deny_counts_unless_a_policy_checked_no_later_passes_first(deny_priority, pass_priority, counted):
    # Lower priority values are checked first; the order of equal ones is undefined (ANP_SPEC).
    view = _view(_named("deny", admin(DENY_OUT, priority=deny_priority)),
                 _named("pass", admin(PASS_ALL, priority=pass_priority)))
    assert (view.default_deny_policies(netpol.EGRESS) == ["AdminNetworkPolicy deny"]) is counted, ANP_SPEC
    notes = dict(view.not_isolating([netpol.EGRESS]))
    assert ("passes outside egress on to the NetworkPolicies" in notes.get("AdminNetworkPolicy deny", "")) is not counted


def test_a_pass_hands_over_to_the_baseline_and_other_families_whose_denies_still_count():
    view = _view(_named("pass", admin(PASS_ALL, priority=1)), banp({"subject": EVERY_NS, "egress": [DENY_OUT]}),
                 gnp({"selector": "all()", "types": ["Egress"]}))
    assert view.default_deny_policies(netpol.EGRESS) == ["BaselineAdminNetworkPolicy default",
                                                          "Calico GlobalNetworkPolicy p"], BANP_SPEC


def test_an_admin_allow_of_a_family_cancels_the_egress_default_deny_like_any_allow():
    view = _view(_named("deny", admin(DENY_OUT, priority=10)),
                 _named("open", admin({"action": "Allow", "to": [{"networks": ["0.0.0.0/0"]}]}, priority=5)))
    assert view.default_deny_policies(netpol.EGRESS) == ["AdminNetworkPolicy deny"]
    assert view.cancelling_policies(netpol.EGRESS) == ["AdminNetworkPolicy open"]
    assert view.open_families(netpol.EGRESS) == {netpol.IPV4}
    assert view.default_deny_policies() == [] and view.open_families() == frozenset()  # ingress untouched


def test_cluster_and_namespaced_allows_add_up_to_a_cancel():
    from tests.reviews import policy
    ipv6 = policy("v6-out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "::/0"}}]}]})
    view = _view(cilium_np({"endpointSelector": {}, "egress": [{"toEntities": ["world-ipv4"]}]}),
                 banp({"subject": EVERY_NS, "egress": [DENY_OUT]})).with_policy(ipv6)
    assert view.cancelling_policies(netpol.EGRESS) == ["CiliumNetworkPolicy shop/p", "v6-out"]
    assert view.open_families(netpol.EGRESS) == {netpol.IPV4, netpol.IPV6}


def test_egress_summaries_are_relevant_and_indexed():
    summaries = clusterpolicy.relevant(s for case in CASES for s in clusterpolicy.summarize(case[0]))
    assert any(s.isolates_egress for s in summaries) and any(s.passes_egress for s in summaries)
    [only_egress] = clusterpolicy.relevant(clusterpolicy.summarize(banp({"subject": EVERY_NS, "egress": [DENY_OUT]})))
    assert clusterpolicy.Index([only_egress]).applying("shop", {}) == (only_egress,)
