"""The LoadBalancer rule and protect-default-deny with cluster-wide and CNI policies, decided on
the offline inventory's views (as the server and `netguard check` decide)."""

from __future__ import annotations

import pytest

from tests.reviews import make_request, namespace, policy, service, settings
from webhook.core import decide
from webhook.core.rules.guard import NAME as GUARD_RULE
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.inventory.offline import OfflineInventory

DENY_GNP = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "deny-ingress"}, "spec": {"selector": "all()", "types": ["Ingress"]}}
ALLOW_GNP = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
             "metadata": {"name": "open"}, "spec": {"selector": "all()", "types": ["Ingress"],
                                                    "order": 10, "ingress": [{"action": "Allow"}]}}
DENY_CNP = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "shop"},
            "spec": {"endpointSelector": {}, "ingress": [{}]}}
BANP = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}
LB = service("web", type="LoadBalancer")
GROUPS = {"GlobalNetworkPolicy": "projectcalico.org", "CiliumNetworkPolicy": "cilium.io"}


def lb_create(inventory):
    req = make_request(kind="Service", obj=LB)
    return decide.validate(req, inventory.view(req.namespace), settings())


def change(inventory, operation, obj, old=None):
    kind = obj["kind"]
    namespace = obj["metadata"].get("namespace", "")
    req = make_request(kind=kind, group=GROUPS[kind], operation=operation, namespace=namespace,
                       obj=obj if operation != "DELETE" else None,
                       old=old if old is not None else (obj if operation != "CREATE" else None))
    return decide.validate(req, inventory.view(req.namespace), settings())


def test_a_calico_global_deny_counts_as_the_namespaces_default_deny():
    decision = lb_create(OfflineInventory([namespace("shop"), DENY_GNP]))
    assert decision.allowed and decision.rule == LOADBALANCER_RULE
    assert "Calico GlobalNetworkPolicy deny-ingress" in decision.reason


def test_a_cilium_empty_rule_counts_as_the_namespaces_default_deny():
    assert lb_create(OfflineInventory([namespace("shop"), DENY_CNP])).allowed
    other = {**DENY_CNP, "metadata": {"name": "default-deny", "namespace": "web"}}
    assert not lb_create(OfflineInventory([namespace("shop"), other])).allowed  # another namespace's


def test_a_baseline_deny_of_in_cluster_traffic_is_no_isolation_and_the_denial_says_why():
    decision = lb_create(OfflineInventory([namespace("shop"), BANP]))
    assert not decision.allowed and decision.rule == LOADBALANCER_RULE
    assert "Not counted: BaselineAdminNetworkPolicy default applies to namespace shop" in decision.message
    assert "only pods and namespaces" in decision.message


def test_a_calico_allow_of_everything_cancels_it():
    decision = lb_create(OfflineInventory([namespace("shop"), DENY_GNP, ALLOW_GNP]))
    assert decision.allowed and any("Calico GlobalNetworkPolicy open" in w for w in decision.warnings)


def test_deleting_the_global_deny_the_load_balancers_rest_on_is_refused():
    inventory = OfflineInventory([namespace("shop"), namespace("web"), DENY_GNP, LB])
    decision = change(inventory, "DELETE", DENY_GNP)
    assert not decision.allowed and decision.rule == GUARD_RULE
    assert "Calico GlobalNetworkPolicy deny-ingress cannot be deleted" in decision.message
    assert "namespace(s) shop" in decision.message


def test_deleting_it_is_allowed_where_each_namespace_has_its_own_default_deny():
    own = policy("default-deny", namespace="shop")
    inventory = OfflineInventory([namespace("shop"), DENY_GNP, LB, own])
    assert change(inventory, "DELETE", DENY_GNP).allowed


def test_narrowing_it_away_from_the_namespace_is_refused():
    narrowed = {**DENY_GNP, "spec": {**DENY_GNP["spec"], "namespaceSelector": "team == 'other'"}}
    inventory = OfflineInventory([namespace("shop"), DENY_GNP, LB])
    decision = change(inventory, "UPDATE", narrowed, old=DENY_GNP)
    assert not decision.allowed and "cannot be changed so" in decision.message


def test_creating_a_global_allow_of_everything_is_refused_while_load_balancers_rest_on_the_deny():
    inventory = OfflineInventory([namespace("shop"), DENY_GNP, LB])
    decision = change(inventory, "CREATE", ALLOW_GNP)
    assert not decision.allowed and "would admit every outside address" in decision.message


def test_deleting_a_cilium_namespace_deny_is_guarded_on_its_namespace():
    inventory = OfflineInventory([namespace("shop"), DENY_CNP, LB])
    assert not change(inventory, "DELETE", DENY_CNP).allowed
    assert change(OfflineInventory([namespace("shop"), DENY_CNP]), "DELETE", DENY_CNP).allowed  # no LB


def test_the_offline_inventory_follows_allowed_changes_of_cluster_policies():
    inventory = OfflineInventory([namespace("shop")])
    req = make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="", obj=DENY_GNP)
    inventory.observe(req)
    assert lb_create(inventory).allowed
    inventory.observe(make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="",
                                   operation="DELETE", obj=None, old=DENY_GNP))
    assert not lb_create(inventory).allowed


CALICO_DOC = "https://docs.tigera.io/calico/latest/reference/resources/globalnetworkpolicy"
CILIUM_DOC = "https://docs.cilium.io/en/stable/security/policy/language/"
ANP_DOC = "https://network-policy-api.sigs.k8s.io/reference/spec/"


def _gnp(spec):
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "p"}, "spec": spec}


def _ccnp(spec):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "p"}, "spec": spec}


def _banp(spec):
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"}, "spec": spec}


ALL = {"0.0.0.0/0", "::/0"}


@pytest.mark.parametrize("obj,label,source", [
    # Calico: types Ingress and no rule: the end of the tier denies everything
    (_gnp({"selector": "all()", "types": ["Ingress"]}), "default-deny-ingress", CALICO_DOC),
    (_gnp({"selector": "all()", "types": ["Ingress", "Egress"]}), "default-deny-all", CALICO_DOC),
    (_gnp({"selector": "all()", "types": ["Egress"]}), "default-deny-egress", CALICO_DOC),
    # an Allow of every source first: nothing is denied
    (_gnp({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]}), "not-isolating", CALICO_DOC),
    # Cilium: an empty rule puts the selected endpoints into default-deny
    (_ccnp({"endpointSelector": {}, "ingress": [{}]}), "default-deny-ingress", CILIUM_DOC),
    (_ccnp({"endpointSelector": {}, "ingress": [{}], "enableDefaultDeny": {"ingress": False}}),
     "not-isolating", CILIUM_DOC),
    # BaselineAdminNetworkPolicy: ingress peers name only pods and namespaces, never outside
    (_banp({"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}),
     "not-isolating", ANP_DOC),
    # ...while its egress peers include networks: a Deny of every address isolates egress
    (_banp({"subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"networks": sorted(ALL)}]}]}),
     "default-deny-egress", ANP_DOC),
])
def test_cluster_policies_are_labelled_with_what_netguard_counts_them_as(obj, label, source):
    group, _, _ = obj["apiVersion"].rpartition("/")
    req = make_request(kind=obj["kind"], group=group, namespace="", obj=obj)
    decision = decide.mutate(req, OfflineInventory().view(""), settings())
    assert decision.allowed and decision.patched_labels == {"netguard/policy-type": label}, source


def test_a_cluster_policy_labelled_already_is_left_alone():
    obj = {**DENY_GNP, "metadata": {**DENY_GNP["metadata"], "labels": {"netguard/policy-type": "default-deny-ingress"}}}
    req = make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="", obj=obj)
    decision = decide.mutate(req, OfflineInventory().view(""), settings())
    assert decision.allowed and not decision.patched_labels and decision.reason == "labels already correct"
