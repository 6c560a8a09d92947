"""ClusterInventory against a scripted list/watch server (tests/watchserver.py).

Each test starts a fresh server and inventory with short timings, and waits on conditions with a
deadline (`eventually`) rather than fixed sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import pytest
from kubernetes import client

from tests.watchserver import NAMESPACES, POLICIES, SERVICES, WatchServer
from webhook.inventory.cluster import ClusterInventory
from webhook.inventory.protocol import InventoryUnavailable
from webhook.inventory.watch import Timing

FAST = Timing(page_size=2, watch_timeout=30, read_margin=5, connect_timeout=1,
              list_read_timeout=5, backoff_initial=0.02, backoff_max=0.2, backoff_jitter=0)


def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.01)


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def default_deny(ns: str, name: str = "default-deny") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def allow_web(ns: str, name: str = "allow-web") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "lb"}}}]}]}}


def service(ns: str, name: str, kind: str = "ClusterIP") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": kind, "ports": [{"port": 443, "targetPort": 8443}]}}


@pytest.fixture
def server():
    with WatchServer() as srv:
        srv.put(NAMESPACES, namespace("shop", team="payments"))
        srv.put(NAMESPACES, namespace("open", team="web"))
        srv.put(NAMESPACES, namespace("quiet"))
        srv.put(POLICIES, default_deny("shop"))
        srv.put(POLICIES, allow_web("shop"))
        srv.put(POLICIES, allow_web("open"))
        srv.put(SERVICES, service("shop", "web", "LoadBalancer"))
        srv.put(SERVICES, service("shop", "api"))
        srv.put(SERVICES, service("open", "edge", "LoadBalancer"))
        yield srv


@pytest.fixture
def make_inventory(server):
    made: list[ClusterInventory] = []

    def make(**kwargs: Any) -> ClusterInventory:
        configuration = client.Configuration(host=server.url)
        kwargs.setdefault("timing", FAST)
        kwargs.setdefault("confirm_timeout", (1.0, 1.0))
        inventory = ClusterInventory(client.ApiClient(configuration), **kwargs)
        made.append(inventory)
        return inventory

    yield make
    for inventory in made:
        inventory.stop()


@pytest.fixture
def inventory(make_inventory):
    """Started and synced."""
    inv = make_inventory()
    inv.start()
    eventually(inv.ready, "the three initial lists")
    return inv


def watches(server: WatchServer, resource: str, since: int = 0):
    return server.recorded(resource, watch=True, since=since)


# ---------------------------------------------------------------------- initial list


def test_initial_list_builds_the_index(server, inventory):
    shop = inventory.view("shop")
    assert shop.known and shop.source == "cache"
    assert dict(shop.labels) == {"kubernetes.io/metadata.name": "shop", "team": "payments"}
    assert shop.default_deny_policies() == ["default-deny"]
    assert sorted(shop.policies) == ["allow-web", "default-deny"]
    assert shop.load_balancers == {"web"}  # "api" is a ClusterIP Service
    open_ = inventory.view("open")
    assert open_.default_deny_policies() == [] and open_.load_balancers == {"edge"}
    quiet = inventory.view("quiet")
    assert quiet.known and not quiet.policies and not quiet.load_balancers
    # The list is a consistent, paged read: no resourceVersion, ?limit=, then ?continue=.
    lists = server.recorded(POLICIES, watch=False)
    assert all("resourceVersion" not in r.query and r.query["limit"] == "2" for r in lists)
    assert any(r.query.get("continue") for r in lists)
    state = inventory.state
    assert state["synced"] == {NAMESPACES: True, POLICIES: True, SERVICES: True}
    assert (state["namespaces"], state["policies"], state["load_balancers"]) == (3, 3, 2)
    assert state["watch_restarts"] == 0 and state["last_error"] is None and state["healthy"]


def test_views_carry_the_newest_resource_version(server, inventory):
    # Nothing changed since the lists: their resourceVersion, the server's revision now.
    assert inventory.view("shop").resource_version == str(server.revision)
    added = server.put(POLICIES, default_deny("shop", "deny-2"))
    eventually(lambda: "deny-2" in inventory.view("shop").policies, "the ADDED event")
    assert inventory.view("shop").resource_version == added["metadata"]["resourceVersion"]


def test_watch_starts_from_the_list_resource_version_with_bookmarks(server, inventory):
    for resource in (NAMESPACES, POLICIES, SERVICES):
        first = eventually(lambda: watches(server, resource), f"a {resource} watch")[0]
        assert first.query["resourceVersion"] == str(server.revision)  # nothing changed since the list
        assert first.query["allowWatchBookmarks"] == "true"
        assert 30 <= int(first.query["timeoutSeconds"]) < 60


def test_not_ready_until_all_three_lists_are_in(server, make_inventory):
    server.fail(500, resource=SERVICES, watch=False)
    inv = make_inventory()
    assert not server.requests and not inv.threads  # nothing happens before start()
    inv.start()
    eventually(lambda: inv.reflectors[NAMESPACES].synced and inv.reflectors[POLICIES].synced,
               "namespaces and policies listed")
    eventually(lambda: len(server.recorded(SERVICES, watch=False)) >= 2, "services list retried")
    assert not inv.ready()
    with pytest.raises(InventoryUnavailable, match="services"):
        inv.view("shop")
    assert inv.state["synced"][SERVICES] is False
    server.heal()
    eventually(inv.ready, "ready once the services list succeeds")
    assert inv.view("shop").load_balancers == {"web"}


# ---------------------------------------------------------------------- events


def test_policy_events_update_the_view(server, inventory):
    server.put(POLICIES, default_deny("open"))
    eventually(lambda: inventory.view("open").default_deny_policies() == ["default-deny"], "ADDED")
    selective = default_deny("open")
    selective["spec"]["podSelector"] = {"matchLabels": {"app": "db"}}
    server.put(POLICIES, selective)
    eventually(lambda: inventory.view("open").default_deny_policies() == [], "MODIFIED")
    assert "default-deny" in inventory.view("open").policies
    server.delete(POLICIES, "default-deny", "open")
    eventually(lambda: "default-deny" not in inventory.view("open").policies, "DELETED")
    assert sorted(inventory.view("open").policies) == ["allow-web"]


def test_service_events_track_only_load_balancers(server, inventory):
    server.put(SERVICES, service("quiet", "public", "LoadBalancer"))
    eventually(lambda: inventory.view("quiet").load_balancers == {"public"}, "LoadBalancer ADDED")
    server.put(SERVICES, service("quiet", "public", "ClusterIP"))
    eventually(lambda: inventory.view("quiet").load_balancers == frozenset(),
               "LoadBalancer -> ClusterIP leaves the set")
    server.put(SERVICES, service("shop", "api", "LoadBalancer"))
    eventually(lambda: inventory.view("shop").load_balancers == {"web", "api"}, "ClusterIP -> LoadBalancer")
    server.delete(SERVICES, "web", "shop")
    eventually(lambda: inventory.view("shop").load_balancers == {"api"}, "DELETED")


def test_namespace_events_update_labels_and_known(server, inventory):
    server.put(NAMESPACES, namespace("quiet", env="prod"))
    eventually(lambda: inventory.view("quiet").labels.get("env") == "prod", "MODIFIED labels")
    server.delete(NAMESPACES, "quiet")
    # Deleted: the cache no longer knows it, so view() reads live, and the API has no such namespace.
    eventually(lambda: inventory.view("quiet").known is False, "DELETED")
    assert inventory.view("quiet").source == "live"


def test_bookmark_advances_the_resource_version_without_changing_data(server, inventory):
    before = inventory.view("shop")
    version = server.bookmark(POLICIES)
    eventually(lambda: inventory.reflectors[POLICIES].resource_version == version, "bookmark applied")
    assert inventory.view("shop") == before  # same data, same view resourceVersion
    assert inventory.view("shop") is before  # not even a new view
    mark = len(server.requests)
    server.drop_watches(POLICIES)
    resumed = eventually(lambda: watches(server, POLICIES, mark), "a new watch")[0]
    assert resumed.query["resourceVersion"] == version
    assert not server.recorded(POLICIES, watch=False, since=mark)  # resumed, not relisted


# ---------------------------------------------------------------------- failures


@pytest.mark.parametrize("how", ["event", "http"], ids=["410-as-error-event", "410-as-http-status"])
def test_gone_relists_and_the_index_reflects_the_relist(server, inventory, how):
    # Changes the watch never reports (as if they fell into a compacted history).
    server.put(POLICIES, default_deny("open"), silent=True)
    server.delete(POLICIES, "default-deny", "shop", silent=True)
    server.delete(SERVICES, "edge", "open", silent=True)
    assert inventory.view("open").default_deny_policies() == []
    mark = len(server.requests)
    restarts = inventory.watch_restarts
    server.compact(POLICIES, how)
    compacted_at = server.revision
    server.compact(SERVICES, how)
    eventually(lambda: inventory.view("open").default_deny_policies() == ["default-deny"],
               "the relisted policies")
    eventually(lambda: inventory.view("open").load_balancers == frozenset(), "the relisted services")
    assert inventory.view("shop").default_deny_policies() == []
    assert inventory.view("shop").load_balancers == {"web"}
    relists = server.recorded(POLICIES, watch=False, since=mark)
    assert relists and "continue" not in relists[0].query
    assert not server.recorded(NAMESPACES, watch=False, since=mark)  # only the expired ones relist
    assert inventory.watch_restarts >= restarts + 2
    assert "410" in inventory.state["last_error"]
    # The watch after the relist starts from the relist's resourceVersion, and works.
    eventually(lambda: any(int(w.query["resourceVersion"]) >= compacted_at
                           for w in watches(server, POLICIES, mark)), "a watch from the new list")
    server.put(POLICIES, default_deny("quiet"))
    eventually(lambda: inventory.view("quiet").default_deny_policies() == ["default-deny"],
               "events after the relist")


def test_dropped_connection_reconnects_and_resumes(server, inventory, caplog):
    added = server.put(POLICIES, default_deny("quiet"))
    eventually(lambda: "default-deny" in inventory.view("quiet").policies, "the event before the drop")
    mark = len(server.requests)
    restarts = inventory.watch_restarts
    with caplog.at_level(logging.WARNING, logger="netguard.watch"):
        server.drop_watches(POLICIES)
        eventually(lambda: inventory.watch_restarts > restarts, "the restart counted")
        resumed = eventually(lambda: watches(server, POLICIES, mark), "a new watch")[0]
    assert resumed.query["resourceVersion"] == added["metadata"]["resourceVersion"]
    assert not server.recorded(POLICIES, watch=False, since=mark)
    assert any("watch restart" in r.getMessage() and POLICIES in r.getMessage() for r in caplog.records)
    server.put(POLICIES, allow_web("quiet"))
    eventually(lambda: "allow-web" in inventory.view("quiet").policies, "events after the reconnect")


def test_server_errors_back_off_and_recover(server, make_inventory):
    inv = make_inventory(unhealthy_after=0.3)
    inv.start()
    eventually(inv.ready, "ready")
    mark = len(server.requests)
    server.fail(500, resource=SERVICES, watch=True)
    server.drop_watches(SERVICES)
    failing = eventually(lambda: len(watches(server, SERVICES, mark)) >= 6 and watches(server, SERVICES, mark),
                         "six failed watch attempts")
    gaps = [b.at - a.at for a, b in zip(failing, failing[1:])]
    # Backoff 0.02 doubling to the 0.2 cap (no jitter in FAST): the gaps grow.
    assert gaps[0] < 0.15, gaps
    assert max(gaps[2:]) >= 0.15, gaps
    assert all(later >= earlier * 0.8 for earlier, later in zip(gaps[:4], gaps[1:4])), gaps
    assert inv.ready()  # keeps serving the last known state meanwhile
    eventually(lambda: not inv.healthy(), "unhealthy after failing for unhealthy_after")
    assert "500" in inv.state["last_error"]
    server.put(SERVICES, service("quiet", "late", "LoadBalancer"))
    server.heal()
    eventually(lambda: inv.view("quiet").load_balancers == {"late"}, "recovered, with the missed event")
    eventually(inv.healthy, "healthy again")


def test_refused_connections_recover(server, inventory):
    mark = len(server.requests)
    restarts = inventory.watch_restarts
    server.refuse()
    eventually(lambda: inventory.watch_restarts >= restarts + 6, "restarts while refused (3 watches, twice)")
    server.put(POLICIES, default_deny("open"))
    server.accept()
    eventually(lambda: inventory.view("open").default_deny_policies() == ["default-deny"],
               "the event made while down, after reconnecting")
    assert not server.recorded(POLICIES, watch=False, since=mark)  # resumed, not relisted


def test_stop_ends_the_threads(server, inventory):
    # The three collections' watches (the cluster-wide policies' discovery thread ends at once:
    # this server serves none of their APIs).
    threads = [t for t in inventory.threads if t.name != "netguard-watch-clusterpolicies"]
    assert len(threads) == 3 and all(t.is_alive() and t.daemon for t in threads)
    eventually(lambda: all(inventory.state["connected"].values()), "three open watches")
    started = time.monotonic()
    inventory.stop()  # the watches have timeoutSeconds >= 30: stop() must cut them
    assert time.monotonic() - started < 3
    assert not any(t.is_alive() for t in inventory.threads)
    assert not [t for t in threading.enumerate() if t.name.startswith("netguard-watch")]
    with pytest.raises(RuntimeError):
        inventory.start()


def test_stop_during_backoff(server, make_inventory):
    server.fail(500)
    inv = make_inventory(timing=Timing(backoff_initial=5, backoff_max=5, backoff_jitter=0))
    inv.start()
    eventually(lambda: inv.watch_restarts >= 3, "first failures")
    started = time.monotonic()
    inv.stop()
    assert time.monotonic() - started < 3
    assert not any(t.is_alive() for t in inv.threads)


# ---------------------------------------------------------------------- live reads


def test_confirm_is_fresh_when_the_cache_lags(server, inventory):
    server.put(POLICIES, default_deny("open"), silent=True)  # stored; the watch says nothing
    server.put(SERVICES, service("open", "second", "LoadBalancer"), silent=True)
    assert inventory.view("open").default_deny_policies() == []
    live = inventory.confirm("open")
    assert live.source == "live" and live.known
    assert live.default_deny_policies() == ["default-deny"]
    assert live.load_balancers == {"edge", "second"}
    assert live.labels["team"] == "web"
    assert int(live.resource_version) == server.revision
    # A consistent read: no resourceVersion on the namespaced lists.
    reads = [r for r in server.requests if r.namespace == "open"]
    assert {r.resource for r in reads} == {POLICIES, SERVICES}
    assert all("resourceVersion" not in r.query and not r.watch for r in reads)
    # The cache is left to the watch.
    assert inventory.view("open").default_deny_policies() == []


def test_confirm_raises_unavailable_when_the_server_is_down(server, inventory):
    server.fail(500, resource=POLICIES, watch=False)
    with pytest.raises(InventoryUnavailable, match="HTTP 500"):
        inventory.confirm("shop")
    server.heal()
    server.refuse()
    started = time.monotonic()
    with pytest.raises(InventoryUnavailable, match="'shop'"):
        inventory.confirm("shop")
    assert time.monotonic() - started < 3
    server.accept()
    assert inventory.confirm("shop").default_deny_policies() == ["default-deny"]


def test_unknown_namespace_is_read_live(server, inventory):
    server.put(NAMESPACES, namespace("fresh", team="new"), silent=True)
    server.put(POLICIES, default_deny("fresh"), silent=True)
    mark = len(server.requests)
    view = inventory.view("fresh")
    assert view.source == "live" and view.known and view.labels["team"] == "new"
    assert view.default_deny_policies() == ["default-deny"]
    assert [r.path for r in server.requests[mark:] if r.resource == "namespace"] == \
        ["/api/v1/namespaces/fresh"]
    ghost = inventory.view("ghost")
    assert ghost.source == "live" and not ghost.known and not ghost.policies
    # A namespace the cache knows is answered without a request.
    mark = len(server.requests)
    assert inventory.view("shop").source == "cache"
    assert len(server.requests) == mark


def test_an_error_event_restarts_the_watch_from_the_last_version(server, inventory):
    added = server.put(SERVICES, service("quiet", "lb", "LoadBalancer"))
    eventually(lambda: inventory.view("quiet").load_balancers == {"lb"}, "the event before the error")
    mark = len(server.requests)
    restarts = inventory.watch_restarts
    server.error_event(SERVICES, 500, "etcd is unhappy")
    eventually(lambda: inventory.watch_restarts > restarts, "a restart")
    assert "etcd is unhappy" in inventory.last_error
    resumed = eventually(lambda: watches(server, SERVICES, mark), "a new watch")[0]
    assert resumed.query["resourceVersion"] == added["metadata"]["resourceVersion"]
    assert not server.recorded(SERVICES, watch=False, since=mark)  # not a 410: no relist
    server.delete(SERVICES, "lb", "quiet")
    eventually(lambda: inventory.view("quiet").load_balancers == frozenset(), "events after it")


# ---------------------------------------------------------------------- construction


def test_only_the_namespace_labels_asked_for_are_kept(server, make_inventory):
    inv = make_inventory(namespace_labels=["team", "absent"])
    inv.start()
    eventually(inv.ready, "ready")
    assert dict(inv.view("shop").labels) == {"team": "payments"}
    assert dict(inv.view("quiet").labels) == {}
    assert dict(inv.confirm("shop").labels) == {"team": "payments"}


def test_the_label_keys_egress_namespace_selector_reads_are_kept(server, make_inventory):
    """What `netguard serve` hands the live inventory (Settings.namespace_label_keys): without
    the selector's keys, every namespace would look unlabelled to egress.namespaceSelector."""
    from webhook.core.config import parse_settings
    config = parse_settings("egress:\n  required: true\n  namespaceSelector:\n    matchExpressions:\n"
                            "    - {key: team, operator: In, values: [payments]}\n")
    inv = make_inventory(namespace_labels=config.namespace_label_keys())
    inv.start()
    eventually(inv.ready, "ready")
    assert dict(inv.view("shop").labels) == {"team": "payments"}
    assert config.egress.required_in(inv.view("shop")) and not config.egress.required_in(inv.view("quiet"))


def labelled(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "labels": labels}}


def test_views_record_the_objects_lacking_required_labels_through_lists_events_and_relists(server, make_inventory):
    server.put(SERVICES, labelled(service("quiet", "tagged"), team="a", tier="b"))
    inv = make_inventory(required_labels=["team", "tier"])
    inv.start()
    eventually(inv.ready, "ready")
    assert dict(inv.view("shop").unlabelled) == {
        ("NetworkPolicy", "default-deny"): ("team", "tier"), ("NetworkPolicy", "allow-web"): ("team", "tier"),
        ("Service", "web"): ("team", "tier"), ("Service", "api"): ("team", "tier")}
    assert dict(inv.view("quiet").unlabelled) == {}  # "tagged" has both
    server.put(SERVICES, labelled(service("shop", "api"), team="a"))
    eventually(lambda: inv.view("shop").unlabelled.get(("Service", "api")) == ("tier",), "MODIFIED")
    server.delete(POLICIES, "allow-web", "shop")
    eventually(lambda: ("NetworkPolicy", "allow-web") not in inv.view("shop").unlabelled, "DELETED")
    # A relist replaces what it lists, and only that kind's entries.
    server.put(SERVICES, labelled(service("shop", "web", "LoadBalancer"), team="a", tier="b"), silent=True)
    server.compact(SERVICES, "event")
    eventually(lambda: ("Service", "web") not in inv.view("shop").unlabelled, "the relisted services")
    assert dict(inv.view("shop").unlabelled) == {
        ("NetworkPolicy", "default-deny"): ("team", "tier"), ("Service", "api"): ("tier",)}


def test_without_required_labels_views_record_none(inventory):
    assert all(not v.unlabelled for v in inventory.views())


def test_from_kubeconfig_sends_the_credentials(server, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: local, cluster: {{server: "{server.url}"}}}}]
users: [{{name: admin, user: {{token: s3cret}}}}]
contexts: [{{name: local, context: {{cluster: local, user: admin}}}}]
current-context: local
""")
    inv = ClusterInventory.from_kubeconfig(str(kubeconfig), timing=FAST)
    try:
        assert not server.requests  # nothing before start()
        inv.start()
        eventually(inv.ready, "ready")
        assert inv.view("shop").default_deny_policies() == ["default-deny"]
        assert {r.headers.get("authorization") for r in server.requests} == {"Bearer s3cret"}
        assert {r.headers.get("accept") for r in server.requests} == {"application/json"}
    finally:
        inv.stop()


def test_over_tls_stop_still_cuts_the_open_watches(tmp_path):
    # kube-apiserver speaks TLS: shutting an SSL socket down from another thread must wake the
    # reader as it does for plain TCP.
    from webhook.serve import certs

    files = certs.generate(tmp_path, ["127.0.0.1"])
    with WatchServer(tls=(str(files.tls_crt), str(files.tls_key))) as tls_server:
        tls_server.put(NAMESPACES, namespace("shop"))
        tls_server.put(POLICIES, default_deny("shop"))
        configuration = client.Configuration(host=tls_server.url)
        configuration.ssl_ca_cert = str(files.ca_crt)
        inv = ClusterInventory(client.ApiClient(configuration), timing=FAST)
        inv.start()
        try:
            eventually(inv.ready, "ready over TLS")
            assert tls_server.url.startswith("https://")
            assert inv.view("shop").default_deny_policies() == ["default-deny"]
            assert inv.confirm("shop").default_deny_policies() == ["default-deny"]
            eventually(lambda: all(inv.state["connected"].values()), "three open watches")
        finally:
            started = time.monotonic()
            inv.stop()
        assert time.monotonic() - started < 3
        assert not any(t.is_alive() for t in inv.threads)


class _Raw(dict):
    """A listed object that can be watched for how long it stays alive."""

    __slots__ = ("__weakref__",)


@pytest.mark.parametrize("relist,make", [
    ("_relist_policies", lambda i: {"metadata": {"namespace": f"ns-{i % 50}", "name": f"p{i}", "labels": {}},
                                    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    ("_relist_services", lambda i: {"metadata": {"namespace": f"ns-{i % 50}", "name": f"s{i}", "labels": {}},
                                    "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
])
@pytest.mark.parametrize("required", [(), ("team",)], ids=["no-required-labels", "required-labels"])
def test_a_relist_summarises_the_list_as_it_streams_and_never_holds_it_whole(relist, make, required):
    # A large cluster's raw list is a GiB of dicts; its summaries a few MiB. Holding every page
    # until the list ends (to read it twice) took 1.2 GiB at 100,000 namespaces.
    import weakref

    inventory = ClusterInventory(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")),
                                 required_labels=required)
    alive: list[weakref.ref] = []
    most_alive = 0

    def listed():
        nonlocal most_alive
        for i in range(2000):
            most_alive = max(most_alive, sum(1 for ref in alive if ref() is not None))
            obj = _Raw(make(i))
            alive.append(weakref.ref(obj))
            yield obj

    getattr(inventory, relist)(listed(), "7")
    assert most_alive <= 5, f"{most_alive} listed objects alive at once"
    view = inventory._views["ns-3"]  # view() waits for all three lists; one relist is tested here
    assert (len(view.policies) if relist == "_relist_policies" else len(view.load_balancers)) == 40
    assert bool(view.unlabelled) is bool(required)


def test_a_relist_whose_list_fails_is_listed_again(server, inventory):
    """Reflector.relist (the Namespaces, when a policy API appears): a list that fails (a timeout,
    a 500) must not end the relist, or the labels the new selectors read never come."""
    eventually(inventory.ready, "ready")
    reflector = inventory.reflectors[NAMESPACES]
    mark = len(server.requests)
    server.fail(500, count=1, resource=NAMESPACES, watch=False)
    reflector.relist()
    lists = lambda: [r for r in server.recorded(NAMESPACES, watch=False, since=mark) if "continue" not in r.query]  # noqa: E731
    eventually(lambda: len(lists()) == 2, "a list after the failed one")  # the first pages: one failed
    eventually(lambda: reflector.connected, "watching again")
    assert reflector.restarts == 1 and reflector.last_error == "HTTP 500 Internal Server Error"
