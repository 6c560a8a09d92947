"""The live inventory with the cluster-wide and CNI policy kinds served (tests/watchserver.py
`cluster_policies=True`): discovered, listed and watched; absent APIs are no error."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.inventory.test_cluster_watch import FAST, eventually, namespace
from tests.reviews import make_request, settings
from tests.reviews import service as lb_service
from tests.watchserver import NAMESPACES, SERVICES, WatchServer
from webhook.core import decide
from webhook.inventory.cluster import ClusterInventory

GNP = "projectcalico.org/globalnetworkpolicies"
CNP = "cilium.io/ciliumnetworkpolicies"
BANP = "policy.networking.k8s.io/baselineadminnetworkpolicies"


def gnp(name: str, namespace_selector: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"selector": "all()", "namespaceSelector": namespace_selector, "types": ["Ingress"]}}


@pytest.fixture
def server():
    with WatchServer(cluster_policies=True) as srv:
        srv.put(NAMESPACES, namespace("shop", team="payments"))
        srv.put(NAMESPACES, namespace("web"))
        srv.put(SERVICES, {"metadata": {"name": "lb", "namespace": "shop"},
                           "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        srv.put(GNP, gnp("deny-payments", "team == 'payments'"))
        yield srv


@pytest.fixture
def inventory(server):
    inv = ClusterInventory(client.ApiClient(client.Configuration(host=server.url)), timing=FAST,
                           confirm_timeout=(1.0, 1.0))
    inv.start()
    eventually(inv.ready, "the lists and the cluster policies'")
    yield inv
    inv.stop()


def lb_allowed(inventory, ns: str) -> bool:
    req = make_request(kind="Service", namespace=ns, obj=lb_service("lb2", type="LoadBalancer", namespace=ns))
    return decide.validate(req, inventory.view(ns), settings()).allowed


def test_served_kinds_are_discovered_listed_and_watched(server, inventory):
    assert set(inventory.cluster_policies.reflectors) == {
        "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "GlobalNetworkPolicy", "NetworkPolicy",
        "CiliumClusterwideNetworkPolicy", "CiliumNetworkPolicy"}
    assert lb_allowed(inventory, "shop") and not lb_allowed(inventory, "web")
    server.put(CNP, {"metadata": {"name": "deny", "namespace": "web"},
                     "spec": {"endpointSelector": {}, "ingress": [{}]}})
    eventually(lambda: lb_allowed(inventory, "web"), "the CiliumNetworkPolicy's watch event")
    server.delete(GNP, "deny-payments")
    eventually(lambda: not lb_allowed(inventory, "shop"), "the GlobalNetworkPolicy's deletion")
    assert inventory.state["cluster_policies"] == 1


def test_a_cluster_scoped_change_is_decided_on_the_namespaces_with_load_balancers(inventory):
    view = inventory.view("")
    assert [d.name for d in view.dependents] == ["shop"]
    old = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", **gnp("deny-payments", "team == 'payments'")}
    req = make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="", operation="DELETE",
                       obj=None, old=old)
    decision = decide.validate(req, view, settings())
    assert not decision.allowed and "Calico GlobalNetworkPolicy deny-payments cannot be deleted" in decision.message


def test_a_baseline_deny_is_read_but_isolates_nothing(server, inventory):
    server.put(BANP, {"metadata": {"name": "default"}, "spec": {
        "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}})
    eventually(lambda: inventory.view("web").not_isolating(), "the BaselineAdminNetworkPolicy")
    assert not lb_allowed(inventory, "web")


def test_a_cluster_serving_none_of_them_is_ready_without_them():
    with WatchServer() as srv:
        srv.put(NAMESPACES, namespace("shop"))
        inv = ClusterInventory(client.ApiClient(client.Configuration(host=srv.url)), timing=FAST)
        inv.start()
        try:
            eventually(inv.ready, "ready with no cluster policy API")
            assert inv.cluster_policies.reflectors == {} and inv.cluster_policies.discovered
            assert {r.path for r in srv.requests if r.path.startswith("/apis/") and "networking.k8s.io/v1" not in r.path} == {
                "/apis/cilium.io", "/apis/policy.networking.k8s.io", "/apis/projectcalico.org"}
        finally:
            inv.stop()


def test_namespace_labels_are_kept_for_the_cluster_policies_selectors(server):
    """`netguard serve` hands the live inventory only the label keys the configuration reads
    (Settings.namespace_label_keys, none by default). A GlobalNetworkPolicy selecting
    `team == 'payments'` must still see the namespace's `team` label: with the label dropped it
    selected nothing, so the LoadBalancer was refused and the guard did not protect the policy."""
    keys = settings().namespace_label_keys()
    assert keys == ()  # the default configuration reads no namespace label itself
    inv = ClusterInventory(client.ApiClient(client.Configuration(host=server.url)), timing=FAST,
                           confirm_timeout=(1.0, 1.0), namespace_labels=keys)
    inv.start()
    try:
        eventually(inv.ready, "the lists and the cluster policies'")
        assert dict(inv.view("shop").labels) == {"kubernetes.io/metadata.name": "shop", "team": "payments"}
        assert lb_allowed(inv, "shop") and not lb_allowed(inv, "web")
        assert lb_allowed_live(inv, "shop")  # the live read before a denial keeps them too
        server.put(NAMESPACES, namespace("web", team="payments"))  # a watch event
        eventually(lambda: lb_allowed(inv, "web"), "the relabelled namespace")
        assert [d.name for d in inv.view("").dependents] == ["shop"]
    finally:
        inv.stop()


def lb_allowed_live(inventory, ns: str) -> bool:
    req = make_request(kind="Service", namespace=ns, obj=lb_service("lb2", type="LoadBalancer", namespace=ns))
    return decide.validate(req, inventory.confirm(ns), settings()).allowed


def test_without_cluster_policy_apis_only_the_configured_namespace_labels_are_kept():
    with WatchServer() as srv:
        srv.put(NAMESPACES, namespace("shop", team="payments", env="prod"))
        inv = ClusterInventory(client.ApiClient(client.Configuration(host=srv.url)), timing=FAST,
                               namespace_labels=["team"])
        inv.start()
        try:
            eventually(inv.ready, "ready with no cluster policy API")
            assert dict(inv.view("shop").labels) == {"team": "payments"}
        finally:
            inv.stop()


def test_a_policy_api_installed_later_is_read_without_a_restart():
    """Calico added to a running cluster: the next discovery finds it, its policies are listed
    and watched, the Namespaces are listed again with the labels its selectors read, and
    readiness never drops meanwhile."""
    from dataclasses import replace

    with WatchServer() as srv:
        srv.put(NAMESPACES, namespace("shop", team="payments"))
        srv.put(SERVICES, {"metadata": {"name": "lb", "namespace": "shop"},
                           "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        inv = ClusterInventory(client.ApiClient(client.Configuration(host=srv.url)),
                               timing=replace(FAST, rediscover_seconds=0.1), confirm_timeout=(1.0, 1.0),
                               namespace_labels=settings().namespace_label_keys())
        inv.start()
        try:
            eventually(inv.ready, "ready with no cluster policy API")
            assert not lb_allowed(inv, "shop") and dict(inv.view("shop").labels) == {}
            srv.serve_cluster_policies()
            srv.put(GNP, gnp("deny-payments", "team == 'payments'"))
            not_ready = []

            def isolated() -> bool:
                if not inv.ready():
                    not_ready.append(True)
                    return False
                return lb_allowed(inv, "shop")

            eventually(isolated, "the GlobalNetworkPolicy and the namespace's labels")
            assert not not_ready
            assert dict(inv.view("shop").labels)["team"] == "payments"
            assert "GlobalNetworkPolicy" in inv.cluster_policies.reflectors
            assert inv.reflectors[NAMESPACES].restarts == 0  # the relist is no failure
            assert len([r for r in srv.requests if r.resource == NAMESPACES and not r.watch]) >= 2
        finally:
            inv.stop()
        assert not any(t.is_alive() for t in inv.threads + inv.cluster_policies.threads)
