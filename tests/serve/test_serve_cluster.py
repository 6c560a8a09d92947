"""`netguard serve --kubeconfig` under gunicorn, with cluster state from a stand-in API server
(tests/watchserver.py speaks the list/watch wire format): no false denial from cache lag,
failureMode while the API is gone, readiness before the first lists."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serverproc import Server, lb_review
from tests.watchserver import NAMESPACES, POLICIES, WatchServer

DEFAULT_DENY = {"metadata": {"name": "default-deny", "namespace": "shop"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def eventually(check, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def kubeconfig(path, url: str):
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: local, cluster: {{server: "{url}"}}}}]
users: [{{name: admin, user: {{token: t0ken}}}}]
contexts: [{{name: local, context: {{cluster: local, user: admin}}}}]
current-context: local
""")
    return path


@pytest.fixture
def api():
    with WatchServer() as server:
        server.put(NAMESPACES, {"metadata": {"name": "shop", "labels": {"team": "payments"}}})
        yield server


def serve(tmp_path, api, *extra):
    config = kubeconfig(tmp_path / "kubeconfig", api.url)
    return Server(tmp_path, "--kubeconfig", str(config), *extra).start()


def overturned(srv) -> float:
    text = srv.get("/metrics")[1].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "netguard_live_reads_total" and sample.labels == {"result": "overturned"}:
                return sample.value
    return 0.0


def test_policy_the_watch_has_not_delivered_does_not_cause_a_denial(tmp_path, api):
    srv = serve(tmp_path, api)
    try:
        eventually(lambda: srv.get("/readyz")[0] == 200, "ready")
        denied = srv.post_review("/validate", lb_review("shop", "before"))[1]["response"]
        assert denied["allowed"] is False
        # Stored in the API, but no watch event yet: the cache still says "no default-deny".
        stored = api.put(POLICIES, DEFAULT_DENY, silent=True)
        allowed = srv.post_review("/validate", lb_review("shop", "after"))[1]["response"]
        assert allowed["allowed"] is True
        assert overturned(srv) == 1
        line = [l for l in srv.audit_lines() if l["uid"] == "uid-shop-after"][0]
        assert line["state"] == "live"
        # The decision names the cluster state it rested on: at least the policy's version.
        based_on = allowed["auditAnnotations"]["resourceVersion"]
        assert int(based_on) >= int(stored["metadata"]["resourceVersion"])
        assert line["resource_version"] == based_on
        assert int(denied["auditAnnotations"]["resourceVersion"]) < int(based_on)
    finally:
        assert srv.stop() == 0


def test_api_gone_fails_closed_then_recovers(tmp_path, api):
    srv = serve(tmp_path, api)
    try:
        eventually(lambda: srv.get("/readyz")[0] == 200, "ready")
        api.refuse()
        response = srv.post_review("/validate", lb_review("shop", "outage"))[1]["response"]
        assert response["allowed"] is False
        assert "could not confirm the NetworkPolicies of namespace shop" in response["status"]["message"]
        # A ClusterIP Service needs no cluster state: still decided during the outage.
        review = lb_review("shop", "plain")
        review["request"]["object"]["spec"]["type"] = "ClusterIP"
        assert srv.post_review("/validate", review)[1]["response"]["allowed"] is True
        api.accept()
        api.put(POLICIES, DEFAULT_DENY)
        eventually(lambda: srv.post_review("/validate", lb_review("shop", "back"))[1]["response"]["allowed"],
                   "allowed again once the API is back")
    finally:
        assert srv.stop() == 0


def test_failure_mode_open_allows_with_a_warning(tmp_path, api):
    (tmp_path / "open.yaml").write_text("failureMode: open\n")
    srv = serve(tmp_path, api, "--config", str(tmp_path / "open.yaml"))
    try:
        eventually(lambda: srv.get("/readyz")[0] == 200, "ready")
        api.refuse()
        response = srv.post_review("/validate", lb_review("shop", "open"))[1]["response"]
        assert response["allowed"] is True
        assert any("could not confirm" in w for w in response["warnings"])
        line = [l for l in srv.audit_lines() if l["uid"] == "uid-shop-open"][0]
        assert line["state"] == "unknown" and line["allowed"] is True
    finally:
        api.accept()
        assert srv.stop() == 0


def test_not_ready_until_the_first_lists_are_in(tmp_path, api):
    api.fail(500)
    srv = serve(tmp_path, api)
    try:
        status, body = srv.get("/readyz")
        assert status == 503 and body["status"] == "not ready"
        response = srv.post_review("/validate", lb_review("shop", "early"))[1]["response"]
        assert response["allowed"] is False and "could not confirm" in response["status"]["message"]
        api.heal()
        eventually(lambda: srv.get("/readyz")[0] == 200, "ready after the API heals")
    finally:
        assert srv.stop() == 0
