"""AdmissionReview v1: what parse_review refuses (HTTP 400, MalformedReview) and what
build_response answers (docs/design.md, The AdmissionReview contract).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from tests.reviews import fixture_names, load_fixture, make_review, service
from webhook.core.outcome import Decision, allow, apply_action, patched, violation
from webhook.wire.review import MalformedReview, parse_review
from webhook.wire.response import build_response


def changed(change: Callable[[dict[str, Any]], Any], **review: Any) -> dict[str, Any]:
    """A valid review with `change` applied to it (change gets the whole body)."""
    body = make_review(**review)
    change(body)
    return body


def req_(body):  # the request part of a body
    return body["request"]


def obj_meta(body):
    return body["request"]["object"]["metadata"]


# --------------------------------------------------------------------------- parse_review


@pytest.mark.parametrize("body, fragment", [
    pytest.param([], "JSON object", id="list"),
    pytest.param("AdmissionReview", "JSON object", id="string"),
    pytest.param(None, "JSON object", id="null"),
    pytest.param(changed(lambda b: b.update(apiVersion="admission.k8s.io/v1beta1")), "apiVersion", id="v1beta1"),
    pytest.param(changed(lambda b: b.pop("apiVersion")), "apiVersion", id="apiVersion-missing"),
    pytest.param(changed(lambda b: b.update(kind="AdmissionResponse")), "kind must be AdmissionReview",
                 id="wrong-kind"),
    pytest.param(changed(lambda b: b.pop("kind")), "kind must be AdmissionReview", id="kind-missing"),
    pytest.param(changed(lambda b: b.pop("request")), "request is required", id="request-missing"),
    pytest.param(changed(lambda b: b.update(request=None)), "request is required", id="request-null"),
    pytest.param(changed(lambda b: b.update(request=[])), "request has the wrong type", id="request-list"),
    pytest.param(changed(lambda b: req_(b).pop("uid")), "request.uid is required", id="uid-missing"),
    pytest.param(changed(lambda b: req_(b).update(uid="")), "request.uid must not be empty", id="uid-empty"),
    pytest.param(changed(lambda b: req_(b).update(uid=42)), "request.uid has the wrong type", id="uid-number"),
    pytest.param(changed(lambda b: req_(b).pop("kind")), "request.kind is required", id="request-kind-missing"),
    pytest.param(changed(lambda b: req_(b).update(kind="Service")), "request.kind has the wrong type",
                 id="request-kind-string"),
    pytest.param(changed(lambda b: req_(b)["kind"].pop("kind")), "request.kind.kind is required",
                 id="request-kind-kind-missing"),
    pytest.param(changed(lambda b: req_(b).pop("operation")), "request.operation is required",
                 id="operation-missing"),
    pytest.param(changed(lambda b: req_(b).update(operation="PATCH")), "request.operation must be one of",
                 id="operation-patch"),
    pytest.param(changed(lambda b: req_(b).update(operation="create")), "request.operation must be one of",
                 id="operation-lowercase"),
    pytest.param(changed(lambda b: req_(b).update(object=None)), "request.object is required for CREATE",
                 id="create-without-object"),
    pytest.param(changed(lambda b: req_(b).update(object=None), operation="UPDATE"),
                 "request.object is required for UPDATE", id="update-without-object"),
    pytest.param(changed(lambda b: req_(b).update(oldObject=None), operation="UPDATE"),
                 "request.oldObject is required for UPDATE", id="update-without-old-object"),
    pytest.param(changed(lambda b: req_(b).pop("oldObject"), operation="DELETE"),
                 "request.oldObject is required for DELETE", id="delete-without-old-object"),
    pytest.param(changed(lambda b: req_(b).update(object=[])), "request.object has the wrong type",
                 id="object-list"),
    pytest.param(changed(lambda b: obj_meta(b).update(labels=["app=web"])),
                 "request.object.metadata.labels has the wrong type", id="labels-list"),
    pytest.param(changed(lambda b: obj_meta(b).update(labels="app=web")),
                 "request.object.metadata.labels has the wrong type", id="labels-string"),
    pytest.param(changed(lambda b: obj_meta(b).update(labels={"replicas": 3})),
                 "request.object.metadata.labels['replicas'] must be a string", id="label-value-number"),
    pytest.param(changed(lambda b: obj_meta(b).update(labels={"on": True})),
                 "request.object.metadata.labels['on'] must be a string", id="label-value-bool"),
    pytest.param(changed(lambda b: obj_meta(b).update(labels={"a": None})),
                 "request.object.metadata.labels['a'] must be a string", id="label-value-null"),
    pytest.param(changed(lambda b: obj_meta(b).update(annotations={"a": {"b": "c"}})),
                 "request.object.metadata.annotations['a'] must be a string", id="annotation-value-map"),
    pytest.param(changed(lambda b: req_(b)["oldObject"]["metadata"].update(labels={"a": 1}), operation="UPDATE"),
                 "request.oldObject.metadata.labels['a'] must be a string", id="old-label-value-number"),
    pytest.param(changed(lambda b: req_(b)["object"].update(metadata=[])),
                 "request.object.metadata has the wrong type", id="metadata-list"),
    pytest.param(changed(lambda b: req_(b)["object"]["spec"].update(type=["LoadBalancer"])),
                 "request.object.spec.type has the wrong type", id="spec-type-list"),
    pytest.param(changed(lambda b: req_(b).update(dryRun="true")), "request.dryRun has the wrong type",
                 id="dryRun-string"),
    pytest.param(changed(lambda b: req_(b).update(dryRun=1)), "request.dryRun has the wrong type",
                 id="dryRun-number"),
    pytest.param(changed(lambda b: req_(b).update(dryRun=["All"])), "request.dryRun has the wrong type",
                 id="dryRun-list"),
    pytest.param(changed(lambda b: req_(b).update(namespace=["shop"])), "request.namespace has the wrong type",
                 id="namespace-list"),
    pytest.param(changed(lambda b: req_(b).update(userInfo="alice")), "request.userInfo has the wrong type",
                 id="userInfo-string"),
])
def test_parse_review_refuses_malformed_calls(body, fragment):
    with pytest.raises(MalformedReview) as raised:
        parse_review(body)
    assert raised.value.status == 400
    assert fragment in str(raised.value)


# Every field parse_review reads, as (path in the body, what the error calls it). parse_review
# tests each with a quick exact-type check first; each must still refuse every wrong type.
READ_FIELDS = [
    (("request",), "AdmissionReview.request"),
    (("request", "uid"), "request.uid"),
    (("request", "kind"), "request.kind"),
    (("request", "kind", "kind"), "request.kind.kind"),
    (("request", "kind", "group"), "request.kind.group"),
    (("request", "operation"), "request.operation"),
    (("request", "namespace"), "request.namespace"),
    (("request", "name"), "request.name"),
    (("request", "object"), "request.object"),
    (("request", "oldObject"), "request.oldObject"),
    (("request", "object", "metadata"), "request.object.metadata"),
    (("request", "object", "metadata", "labels"), "request.object.metadata.labels"),
    (("request", "object", "metadata", "annotations"), "request.object.metadata.annotations"),
    (("request", "object", "spec"), "request.object.spec"),
    (("request", "object", "spec", "type"), "request.object.spec.type"),
    (("request", "oldObject", "metadata", "labels"), "request.oldObject.metadata.labels"),
    (("request", "userInfo"), "request.userInfo"),
    (("request", "userInfo", "username"), "request.userInfo.username"),
    (("request", "options"), "request.options"),
    (("request", "options", "fieldManager"), "request.options.fieldManager"),
    (("request", "dryRun"), "request.dryRun"),
]
# Wrong for every one of them: no field is a number, a list, or (other than the maps) a string.
WRONG_VALUES = {"number": 7, "list": ["x"], "float": 1.5}


def _update_review(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    old = service(name="web", labels={"app": "web"}, annotations={"a": "b"})
    body = make_review(operation="UPDATE", obj=service(name="web", type="LoadBalancer", labels={"app": "web"},
                                                       annotations={"a": "b"}), old=old,
                       field_manager="kubectl", dry_run=False)
    target = body
    for key in path[:-1]:
        target = target[key]
    assert path[-1] in target, path  # the field is really there: the test replaces, never adds
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("value", WRONG_VALUES.values(), ids=WRONG_VALUES.keys())
@pytest.mark.parametrize("path, where", READ_FIELDS, ids=[w for _p, w in READ_FIELDS])
def test_every_field_read_refuses_a_wrong_type_and_names_itself(path, where, value):
    with pytest.raises(MalformedReview) as raised:
        parse_review(_update_review(path, value))
    assert str(raised.value) == f"{where} has the wrong type ({type(value).__name__})"


def test_the_review_every_wrong_type_starts_from_parses():
    req = parse_review(_update_review(("request", "uid"), "the-uid"))
    assert (req.uid, req.operation, req.field_manager, req.dry_run) == ("the-uid", "UPDATE", "kubectl", False)
    assert req.object["metadata"]["annotations"] == {"a": "b"}


def test_malformed_review_is_a_value_error_with_a_settable_status():
    exc = MalformedReview("too big", 413)
    assert isinstance(exc, ValueError)
    assert exc.status == 413
    assert str(exc) == "too big"


@pytest.mark.parametrize("name", fixture_names())
def test_every_recorded_review_parses(name):
    body = load_fixture(name)
    request = body["request"]
    req = parse_review(body)
    assert req.uid == request["uid"]
    assert req.kind == request["kind"]["kind"]
    assert req.group == request["kind"]["group"]
    assert req.operation == request["operation"]
    assert req.namespace == "shop"
    assert req.name == request["name"]
    assert req.dry_run is request["dryRun"]
    assert req.object == request.get("object")
    assert req.old_object == request.get("oldObject")
    assert req.field_manager == request["options"].get("fieldManager", "")
    assert req.user == "heldout-admin"


def test_recorded_delete_reads_current_from_old_object():
    req = parse_review(load_fixture("16-validate-NetworkPolicy-DELETE-default-deny"))
    assert req.object is None
    assert req.current is req.old_object
    assert req.current["metadata"]["name"] == "default-deny"


def test_recorded_dry_run_and_field_managers():
    assert parse_review(load_fixture("13-validate-Service-CREATE-dry-dryrun")).dry_run is True
    assert parse_review(load_fixture("05-validate-Service-CREATE-web")).field_manager == "kubectl-client-side-apply"
    assert parse_review(load_fixture("11-validate-Service-CREATE-ssa-lb")).field_manager == "kubectl"


@pytest.mark.parametrize("manager, flux", [
    pytest.param("kustomize-controller", True, id="flux"),
    pytest.param("kubectl", False, id="kubectl-ssa"),
    pytest.param("helm", False, id="helm"),
    pytest.param("Kustomize-Controller", False, id="case-matters"),
])
def test_a_request_from_flux_is_told_by_its_field_manager(manager, flux):
    body = load_fixture("11-validate-Service-CREATE-ssa-lb")
    body["request"]["options"]["fieldManager"] = manager
    req = parse_review(body)
    assert req.field_manager == manager and req.from_flux is flux


@pytest.mark.parametrize("change, check", [
    pytest.param(lambda b: req_(b).pop("dryRun"), lambda r: r.dry_run is False, id="dryRun-absent-false"),
    pytest.param(lambda b: req_(b).update(dryRun=None), lambda r: r.dry_run is False, id="dryRun-null-false"),
    pytest.param(lambda b: req_(b).pop("namespace"), lambda r: r.namespace == "", id="cluster-scoped"),
    pytest.param(lambda b: req_(b).pop("options"), lambda r: r.field_manager == "", id="no-options"),
    pytest.param(lambda b: req_(b).pop("userInfo"), lambda r: r.user == "", id="no-userInfo"),
    pytest.param(lambda b: obj_meta(b).update(labels=None), lambda r: r.object["metadata"]["labels"] is None,
                 id="labels-null"),
    pytest.param(lambda b: req_(b)["object"].pop("metadata"), lambda r: "metadata" not in r.object,
                 id="no-metadata"),
    pytest.param(lambda b: req_(b)["kind"].pop("group"), lambda r: r.group == "", id="core-group-omitted"),
])
def test_parse_review_accepts_optional_fields_left_out(change, check):
    assert check(parse_review(changed(change, obj=service(labels={"app": "web"}))))


def test_connect_needs_no_object():
    req = parse_review(make_review(operation="CONNECT", obj=None))
    assert req.operation == "CONNECT"
    assert req.current == {}


# --------------------------------------------------------------------------- build_response


REQ = parse_review(make_review(uid="705ab4f5-6393-11e8-b7cc-42010a800002"))


def test_response_echoes_uid_api_version_and_kind():
    reply = build_response(REQ, allow("fine"))
    assert reply["apiVersion"] == "admission.k8s.io/v1"
    assert reply["kind"] == "AdmissionReview"
    assert reply["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert reply["response"]["allowed"] is True
    assert set(reply["response"]) == {"uid", "allowed"}


def test_recorded_request_uid_is_echoed():
    body = load_fixture("05-validate-Service-CREATE-web")
    reply = build_response(parse_review(body), allow("fine"))
    assert reply["response"]["uid"] == body["request"]["uid"] == "fd21bf7c-88af-49b6-925f-878bee147de5"
    assert reply["apiVersion"] == body["apiVersion"]


def test_denial_has_status_403_forbidden_and_the_message():
    denial = violation("some-rule", "Service shop/web was refused: because.\nfix: this", "short")
    reply = build_response(REQ, denial)["response"]
    assert reply["allowed"] is False
    assert reply["status"] == {"code": 403, "reason": "Forbidden",
                               "message": "Service shop/web was refused: because.\nfix: this"}
    assert "patch" not in reply and "patchType" not in reply and "warnings" not in reply


@pytest.mark.parametrize("decision", [
    pytest.param(allow("ok"), id="allow"),
    pytest.param(apply_action(violation("r", "msg", "sum"), "warn"), id="warned-violation"),
    pytest.param(apply_action(violation("r", "msg", "sum"), "audit"), id="audited-violation"),
])
def test_allowed_answer_has_no_status(decision):
    reply = build_response(REQ, decision)["response"]
    assert reply["allowed"] is True
    assert "status" not in reply


def test_warnings_are_a_list_in_order():
    decision = allow("ok", warnings=["first", "second"])
    reply = build_response(REQ, decision)["response"]
    assert reply["warnings"] == ["first", "second"]
    assert isinstance(reply["warnings"], list)


def test_warned_violation_carries_its_summary_as_warning():
    reply = build_response(REQ, apply_action(violation("r", "long text", "the summary"), "warn"))["response"]
    assert reply["warnings"] == ["the summary"]


def test_audit_annotations_are_copied():
    annotations = {"decision": "deny", "rule": "loadbalancer-requires-default-deny"}
    reply = build_response(REQ, violation("r", "m", "s"), annotations)["response"]
    assert reply["auditAnnotations"] == annotations
    assert reply["auditAnnotations"] is not annotations  # a copy: later changes do not leak in


def test_no_audit_annotations_key_without_annotations():
    assert "auditAnnotations" not in build_response(REQ, allow("ok"))["response"]
    assert "auditAnnotations" not in build_response(REQ, allow("ok"), {})["response"]


def test_patch_only_with_ops():
    with_patch = build_response(REQ, patched("set", [{"op": "add", "path": "/metadata/labels", "value": {}}], {}))
    without = build_response(REQ, Decision(allowed=True, reason="nothing"))
    assert with_patch["response"]["patchType"] == "JSONPatch"
    assert with_patch["response"]["patch"]
    assert "patch" not in without["response"] and "patchType" not in without["response"]


def test_build_response_does_not_change_the_request_or_decision():
    body = make_review(obj=service(type="LoadBalancer"))
    snapshot = copy.deepcopy(body)
    req = parse_review(body)
    decision = allow("ok", warnings=["w"])
    build_response(req, decision)["response"]["warnings"].append("mutated")
    assert decision.warnings == ("w",)
    assert body == snapshot
