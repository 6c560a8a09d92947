"""kube-apiserver stopped and started again under a running netguard (etcd stays up).

During the outage netguard cannot confirm a namespace it has never seen and fails closed; once
the apiserver is back its watches reconnect (counted in netguard_watch_restarts_total), it is ready
again and the rules work as before. Marked `disruptive`: conftest runs it after everything else.
"""

from __future__ import annotations


import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiserver import eventually, skip_reason, unique
from tests.serverproc import lb_review

SKIP = skip_reason()
pytestmark = [pytest.mark.skipif(SKIP is not None, reason=SKIP or ""), pytest.mark.disruptive]


def metric(server, name: str) -> float:
    text = server.get("/metrics")[1]
    text = text.decode() if isinstance(text, bytes) else str(text)
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


def test_netguard_fails_closed_while_the_apiserver_is_down_and_recovers(cluster, kube, netguard):
    apiserver = cluster.apiserver
    never_seen = unique("e2e-never-seen")
    apiserver.stop()
    try:
        assert not apiserver.running and cluster.etcd.running
        status, body = netguard.post_review("/validate?timeout=5s", lb_review(never_seen, "outage"))
        assert status == 200, body
        response = body["response"]
        assert response["uid"] == f"uid-{never_seen}-outage"
        assert response["allowed"] is False, response
        assert response["status"]["code"] == 403
        message = response["status"]["message"]
        assert "could not confirm" in message, message
        assert f"netguard could not confirm the NetworkPolicies of namespace {never_seen}" in message
        line = [entry for entry in netguard.audit_lines() if entry.get("uid") == f"uid-{never_seen}-outage"]
        assert line and line[0]["state"] == "unknown" and line[0]["allowed"] is False, line
    finally:
        if not apiserver.running:
            apiserver.start()  # same port, flags and PKI; waits for /readyz 200

    eventually(lambda: netguard.get("/readyz")[0] == 200, "netguard ready again", 60)
    kube.wait_until_guarded()
    namespace = kube.new_namespace("e2e-after-restart")
    kube.assert_loadbalancer_requires_default_deny(namespace, "web")
    eventually(lambda: metric(netguard, "netguard_watch_restarts_total") > 0,
               "netguard_watch_restarts_total > 0 in /metrics", 30)
