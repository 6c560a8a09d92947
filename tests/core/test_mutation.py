"""Mutation: every patch is checked by APPLYING it to the original object with `jsonpatch` (an
independent RFC 6902 implementation) and asserting on the labels that result (as Kubernetes' own agnhost addlabel tests do).
"""

from __future__ import annotations

import base64
import copy
import json

import jsonpatch
import pytest

from tests.reviews import (
    view_of,
    fixture_names,
    load_fixture,
    make_request,
    namespace,
    policy,
    service,
    settings,
)
from webhook.core import decide, patches
from webhook.wire.response import build_response
from webhook.wire.review import parse_review
from webhook.core.view import NamespaceView

SHOP = view_of([namespace("shop", {"team": "payments", "cost-center": "cc-7"})], "shop")
COPY_TEAM = settings(from_namespace=("team",))


def apply(obj, decision):
    """The object as the apiserver stores it after applying the decision's patch."""
    return jsonpatch.JsonPatch([dict(op) for op in decision.patch]).apply(copy.deepcopy(obj))


def labels_after(obj, decision):
    return (apply(obj, decision).get("metadata") or {}).get("labels") or {}


def mutate(obj, *, view=SHOP, config=COPY_TEAM, **review):
    req = make_request(obj=obj, **review)
    return decide.mutate(req, view, config)


# --------------------------------------------------------------------------- recorded requests


RECORDED = {
    "00-mutate-NetworkPolicy-CREATE-default-deny": {"netguard/policy-type": "default-deny-ingress"},
    "02-mutate-NetworkPolicy-CREATE-allow-lb-to-web": {"netguard/policy-type": "allow"},
    "04-mutate-Service-CREATE-web": {"netguard/exposure": "private"},
    "06-mutate-Service-CREATE-api": {"netguard/exposure": "cluster"},
    "08-mutate-Service-UPDATE-api": {"netguard/exposure": "public"},
    "10-mutate-Service-CREATE-ssa-lb": {"netguard/exposure": "public"},
    "12-mutate-Service-CREATE-dry-dryrun": {"netguard/exposure": "public"},
    "14-mutate-NetworkPolicy-UPDATE-default-deny": {"netguard/policy-type": "default-deny-ingress"},
    "18-mutate-Service-CREATE-ext": {"netguard/exposure": "external-name"},
}


def test_every_recorded_mutate_request_has_an_expectation():
    assert sorted(RECORDED) == fixture_names("mutate")


@pytest.mark.parametrize("name", [pytest.param(n, id=n[:2] + "-" + n.split("-", 3)[3]) for n in RECORDED])
def test_recorded_mutation_adds_derived_and_namespace_labels(name):
    body = load_fixture(name)
    original = body["request"]["object"]
    decision = decide.mutate(parse_review(body), SHOP, COPY_TEAM)

    assert decision.allowed
    result = labels_after(original, decision)
    before = (original["metadata"].get("labels") or {})
    assert result == {**before, **RECORDED[name], "team": "payments"}
    assert dict(decision.patched_labels) == {**RECORDED[name], "team": "payments"}
    # Only labels change: the rest of the object is exactly as the apiserver sent it.
    stripped = apply(original, decision)
    stripped["metadata"]["labels"] = before
    if not original["metadata"].get("labels"):
        stripped["metadata"].pop("labels")
    assert stripped == original


@pytest.mark.parametrize("name, whole_map", [
    pytest.param("02-mutate-NetworkPolicy-CREATE-allow-lb-to-web", True, id="no-labels-adds-map"),
    pytest.param("10-mutate-Service-CREATE-ssa-lb", True, id="ssa-no-labels-adds-map"),
    pytest.param("04-mutate-Service-CREATE-web", False, id="labels-present-adds-members"),
    pytest.param("00-mutate-NetworkPolicy-CREATE-default-deny", False, id="policy-labels-present"),
])
def test_recorded_patch_shape(name, whole_map):
    decision = decide.mutate(parse_review(load_fixture(name)), SHOP, COPY_TEAM)
    paths = [op["path"] for op in decision.patch]
    if whole_map:
        assert paths == ["/metadata/labels"]
        assert decision.patch[0]["op"] == "add"
    else:
        assert "/metadata/labels" not in paths
        assert all(op["op"] == "add" for op in decision.patch)
        assert any(p.startswith("/metadata/labels/netguard~1") for p in paths)


# --------------------------------------------------------------------------- factory objects


@pytest.mark.parametrize("obj, expected", [
    pytest.param(service(type="LoadBalancer"),
                 {"netguard/exposure": "public", "team": "payments"}, id="labels-absent"),
    pytest.param(service(type="LoadBalancer", labels={}),
                 {"netguard/exposure": "public", "team": "payments"}, id="labels-empty-map"),
    pytest.param(service(type="NodePort", labels={"app": "web"}),
                 {"app": "web", "netguard/exposure": "node", "team": "payments"}, id="labels-present"),
    pytest.param(service(type="LoadBalancer", labels={"team": "mine"}),
                 {"team": "mine", "netguard/exposure": "public"}, id="user-team-kept"),
    pytest.param(service(type="LoadBalancer", labels={"team": ""}),
                 {"team": "", "netguard/exposure": "public"}, id="user-empty-team-kept"),
    pytest.param(service(type="LoadBalancer", labels={"netguard/exposure": "cluster", "team": "payments"}),
                 {"netguard/exposure": "public", "team": "payments"}, id="wrong-derived-corrected"),
    pytest.param(service(type="ClusterIP", labels={"netguard/exposure": "public"}),
                 {"netguard/exposure": "cluster", "team": "payments"}, id="stale-public-corrected"),
    pytest.param(policy("open", {"podSelector": {}, "ingress": [{}]},
                        labels={"netguard/policy-type": "default-deny-ingress"}),
                 {"netguard/policy-type": "allow", "team": "payments"}, id="policy-type-corrected"),
    pytest.param(policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
                 {"netguard/policy-type": "default-deny-all", "team": "payments"}, id="policy-labels-absent"),
])
def test_patch_applied_gives_expected_labels(obj, expected):
    decision = mutate(obj, kind=obj["kind"])
    assert decision.allowed
    assert decision.patch, "a change was expected"
    assert labels_after(obj, decision) == expected


def test_wrong_derived_value_is_replaced_not_added():
    obj = service(type="LoadBalancer", labels={"netguard/exposure": "cluster", "team": "payments"})
    decision = mutate(obj)
    assert [dict(op) for op in decision.patch] == [
        {"op": "replace", "path": "/metadata/labels/netguard~1exposure", "value": "public"}]


def test_user_value_of_copied_label_is_never_touched():
    obj = service(type="LoadBalancer", labels={"team": "mine"})
    decision = mutate(obj)
    assert all("team" not in op["path"] and "team" not in (op.get("value") or {}) for op in decision.patch)


@pytest.mark.parametrize("obj, kind", [
    pytest.param(service(type="LoadBalancer", labels={"netguard/exposure": "public", "team": "payments"}),
                 "Service", id="service-already-correct"),
    pytest.param(policy(labels={"netguard/policy-type": "default-deny-ingress", "team": "payments"}),
                 "NetworkPolicy", id="policy-already-correct"),
    pytest.param(service(type="LoadBalancer", labels={"netguard/exposure": "public", "team": "other"}),
                 "Service", id="user-team-differs-still-no-patch"),
])
def test_already_correct_gives_no_patch(obj, kind):
    decision = mutate(obj, kind=kind)
    assert decision.allowed
    assert decision.patch == ()
    assert dict(decision.patched_labels) == {}
    assert labels_after(obj, decision) == obj["metadata"]["labels"]
    response = build_response(make_request(obj=obj, kind=kind), decision)["response"]
    assert "patch" not in response and "patchType" not in response


@pytest.mark.parametrize("view, expected", [
    pytest.param(SHOP, {"netguard/exposure": "cluster", "team": "payments", "cost-center": "cc-7"},
                 id="both-copied"),
    pytest.param(view_of([namespace("shop", {"team": "payments"})], "shop"),
                 {"netguard/exposure": "cluster", "team": "payments"}, id="namespace-lacks-one"),
    pytest.param(NamespaceView("shop"), {"netguard/exposure": "cluster"}, id="namespace-unknown"),
])
def test_from_namespace_copies_only_what_the_namespace_has(view, expected):
    config = settings(from_namespace=("team", "cost-center"))
    obj = service(type="ClusterIP")
    decision = mutate(obj, view=view, config=config)
    assert labels_after(obj, decision) == expected


def test_no_from_namespace_setting_copies_nothing():
    obj = service(type="ClusterIP", labels={"app": "web"})
    decision = mutate(obj, config=settings())
    assert labels_after(obj, decision) == {"app": "web", "netguard/exposure": "cluster"}


def test_custom_prefix_owns_its_labels_only():
    config = settings(prefix="sec.example.com")
    obj = service(type="LoadBalancer", labels={"netguard/exposure": "cluster"})
    decision = mutate(obj, config=config)
    result = labels_after(obj, decision)
    assert result["sec.example.com/exposure"] == "public"
    # netguard/* is just a user label under another prefix: left as the user wrote it.
    assert result["netguard/exposure"] == "cluster"
    assert [op["path"] for op in decision.patch] == ["/metadata/labels/sec.example.com~1exposure"]


def test_label_key_with_tilde_is_escaped_as_tilde_zero():
    config = settings(from_namespace=("example.com/a~b",))
    view = view_of([namespace("shop", {"example.com/a~b": "v"})], "shop")
    obj = service(type="ClusterIP", labels={"app": "web"})
    decision = mutate(obj, view=view, config=config)
    paths = [op["path"] for op in decision.patch]
    assert "/metadata/labels/example.com~1a~0b" in paths
    assert labels_after(obj, decision)["example.com/a~b"] == "v"


@pytest.mark.parametrize("obj, changes, expected_ops", [
    pytest.param({"metadata": {"name": "x", "labels": {"a": "1"}}}, {"example.com/k": "v"},
                 [{"op": "add", "path": "/metadata/labels/example.com~1k", "value": "v"}], id="slash"),
    pytest.param({"metadata": {"name": "x", "labels": {"a": "1"}}}, {"a~/b": "v"},
                 [{"op": "add", "path": "/metadata/labels/a~0~1b", "value": "v"}], id="tilde-then-slash"),
    pytest.param({"metadata": {"name": "x", "labels": {"k~1": "old"}}}, {"k~1": "new"},
                 [{"op": "replace", "path": "/metadata/labels/k~01", "value": "new"}], id="literal-tilde-one"),
    pytest.param({"metadata": {"name": "x"}}, {"a/b": "v", "c": "w"},
                 [{"op": "add", "path": "/metadata/labels", "value": {"a/b": "v", "c": "w"}}], id="labels-absent"),
    pytest.param({"metadata": {"name": "x", "labels": None}}, {"a/b": "v"},
                 [{"op": "add", "path": "/metadata/labels", "value": {"a/b": "v"}}], id="labels-null"),
    pytest.param({"kind": "Service"}, {"a/b": "v"},
                 [{"op": "add", "path": "/metadata", "value": {"labels": {"a/b": "v"}}}], id="metadata-absent"),
    pytest.param({"metadata": {"name": "x"}}, {}, [], id="nothing-to-do"),
])
def test_label_patch_ops_and_result(obj, changes, expected_ops):
    ops = patches.label_patch(obj, changes)
    assert ops == expected_ops
    result = jsonpatch.JsonPatch(ops).apply(copy.deepcopy(obj))
    labels = (result.get("metadata") or {}).get("labels") or {}
    for key, value in changes.items():
        assert labels[key] == value
    original_labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, value in original_labels.items():
        assert labels[key] == changes.get(key, value)


# --------------------------------------------------------------------------- nothing to patch


@pytest.mark.parametrize("review", [
    pytest.param(dict(operation="DELETE", old=service(type="LoadBalancer")), id="service-delete"),
    pytest.param(dict(kind="NetworkPolicy", operation="DELETE", old=policy()), id="policy-delete"),
    pytest.param(dict(obj=service(type="LoadBalancer", namespace="kube-system"), namespace="kube-system"),
                 id="exempt-kube-system"),
    pytest.param(dict(obj=service(type="LoadBalancer", namespace="netguard-system"),
                      namespace="netguard-system"), id="exempt-own-namespace"),
    pytest.param(dict(kind="Pod", obj={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
                 id="pod-not-reviewed"),
    pytest.param(dict(kind="Service", group="example.com", obj=service(type="LoadBalancer")),
                 id="service-of-other-group"),
])
def test_no_patch(review):
    decision = decide.mutate(make_request(**review), SHOP, COPY_TEAM)
    assert decision.allowed
    assert decision.patch == ()
    assert decision.reason


def test_exempt_namespace_from_settings_is_not_patched():
    config = settings(exempt_namespaces=frozenset({"shop"}))
    decision = decide.mutate(make_request(obj=service(type="LoadBalancer")), SHOP, config)
    assert decision.patch == ()
    assert "exempt" in decision.reason


def test_dry_run_is_mutated_like_a_real_request():
    obj = service(type="LoadBalancer")
    real = mutate(obj)
    dry = mutate(obj, dry_run=True)
    assert dry.patch == real.patch
    assert labels_after(obj, dry)["netguard/exposure"] == "public"


# --------------------------------------------------------------------------- the response


def test_response_patch_is_base64_of_the_same_ops():
    obj = service(type="LoadBalancer", labels={"app": "web"})
    req = make_request(obj=obj, uid="patch-uid")
    decision = decide.mutate(req, SHOP, COPY_TEAM)
    response = build_response(req, decision)["response"]

    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"], validate=True))
    assert ops == [dict(op) for op in decision.patch]
    assert jsonpatch.JsonPatch(ops).apply(copy.deepcopy(obj))["metadata"]["labels"] == {
        "app": "web", "netguard/exposure": "public", "team": "payments"}
    assert response["allowed"] is True and response["uid"] == "patch-uid"


def test_recorded_response_patch_applies_to_recorded_object():
    body = load_fixture("04-mutate-Service-CREATE-web")
    req = parse_review(body)
    response = build_response(req, decide.mutate(req, SHOP, COPY_TEAM))["response"]
    ops = json.loads(base64.b64decode(response["patch"]))
    result = jsonpatch.apply_patch(body["request"]["object"], ops)
    assert result["metadata"]["labels"] == {"app": "web", "netguard/exposure": "private", "team": "payments"}


@pytest.mark.parametrize("review", [
    pytest.param(dict(operation="DELETE", old=service(type="LoadBalancer")), id="delete"),
    pytest.param(dict(obj=service(labels={"netguard/exposure": "cluster"})), id="already-correct"),
])
def test_response_without_patch_has_no_patch_keys(review):
    req = make_request(**review)
    response = build_response(req, decide.mutate(req, NamespaceView("shop"), settings()))["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert "patchType" not in response

