"""webhook/wire/response.py response_body: the encoded answer, kept per decision, is byte for byte
what build_response and json_body make, for every request it answers."""

from __future__ import annotations

import json

import pytest

from tests.reviews import make_request
from webhook.core.outcome import allow, apply_action, patched, violation
from webhook.wire import response
from webhook.wire.response import audit_annotations, build_response, json_body, response_body

DECISIONS = {
    "allow": allow("fine"),
    "deny": violation("loadbalancer-requires-default-deny",
                      "Service shop/web was refused: \"because\".\nfix: add a default-deny — ünïcode", "short"),
    "warn": apply_action(violation("r", "long text", "the summary"), "warn"),
    "patch": patched("labelled", [{"op": "add", "path": "/metadata/labels/a", "value": "b"}], {"a": "b"}),
    "warnings": allow("ok", rule="some-rule", warnings=["first", "second"]),
}
UIDS = ["705ab4f5-6393-11e8-b7cc-42010a800002", "a\"quoted\\uid", "ünïcode-uid", "x" * 300, ""]


def _expected(req, decision, resource_version=""):
    return json_body(build_response(req, decision, audit_annotations(decision, resource_version)))


@pytest.mark.parametrize("name", DECISIONS)
@pytest.mark.parametrize("resource_version", ["", "4242"])
def test_every_call_gets_the_bytes_build_response_makes(name, resource_version):
    decision = DECISIONS[name]
    for uid in UIDS * 2:  # the second round is answered from the kept encoding
        req = make_request(uid=uid or "u")._replace(uid=uid)
        assert response_body(req, decision, resource_version) == _expected(req, decision, resource_version)
    assert (id(decision), "admission.k8s.io/v1", resource_version) in response._ENCODED


def test_a_kept_encoding_answers_without_building_the_response(monkeypatch):
    decision = allow("kept", rule="r")
    first = make_request(uid="first")
    response_body(first, decision, "7")

    def fail(*args, **kwargs):
        raise AssertionError("built again")
    monkeypatch.setattr(response, "build_response", fail)
    second = make_request(uid="second")
    answer = json.loads(response_body(second, decision, "7"))
    assert answer["response"]["uid"] == "second"
    assert answer["response"]["auditAnnotations"] == {"decision": "allow", "rule": "r", "resourceVersion": "7"}


def test_an_entry_is_only_read_for_the_decision_it_holds():
    # An entry under a decision's id that holds another decision (its id reused once the first
    # was freed) is not read: the answer is this decision's.
    decision = violation("r", "the real message", "s")
    other = allow("another decision")
    key = (id(decision), "admission.k8s.io/v1", "")
    response._ENCODED[key] = (other, b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":',
                              b',"allowed":true}}')
    req = make_request(uid="u1")
    answer = json.loads(response_body(req, decision))
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"] == "the real message"
    assert response._ENCODED[key][0] is decision


def test_each_resource_version_and_decision_gets_its_own_answer():
    req = make_request(uid="u")
    one, two = allow("one"), violation("r", "two", "s")
    assert json.loads(response_body(req, one, "1"))["response"]["auditAnnotations"]["resourceVersion"] == "1"
    assert json.loads(response_body(req, one, "2"))["response"]["auditAnnotations"]["resourceVersion"] == "2"
    assert json.loads(response_body(req, one))["response"]["auditAnnotations"] == {"decision": "allow"}
    assert json.loads(response_body(req, two, "1"))["response"]["allowed"] is False


def test_a_uid_orjson_cannot_encode_is_answered_by_the_standard_library():
    decision = allow("fine")
    req = make_request(uid="u")._replace(uid="lone \ud800 surrogate")
    for _ in range(2):
        body = response_body(req, decision)
        assert body == _expected(req, decision)
        assert json.loads(body)["response"]["uid"] == "lone \ud800 surrogate"


def test_the_kept_encodings_are_bounded(monkeypatch):
    monkeypatch.setattr(response, "ENCODED_KEPT", 8)
    req = make_request(uid="u")
    decisions = [allow(f"reason {n}") for n in range(40)]  # held here: no id is reused
    for decision in decisions:
        response_body(req, decision)
    assert 0 < len(response._ENCODED) <= 8
