"""webhook/serve/auditrecord.py encode: the line of a decided call, laid out from the decision's fields
kept per decision, is byte for byte the line of the record's `finish()`."""

from __future__ import annotations

import json

import pytest

from tests.reviews import make_request
from webhook.core.outcome import allow, apply_action, patched, violation
from webhook.serve import auditrecord
from webhook.serve.auditrecord import FIELDS, AuditRecord, encode

DECISIONS = {
    "allow": allow("fine"),
    "deny": violation("loadbalancer-requires-default-deny", "refused: \"because\"\nfix — ünïcode", "short ü"),
    "warn": apply_action(violation("r", "long text", "the summary"), "warn"),
    "patch": patched("labelled", [{"op": "add", "path": "/metadata/labels/a", "value": "b"}], {"a": "b"}),
}


def _record(req, decision, state="cache", resource_version="", stage="validate"):
    record = AuditRecord(stage)
    record.request(req)
    record.decision(decision, state, resource_version)
    return record


def _line(record):
    return auditrecord._encode_record(record)


@pytest.mark.parametrize("name", DECISIONS)
@pytest.mark.parametrize("state, resource_version", [("cache", "42"), ("live", ""), ("unknown", "")])
def test_a_decided_call_has_the_line_its_record_finishes_to(name, state, resource_version):
    decision = DECISIONS[name]
    for user, dry_run in [("alice", False), ("ünïcode \"user\"", True), ("alice", False)]:
        req = make_request(uid=f"uid-{user}", dry_run=dry_run)._replace(user=user)
        record = _record(req, decision, state, resource_version)
        line = encode(record)
        assert line == _line(record)  # both read the same time and duration, taken once
        assert list(json.loads(line)) == list(FIELDS)
        assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert any(key[:3] == (id(decision), state, resource_version or None) for key in auditrecord._MIDDLES)


def test_the_call_s_own_fields_are_its_own_on_a_kept_decision():
    decision = allow("kept", rule="r")
    first = json.loads(encode(_record(make_request(uid="one", name="a"), decision)))
    second = json.loads(encode(_record(make_request(uid="two", name="b", operation="UPDATE"), decision, "live", "9")))
    assert (first["uid"], first["name"], first["operation"], first["state"]) == ("one", "a", "CREATE", "cache")
    assert (second["uid"], second["name"], second["operation"]) == ("two", "b", "UPDATE")
    assert (second["state"], second["resource_version"], second["decision"]) == ("live", "9", "allow")


def test_an_entry_is_only_read_for_the_decision_it_holds():
    decision = violation("r", "m", "the real reason")
    req = make_request()
    key = (id(decision), "cache", None, "validate", req.operation, req.kind, req.namespace, req.name, req.user,
           req.field_manager, req.dry_run)
    auditrecord._MIDDLES[key] = (allow("other"), b'"stage":"validate","allowed":true')
    line = json.loads(encode(_record(req, decision)))
    assert (line["allowed"], line["reason"], line["decision"]) == (False, "the real reason", "deny")


def test_a_call_that_failed_after_its_decision_says_so():
    # The decision was made, then answering it failed (netguard's own bug): status and error are
    # the failure's, not the kept decision's.
    decision = allow("fine")
    encode(_record(make_request(), decision))  # the decision's fields kept for status 200
    record = _record(make_request(), decision)
    record.failed(500, "netguard failed", internal=True)
    line = json.loads(encode(record))
    assert (line["http_status"], line["error"], line["decision"]) == (500, "netguard failed", "allow")


def test_what_orjson_cannot_encode_is_written_by_the_standard_library():
    req = make_request()._replace(user="lone \ud800 surrogate")
    record = _record(req, allow("fine"))
    line = encode(record)
    assert line == _line(record)
    assert json.loads(line)["user"] == "lone \ud800 surrogate"


def test_the_kept_fields_are_bounded(monkeypatch):
    monkeypatch.setattr(auditrecord, "MIDDLES_KEPT", 8)
    decisions = [allow(f"reason {n}") for n in range(40)]  # held here: no id is reused
    for decision in decisions:
        encode(_record(make_request(), decision))
    assert 0 < len(auditrecord._MIDDLES) <= 8
