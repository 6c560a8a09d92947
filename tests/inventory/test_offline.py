"""The offline inventory (`netguard serve --objects DIR`): cluster state read from files by
webhook.inventory.objects, kept current by the requests netguard allows.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from pathlib import Path

import pytest

from tests.reviews import make_request, namespace, policy, service, settings
from webhook.core import decide, netpol
from webhook.inventory.objects import InputError
from webhook.inventory.offline import ObjectsError, OfflineInventory, read_objects
from webhook.wire.response import build_response

SHOP = """
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
      labels: {team: payments, since: 2024-01-01}
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: default-deny, namespace: shop}
    spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: allow-all, namespace: shop}
    spec: {podSelector: {}, ingress: [{}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: public, namespace: shop}
    spec: {type: LoadBalancer}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: internal, namespace: shop}
    spec: {type: ClusterIP}
    """

# Calico's own NetworkPolicy: `action: Allow` from anywhere reads as an allow-all to the
# networking.k8s.io summariser, and a bare selector as a default-deny.
CALICO = """
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata: {name: calico-allow, namespace: shop}
    spec:
      selector: all()
      types: [Ingress]
      ingress: [{action: Allow}]
    ---
    apiVersion: crd.projectcalico.org/v1
    kind: NetworkPolicy
    metadata: {name: calico-deny, namespace: bare}
    spec: {podSelector: {}}
    """


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def objects(tmp_path: Path) -> Path:
    write(tmp_path / "shop.yaml", SHOP)
    return tmp_path


# --------------------------------------------------------------------------- loading a folder


def test_namespace_labels_policies_and_load_balancers_from_a_folder(objects):
    view = OfflineInventory.from_path(objects).view("shop")
    assert view.known
    assert dict(view.labels) == {"team": "payments", "since": "2024-01-01"}
    assert view.default_deny_policies(netpol.INGRESS) == ["default-deny"]
    assert view.default_deny_policies(netpol.EGRESS) == ["default-deny"]
    assert view.cancelling_policies() == ["allow-all"]
    assert view.load_balancers == {"public"}


def test_a_namespace_never_seen_is_unknown(objects):
    view = OfflineInventory.from_path(objects).view("elsewhere")
    assert not view.known and not view.policies and not view.load_balancers


def test_no_objects_path_is_an_empty_inventory():
    assert not OfflineInventory.from_path(None).view("shop").known


def test_a_policy_of_another_api_group_does_not_count(objects):
    write(objects / "calico.yaml", CALICO)
    inventory = OfflineInventory.from_path(objects)
    # Calico's policy is read by Calico's semantics (webhook/core/calico.py), never as a
    # networking.k8s.io one: its `action: Allow` from every source admits every outside address.
    assert inventory.view("shop").cancelling_policies() == ["Calico NetworkPolicy shop/calico-allow", "allow-all"]
    assert set(inventory.view("shop").policies) == {"default-deny", "allow-all"}
    assert not inventory.view("bare").policies


def test_kinds_of_other_groups_do_not_count_when_handed_in_directly():
    inventory = OfflineInventory([
        {**namespace("shop", {"team": "a"}), "apiVersion": "example.com/v1"},
        {**service("lb", type="LoadBalancer"), "apiVersion": "example.com/v1"},
        {**policy("deny"), "apiVersion": "projectcalico.org/v3"},
    ])
    view = inventory.view("shop")
    assert not view.known and not view.load_balancers and not view.policies


def test_json_files_are_read_as_json(tmp_path):
    (tmp_path / "lb.json").write_text(
        '{\n\t"apiVersion": "v1",\n\t"kind": "Service",\n\t"metadata": {"name": "lb", "namespace": "shop"},\n'
        '\t"spec": {"type": "LoadBalancer", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 1e5}}}\n}\n',
        encoding="utf-8")
    [obj] = read_objects(tmp_path)
    assert obj["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 100000.0
    assert OfflineInventory.from_path(tmp_path).view("shop").load_balancers == {"lb"}


def test_hidden_folders_are_not_read(objects):
    write(objects / ".github" / "workflows" / "ci.yml", "on: push\njobs: {}\n")
    write(objects / ".git" / "lb.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: hidden, namespace: shop}\n"
                                        "spec: {type: LoadBalancer}\n")
    assert OfflineInventory.from_path(objects).view("shop").load_balancers == {"public"}


def test_read_objects_gives_the_objects_in_file_name_order(objects):
    write(objects / "a.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, "
                              "metadata: {name: first}}\n")
    assert [o["metadata"]["name"] for o in read_objects(objects)] == [
        "first", "shop", "default-deny", "allow-all", "public", "internal"]


# --------------------------------------------------------------------------- unreadable objects


def test_errors_name_the_file_and_the_line(objects):
    write(objects / "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: name: x\n")
    write(objects / "nokind.yaml", "---\napiVersion: v1\nmetadata: {name: x}\n")
    with pytest.raises(ObjectsError) as exc:
        OfflineInventory.from_path(objects)
    assert exc.value.problems == [
        f"{objects / 'bad.yaml'} line 3: invalid YAML: mapping values are not allowed here",
        f"{objects / 'nokind.yaml'} line 2: object has no kind"]


def test_objects_error_is_the_readers_error(tmp_path):
    assert ObjectsError is InputError
    with pytest.raises(ObjectsError, match="no such file or directory"):
        read_objects(tmp_path / "missing")


def test_stdin_cannot_hold_the_objects():
    # Each server worker reads the objects again after the fork, when stdin is spent.
    with pytest.raises(ObjectsError, match="not stdin"):
        read_objects("-")


# --------------------------------------------------------------------------- observe


def test_observe_tracks_allowed_services_and_policies(objects):
    inventory = OfflineInventory.from_path(objects)
    inventory.observe(make_request(obj=service("new-lb", type="LoadBalancer")))
    inventory.observe(make_request(kind="NetworkPolicy", obj=policy("deny-2")))
    view = inventory.view("shop")
    assert view.load_balancers == {"public", "new-lb"}
    assert view.default_deny_policies() == ["default-deny", "deny-2"]


def test_observe_of_delete_removes(objects):
    inventory = OfflineInventory.from_path(objects)
    inventory.observe(make_request(operation="DELETE", old=service("public", type="LoadBalancer")))
    inventory.observe(make_request(kind="NetworkPolicy", operation="DELETE", old=policy("default-deny")))
    view = inventory.view("shop")
    assert view.load_balancers == frozenset()
    assert view.default_deny_policies() == []
    assert view.cancelling_policies() == ["allow-all"]


def test_observe_of_an_update_to_cluster_ip_forgets_the_load_balancer(objects):
    inventory = OfflineInventory.from_path(objects)
    inventory.observe(make_request(operation="UPDATE", obj=service("public", type="ClusterIP"),
                                   old=service("public", type="LoadBalancer")))
    assert inventory.view("shop").load_balancers == frozenset()


def test_observe_of_an_unchanged_service_keeps_the_view(objects):
    # Every re-apply of a LoadBalancer is observed; one that changes nothing keeps the view.
    inventory = OfflineInventory.from_path(objects)
    before = inventory.view("shop")
    inventory.observe(make_request(operation="UPDATE", obj=service("public", type="LoadBalancer"),
                                   old=service("public", type="LoadBalancer")))
    inventory.observe(make_request(obj=service("internal", type="ClusterIP")))
    assert inventory.view("shop") is before
    inventory.observe(make_request(obj=service("new-lb", type="LoadBalancer")))
    assert inventory.view("shop").load_balancers == before.load_balancers | {"new-lb"}


def test_observe_ignores_dry_run(objects):
    inventory = OfflineInventory.from_path(objects)
    inventory.observe(make_request(obj=service("trial", type="LoadBalancer"), dry_run=True))
    inventory.observe(make_request(kind="NetworkPolicy", operation="DELETE", old=policy("default-deny"),
                                   dry_run=True))
    view = inventory.view("shop")
    assert view.load_balancers == {"public"} and view.default_deny_policies() == ["default-deny"]


@pytest.mark.parametrize("group", ["projectcalico.org", "crd.projectcalico.org"])
def test_observe_ignores_network_policies_of_other_groups(objects, group):
    inventory = OfflineInventory.from_path(objects)
    calico = {**policy("calico-allow", {"selector": "all()", "ingress": [{"action": "Allow"}]}),
              "apiVersion": f"{group}/v3"}
    inventory.observe(make_request(kind="NetworkPolicy", group=group, obj=calico))
    inventory.observe(make_request(kind="NetworkPolicy", group=group, operation="DELETE",
                                   old={**policy("default-deny"), "apiVersion": f"{group}/v3"}))
    view = inventory.view("shop")
    assert set(view.policies) == {"default-deny", "allow-all"}
    assert view.default_deny_policies() == ["default-deny"]


def test_observe_ignores_kinds_netguard_does_not_review(objects):
    inventory = OfflineInventory.from_path(objects)
    inventory.observe(make_request(kind="Namespace", namespace="", obj=namespace("shop", {"team": "x"})))
    assert inventory.view("shop").labels["team"] == "payments"


# --------------------------------------------------------------------------- label values


def test_a_date_label_reaches_a_mutation_patch_as_a_string(objects):
    """`since: 2024-01-01` copied by labels.fromNamespace: the response must serialise."""
    inventory = OfflineInventory.from_path(objects)
    req = make_request(obj=service("web"))
    decision = decide.mutate(req, inventory.view("shop"), settings(from_namespace=("team", "since")))
    assert dict(decision.patched_labels)["since"] == "2024-01-01"
    response = json.loads(json.dumps(build_response(req, decision)))
    assert response["response"]["patchType"] == "JSONPatch"


def test_label_values_handed_in_directly_are_made_strings():
    inventory = OfflineInventory([{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "shop", "labels": {"since": datetime.date(2024, 1, 1), "replicas": 3, "on": True, "empty": None}}}])
    assert dict(inventory.view("shop").labels) == {"since": "2024-01-01", "replicas": "3", "on": "true",
                                                  "empty": ""}


def test_the_view_scan_finds_the_required_labels_violations_audit_finds_object_by_object():
    from webhook.core.violations import scan_objects, scan_views

    shipped = settings(required=("team", "tier"))
    services = [service("web", namespace="shop", labels={"team": "a"}), service("api", namespace="shop"),
                service("ok", namespace="shop", labels={"team": "a", "tier": "b"})]
    policies = [policy("deny", namespace="shop", labels={"tier": "b"}), policy("other", namespace="kube-system")]
    inventory = OfflineInventory([namespace("shop"), *services, *policies], required_labels=("team", "tier"))
    from_views = [v for v in scan_views(inventory.views(), shipped) if v.rule == "required-labels"]
    from_objects = scan_objects("Service", services, shipped) + scan_objects("NetworkPolicy", policies, shipped)
    assert sorted(from_views, key=lambda v: v.sort_key()) == sorted(from_objects, key=lambda v: v.sort_key())
    assert {(v.kind, v.name) for v in from_views} == {("Service", "web"), ("Service", "api"), ("NetworkPolicy", "deny")}
    # Views built without the required keys (netguard audit's) hold none: audit counts each once.
    assert not [v for v in scan_views(OfflineInventory([*services, *policies]).views(), shipped)
                if v.rule == "required-labels"]


def test_views_with_cluster_policies_are_composed_once_and_again_when_they_change():
    gnp = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "deny"},
           "spec": {"selector": "all()", "types": ["Ingress"]}}
    inventory = OfflineInventory([namespace("shop", {"team": "a"}), gnp])
    first = inventory.view("shop")
    assert first.default_deny_policies() == ["Calico GlobalNetworkPolicy deny"]
    assert inventory.view("shop") is first  # a re-apply is decided on the same composed view
    inventory.observe(make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="",
                                   operation="DELETE", obj=None, old=gnp))
    assert inventory.view("shop").default_deny_policies() == []
