"""netguard over real TLS under gunicorn on 127.0.0.1, with a client that verifies ca.crt."""

from __future__ import annotations

import copy
import http.client
import json
import socket
import ssl

import pytest

from tests.serverproc import Server, lb_review, make_certs, netguard, recorded

MAX_BODY = 65536
ORDERED_REVIEWS = sorted(p.name for p in __import__("tests.serverproc", fromlist=["FIXTURES"]).FIXTURES.glob("*.json"))
NAMESPACE_SHOP = """apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: payments}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("server")
    (work / "objects").mkdir()
    (work / "objects" / "shop.yaml").write_text(NAMESPACE_SHOP)
    (work / "netguard.yaml").write_text(f"maxBodyBytes: {MAX_BODY}\nlabels: {{fromNamespace: [team]}}\n")
    srv = Server(work, "--config", str(work / "netguard.yaml"), "--objects", str(work / "objects")).start()
    yield srv
    assert srv.stop() == 0


def test_recorded_session_replayed_in_order(server):
    """The whole recorded kubectl session: every call allowed but the default-deny delete."""
    answers = {}
    for name in ORDERED_REVIEWS:
        call = recorded(name)
        status, body = server.post_review(call["path"], call["body"])
        assert status == 200, (name, body)
        assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
        assert body["response"]["uid"] == call["body"]["request"]["uid"]
        answers[name] = body["response"]
    denied = [n for n, r in answers.items() if not r["allowed"]]
    assert denied == ["16-validate-NetworkPolicy-DELETE-default-deny.json"]
    guard = answers["16-validate-NetworkPolicy-DELETE-default-deny.json"]
    assert guard["status"]["code"] == 403 and guard["status"]["reason"] == "Forbidden"
    assert guard["status"]["message"].startswith("NetworkPolicy shop/default-deny cannot be deleted")
    assert "api, ssa-lb, web" in guard["status"]["message"]
    mutated = answers["04-mutate-Service-CREATE-web.json"]
    assert mutated["patchType"] == "JSONPatch"
    assert "patch" not in answers["01-validate-NetworkPolicy-CREATE-default-deny.json"]


def test_loadbalancer_without_default_deny_is_denied_with_the_fix(server):
    status, body = server.post_review("/validate?timeout=5s", lb_review("bare"))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    first_sentence = response["status"]["message"].split(". ")[0]
    assert "bare/edge" in first_sentence and "default-deny" in first_sentence
    assert "podSelector: {}" in response["status"]["message"]
    assert response["auditAnnotations"] == {"decision": "deny", "rule": "loadbalancer-requires-default-deny"}


def test_mutation_copies_namespace_label(server):
    call = recorded("06-mutate-Service-CREATE-api.json")
    import base64
    status, body = server.post_review(call["path"], call["body"])
    ops = json.loads(base64.b64decode(body["response"]["patch"]))
    assert {"op": "add", "path": "/metadata/labels/team", "value": "payments"} in ops


def test_two_requests_share_one_connection(server):
    conn = server.connection()
    try:
        assert server.post_review("/validate", lb_review("ka1"), conn)[0] == 200
        first_socket = conn.sock
        assert first_socket is not None, "the server closed the connection after one request"
        status, body = server.post_review("/validate", lb_review("ka2"), conn)
        assert status == 200 and body["response"]["uid"] == "uid-ka2-edge"
        assert conn.sock is first_socket, "a second TLS connection was opened"
    finally:
        conn.close()


def test_client_with_another_ca_is_refused(server, tmp_path):
    other = make_certs(tmp_path / "other")
    context = ssl.create_default_context(cafile=str(other / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/healthz")
    conn.close()


def _chunked_post(server, path: str, size: int) -> tuple[int, dict]:
    conn = server.connection()
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"[" + b" " * (size - 2) + b"]"
    conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


MALFORMED = [
    pytest.param(b"{not json", "application/json", 400, "not valid JSON", id="not-json"),
    pytest.param(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                             "request": {"kind": {"kind": "Service"}, "operation": "CREATE"}}).encode(),
                 "application/json", 400, "request.uid", id="no-uid"),
    pytest.param(b"{}", "text/plain", 415, "Content-Type", id="wrong-content-type"),
    pytest.param(b"{}", "", 415, "Content-Type", id="no-content-type"),
    pytest.param(b" " * (MAX_BODY + 1), "application/json", 413, "limit", id="over-the-limit"),
    pytest.param(b'{"a": "\xff\xfe"}', "application/json", 400, "not valid JSON", id="not-utf8"),
    pytest.param(b"[" * 30000 + b"]" * 30000, "application/json", 400, "nested too deeply", id="deeply-nested"),
    pytest.param(b"[]", "application/json", 400, "JSON object", id="json-not-object"),
    pytest.param(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                             "request": {"uid": "u", "kind": {"kind": "Service"}, "operation": "CREATE",
                                         "object": {"metadata": {"labels": ["x"]}}}}).encode(),
                 "application/json", 400, "labels", id="labels-not-a-map"),
]


@pytest.mark.parametrize("body, content_type, status, words", MALFORMED)
def test_malformed_call_is_a_json_4xx_and_the_server_lives(server, body, content_type, status, words):
    headers = {"Content-Type": content_type} if content_type else {}
    got, answer = server.request("POST", "/validate", body, headers)
    assert got == status
    assert answer["status"] == status and words in answer["error"]
    # The worker survived: a valid review is still decided.
    ok, review = server.post_review("/validate", lb_review("after-malformed"))
    assert ok == 200 and review["response"]["allowed"] is False


def test_chunked_body_over_the_limit_is_413(server):
    status, body = _chunked_post(server, "/validate", MAX_BODY * 2)
    assert status == 413 and body["status"] == 413
    assert server.get("/healthz")[0] == 200


@pytest.mark.parametrize("method, path, status", [
    pytest.param("GET", "/validate", 405, id="get-validate"),
    pytest.param("POST", "/nowhere", 404, id="unknown-path"),
])
def test_wrong_route_answers_json(server, method, path, status):
    got, body = server.request(method, path, b"{}", {"Content-Type": "application/json"})
    assert got == status and body["status"] == status


def test_health_and_readiness(server):
    assert server.get("/healthz") == (200, {"status": "ok"})
    assert server.get("/readyz") == (200, {"status": "ready"})


def test_audit_log_has_one_line_per_decision(server):
    review = lb_review("audited", "one")
    server.post_review("/validate", review)
    mutate = copy.deepcopy(review)
    mutate["request"]["uid"] = "uid-audited-mutate"
    server.post_review("/mutate", mutate)
    lines = server.audit_lines()
    validate_lines = [l for l in lines if l["uid"] == "uid-audited-one"]
    mutate_lines = [l for l in lines if l["uid"] == "uid-audited-mutate"]
    assert len(validate_lines) == 1 and len(mutate_lines) == 1
    line = validate_lines[0]
    for field in ("time", "uid", "stage", "operation", "kind", "namespace", "name", "user", "dry_run",
                  "allowed", "rule", "reason", "warnings", "patched_labels", "duration_ms"):
        assert field in line, field
    assert line["stage"] == "validate" and line["allowed"] is False
    assert line["rule"] == "loadbalancer-requires-default-deny" and line["namespace"] == "audited"
    assert line["duration_ms"] >= 0
    assert mutate_lines[0]["patched_labels"] == {"netguard/exposure": "public"}


def test_malformed_call_is_audited_once(server):
    server.request("POST", "/validate", b"{broken", {"Content-Type": "application/json"})
    failed = [l for l in server.audit_lines() if l["error"] and "not valid JSON" in l["error"]]
    assert failed and failed[-1]["http_status"] == 400 and failed[-1]["allowed"] is None


def _peer_serial(port: int, context: ssl.SSLContext) -> int:
    from cryptography import x509
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_rotated_certificate_reaches_new_connections_without_restart(tmp_path):
    srv = Server(tmp_path).start()
    try:
        pid = srv.proc.pid
        before = _peer_serial(srv.port, srv.context())
        netguard("certs", "--out", str(srv.certs), "--host", "127.0.0.1")
        after = _peer_serial(srv.port, srv.context())
        assert after != before
        assert srv.proc.pid == pid and srv.proc.poll() is None
        assert srv.post_review("/validate", lb_review("rotated"))[0] == 200
    finally:
        assert srv.stop() == 0
