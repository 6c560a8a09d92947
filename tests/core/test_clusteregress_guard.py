"""The LoadBalancer rule and protect-default-deny with egress required and cluster-wide or CNI
policies isolating egress, decided on the offline inventory's views (as the server and `netguard
check` decide); and with egress not required, nothing of it changes a decision."""

from __future__ import annotations

import pytest

from tests.reviews import make_request, namespace, policy, service, settings
from webhook.core import decide
from webhook.core.config import parse_settings
from webhook.core.rules.guard import NAME as GUARD_RULE
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.inventory.offline import OfflineInventory

REQUIRED = parse_settings("egress:\n  required: true\n", "netguard.yaml")
NPAPI = "policy.networking.k8s.io"
GROUPS = {"GlobalNetworkPolicy": "projectcalico.org", "CiliumNetworkPolicy": "cilium.io",
          "AdminNetworkPolicy": NPAPI, "BaselineAdminNetworkPolicy": NPAPI}
EVERYWHERE = {"networks": ["0.0.0.0/0", "::/0"]}
DENY_IN = policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_EG = policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
BANP = {"apiVersion": f"{NPAPI}/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [EVERYWHERE]}]}}
ANP_DENY = {"apiVersion": f"{NPAPI}/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "no-internet"},
            "spec": {"priority": 50, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [EVERYWHERE]}]}}
ANP_PASS = {"apiVersion": f"{NPAPI}/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "delegate"},
            "spec": {"priority": 10, "subject": {"namespaces": {}}, "egress": [{"action": "Pass", "to": [EVERYWHERE]}]}}
ANP_IN_CLUSTER = {"apiVersion": f"{NPAPI}/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "tenants"},
                  "spec": {"priority": 50, "subject": {"namespaces": {}},
                           "egress": [{"action": "Deny", "to": [{"namespaces": {}}]}]}}
GNP_EG = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "deny-egress"},
          "spec": {"selector": "all()", "types": ["Egress"]}}
GNP_OPEN = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "open-egress"},
            "spec": {"selector": "all()", "types": ["Egress"], "egress": [{"action": "Allow"}]}}
CNP_EG = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
          "metadata": {"name": "egress-deny", "namespace": "shop"}, "spec": {"endpointSelector": {}, "egress": [{}]}}
LB = service("web", type="LoadBalancer")


def lb_create(inventory, config=REQUIRED):
    req = make_request(kind="Service", obj=LB)
    return decide.validate(req, inventory.view(req.namespace), config)


def change(inventory, operation, obj, old=None, config=REQUIRED):
    kind = obj["kind"]
    ns = obj["metadata"].get("namespace", "")
    req = make_request(kind=kind, group=GROUPS[kind], operation=operation, namespace=ns,
                       obj=obj if operation != "DELETE" else None,
                       old=old if old is not None else (obj if operation != "CREATE" else None))
    return decide.validate(req, inventory.view(req.namespace), config)


@pytest.mark.parametrize("isolating", [BANP, ANP_DENY, GNP_EG, CNP_EG])
def test_a_cluster_egress_deny_counts_as_the_namespaces_egress_default_deny(isolating):
    decision = lb_create(OfflineInventory([namespace("shop"), DENY_IN, isolating]))
    assert decision.allowed and decision.rule == LOADBALANCER_RULE, decision.message
    assert "and egress (" in decision.reason and isolating["metadata"]["name"] in decision.reason


def test_a_deny_of_in_cluster_destinations_only_is_not_counted_and_the_denial_says_why():
    decision = lb_create(OfflineInventory([namespace("shop"), DENY_IN, ANP_IN_CLUSTER]))
    assert not decision.allowed and decision.rule == LOADBALANCER_RULE
    assert "Not counted: AdminNetworkPolicy tenants applies to namespace shop, but no egress rule" in decision.message
    assert "default-deny-egress" in decision.message  # the fix: a default-deny egress NetworkPolicy


def test_an_admin_pass_first_leaves_the_admin_deny_uncounted_and_says_so():
    decision = lb_create(OfflineInventory([namespace("shop"), DENY_IN, ANP_DENY, ANP_PASS]))
    assert not decision.allowed
    assert "Not counted: AdminNetworkPolicy no-internet applies to namespace shop, but a policy of priority 10" \
        in decision.message


def test_an_egress_allow_of_everything_cancels_it_with_a_warning():
    decision = lb_create(OfflineInventory([namespace("shop"), DENY_IN, GNP_EG, GNP_OPEN]))
    assert decision.allowed and any("default-deny egress is cancelled" in w and "open-egress" in w
                                    for w in decision.warnings)


def test_with_egress_not_required_the_same_state_decides_as_before():
    state = [namespace("shop"), DENY_IN, ANP_IN_CLUSTER, BANP, GNP_OPEN]
    decision = lb_create(OfflineInventory(state), settings())
    assert decision.allowed and decision.reason == "namespace shop is default-deny for ingress (deny-ingress)"
    # Policies that say something of egress only change nothing while egress is not required.
    assert decision == lb_create(OfflineInventory([namespace("shop"), DENY_IN]), settings())
    # The policy.networking.k8s.io kinds are not reviewed then; Calico's are, for ingress only.
    assert change(OfflineInventory(state + [LB]), "DELETE", BANP, config=settings()).reason == \
        "netguard does not review BaselineAdminNetworkPolicy"
    assert change(OfflineInventory([namespace("shop"), DENY_IN, GNP_EG, LB]), "DELETE", GNP_EG,
                  config=settings()).allowed
    denied = lb_create(OfflineInventory([namespace("shop"), BANP]), settings())
    assert not denied.allowed and "Not counted: BaselineAdminNetworkPolicy" not in denied.message


@pytest.mark.parametrize("isolating", [BANP, ANP_DENY, GNP_EG, CNP_EG])
def test_deleting_the_egress_deny_the_load_balancers_rest_on_is_refused(isolating):
    decision = change(OfflineInventory([namespace("shop"), namespace("web"), DENY_IN, isolating, LB]),
                      "DELETE", isolating)
    assert not decision.allowed and decision.rule == GUARD_RULE
    assert "cannot be deleted: it would leave their pods' egress to outside the cluster without a default-deny" \
        in decision.message
    assert "namespace(s) shop" in decision.message and "egress.required" in decision.message
    assert "default-deny-egress" in decision.message and "allow-dns-egress" in decision.message


def test_deleting_it_is_allowed_where_the_namespace_has_its_own_egress_default_deny():
    assert change(OfflineInventory([namespace("shop"), DENY_IN, DENY_EG, BANP, LB]), "DELETE", BANP).allowed
    assert change(OfflineInventory([namespace("shop"), DENY_IN, BANP]), "DELETE", BANP).allowed  # no LoadBalancer


def test_narrowing_it_away_from_the_namespace_is_refused():
    narrowed = {**BANP, "spec": {**BANP["spec"], "subject": {"namespaces": {"matchLabels": {"team": "other"}}}}}
    decision = change(OfflineInventory([namespace("shop"), DENY_IN, BANP, LB]), "UPDATE", narrowed, old=BANP)
    assert not decision.allowed and "cannot be changed so" in decision.message


def test_a_pass_created_ahead_of_the_admin_deny_is_refused():
    decision = change(OfflineInventory([namespace("shop"), DENY_IN, ANP_DENY, LB]), "CREATE", ANP_PASS)
    assert not decision.allowed and "AdminNetworkPolicy delegate cannot be created" in decision.message
    # Behind it (a higher priority value), it changes nothing: allowed.
    later = {**ANP_PASS, "spec": {**ANP_PASS["spec"], "priority": 90}}
    assert change(OfflineInventory([namespace("shop"), DENY_IN, ANP_DENY, LB]), "CREATE", later).allowed


def test_creating_an_allow_of_every_destination_is_refused():
    decision = change(OfflineInventory([namespace("shop"), DENY_IN, GNP_EG, LB]), "CREATE", GNP_OPEN)
    assert not decision.allowed and "it would let their pods reach every outside address" in decision.message


def test_the_ingress_guard_is_as_it_was_where_egress_is_required():
    deny_in = {**GNP_EG, "metadata": {"name": "deny-ingress"}, "spec": {"selector": "all()", "types": ["Ingress"]}}
    decision = change(OfflineInventory([namespace("shop"), DENY_EG, deny_in, LB]), "DELETE", deny_in)
    assert not decision.allowed and "it is the last policy isolating them from outside the cluster" in decision.message
    assert "default-deny ingress NetworkPolicy" in decision.message


def test_the_offline_inventory_follows_allowed_changes_of_admin_policies():
    inventory = OfflineInventory([namespace("shop"), DENY_IN])
    inventory.observe(make_request(kind="BaselineAdminNetworkPolicy", group=NPAPI, namespace="", obj=BANP))
    assert lb_create(inventory).allowed
