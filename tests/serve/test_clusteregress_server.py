"""Verdict parity with egress required and cluster-wide or CNI policies isolating egress: a real
server over TLS (offline inventory), `netguard check` against the same cluster state, `netguard
audit`'s scan and the periodic scan's metric give one verdict per namespace
(docs/clusterpolicies.md)."""

from __future__ import annotations

import pytest
import yaml

from tests.reviews import make_review, namespace, policy, service
from tests.serve.test_monitor import scraped, violation_series
from tests.serverproc import rows_server
from webhook.cli.audit import scan
from webhook.cli.check import check
from webhook.core import clusterpolicy
from webhook.core.config import parse_settings
from webhook.core.settings import default_settings
from webhook.core.rules.loadbalancer import CANCELLED, NAME as LB_RULE
from webhook.inventory.kube import ClusterObjects
from webhook.inventory.objects import parse_manifests
from webhook.inventory.offline import OfflineInventory
from webhook.serve.metrics import Metrics
from webhook.serve.monitor import Monitor

CONFIG = "egress:\n  required: true\n"
SETTINGS = parse_settings(CONFIG, "netguard.yaml")
NPAPI = "policy.networking.k8s.io"
EVERYWHERE = {"networks": ["0.0.0.0/0", "::/0"]}
DENY_OUT = {"action": "Deny", "to": [EVERYWHERE]}


def _cluster(api_version, kind, name, spec, ns=None):
    metadata = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def _only(ns):
    return {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}


def _anp(name, ns, priority, *rules):
    return _cluster(f"{NPAPI}/v1alpha1", "AdminNetworkPolicy", name,
                    {"priority": priority, "subject": _only(ns), "egress": list(rules)})


# namespace -> (its egress policies besides an ingress default-deny NetworkPolicy, whether a
# LoadBalancer there is admitted, whether the denial says "Not counted")
ROWS = {
    "banp": ([_cluster(f"{NPAPI}/v1alpha1", "BaselineAdminNetworkPolicy", "default",
                       {"subject": _only("banp"), "egress": [DENY_OUT]})], True, False),
    "anp": ([_anp("deny-anp", "anp", 50, DENY_OUT)], True, False),
    "anp-pass": ([_anp("deny-pass", "anp-pass", 50, DENY_OUT),
                  _anp("pass-first", "anp-pass", 10, {"action": "Pass", "to": [EVERYWHERE]})], False, True),
    "anp-cluster": ([_anp("tenants", "anp-cluster", 50, {"action": "Deny", "to": [{"namespaces": {}}]})], False, True),
    "cnp-admin": ([_cluster(f"{NPAPI}/v1alpha2", "ClusterNetworkPolicy", "admin-deny",
                            {"tier": "Admin", "priority": 5, "subject": _only("cnp-admin"), "egress": [DENY_OUT]})],
                  True, False),
    "gnp": ([_cluster("projectcalico.org/v3", "GlobalNetworkPolicy", "deny-gnp",
                      {"selector": "all()", "namespaceSelector": "projectcalico.org/name == 'gnp'",
                       "types": ["Egress"]})], True, False),
    "gnp-open": ([_cluster("projectcalico.org/v3", "NetworkPolicy", "deny", {"types": ["Egress"]}, "gnp-open"),
                  _cluster("projectcalico.org/v3", "NetworkPolicy", "open",
                           {"types": ["Egress"], "egress": [{"action": "Allow"}]}, "gnp-open")], True, False),
    "cnp": ([_cluster("cilium.io/v2", "CiliumNetworkPolicy", "deny", {"endpointSelector": {}, "egress": [{}]},
                      "cnp")], True, False),
    "cnp-fqdn": ([_cluster("cilium.io/v2", "CiliumNetworkPolicy", "fqdn",
                           {"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "api.example.com"}]}]},
                           "cnp-fqdn")], True, False),
    "cnp-world": ([_cluster("cilium.io/v2", "CiliumNetworkPolicy", "world",
                            {"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}, "cnp-world")],
                  False, False),
    "ccnp-off": ([_cluster("cilium.io/v2", "CiliumClusterwideNetworkPolicy", "adds-only",
                           {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ccnp-off"}},
                            "egress": [{}], "enableDefaultDeny": {"egress": False}})], False, True),
}
STATE = [o for ns, (found, _, _) in ROWS.items()
         for o in (namespace(ns), policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]},
                                         namespace=ns), *found)]
CLUSTER = ClusterObjects(namespaces=[o for o in STATE if o["kind"] == "Namespace"],
                         policies=[o for o in STATE if o["apiVersion"] == "networking.k8s.io/v1"], services=[],
                         cluster_policies=[o for o in STATE if clusterpolicy.is_cluster_policy(o)])


def _lb(ns):
    return service("web", type="LoadBalancer", namespace=ns)


def _started(tmp_path_factory, name, state):
    work = tmp_path_factory.mktemp(name)
    (work / "netguard.yaml").write_text(CONFIG)
    return rows_server(work, [state], "--config", str(work / "netguard.yaml"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = _started(tmp_path_factory, "clusteregress", STATE)
    yield srv
    assert srv.stop() == 0


def _lb_answer(server, ns):
    """The server's answer to a dry-run CREATE of a LoadBalancer in `ns` (the state stays)."""
    status, body = server.post_review("/validate", make_review(kind="Service", namespace=ns, obj=_lb(ns),
                                                               dry_run=True))
    assert status == 200, body
    return body["response"]


@pytest.mark.parametrize("ns", sorted(ROWS))
def test_server_and_check_give_one_verdict(server, ns):
    answer = _lb_answer(server, ns)
    _, admitted, explained = ROWS[ns]
    assert answer["allowed"] is admitted
    [result] = check(parse_manifests(yaml.safe_dump(_lb(ns)), "lb.yaml"), SETTINGS, CLUSTER).results
    assert result.allowed is answer["allowed"]
    assert list(result.warnings) == answer.get("warnings", [])
    if not admitted:
        assert ("Not counted:" in answer["status"]["message"]) is explained
        assert ("Not counted:" in result.message) is explained


def test_audit_and_the_metric_report_the_namespaces_the_server_refuses():
    services = [_lb(ns) for ns in ROWS]
    found = scan(CLUSTER.namespaces, CLUSTER.policies, services, SETTINGS, CLUSTER.cluster_policies)
    refused = {ns for ns, (_, admitted, _) in ROWS.items() if not admitted}
    assert {v.namespace for v in found if v.rule == LB_RULE} == refused
    assert {v.namespace for v in found if v.rule == CANCELLED} == {"gnp-open"}
    metrics = Metrics()
    Monitor(OfflineInventory(STATE + services), SETTINGS, metrics).round()
    # A cancelled default-deny counts under the rule that finds it (tests/serve/test_monitor.py).
    assert violation_series(scraped(metrics))[LB_RULE] == len(refused) + 1


GUARDED_NS = [namespace("guarded"), policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]},
                                           namespace="guarded"),
              _anp("deny-guarded", "guarded", 50, DENY_OUT), _lb("guarded")]


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    srv = _started(tmp_path_factory, "clusteregress-guard", GUARDED_NS)
    yield srv
    assert srv.stop() == 0


@pytest.mark.parametrize("operation", ["CREATE", "DELETE"])
def test_the_guard_gives_one_verdict_in_the_server_and_check(guarded_server, operation):
    """Passing outside egress on ahead of the deny a LoadBalancer rests on (CREATE), or deleting
    the deny: refused by the server; `check` of the Pass manifest refuses it too, and with egress
    not required does not review it at all."""
    ahead = _anp("pass-ahead", "guarded", 1, {"action": "Pass", "to": [EVERYWHERE]})
    target = ahead if operation == "CREATE" else GUARDED_NS[2]
    review = make_review(kind="AdminNetworkPolicy", group=NPAPI, namespace="", operation=operation,
                         obj=target if operation == "CREATE" else None, old=None if operation == "CREATE" else target)
    status, body = guarded_server.post_review("/validate", review)
    assert status == 200 and body["response"]["allowed"] is False, body
    assert f"AdminNetworkPolicy {target['metadata']['name']} cannot be" in body["response"]["status"]["message"]
    if operation == "DELETE":
        return  # `check` reviews manifests as they are created
    cluster = ClusterObjects(namespaces=[GUARDED_NS[0]], policies=[GUARDED_NS[1]], services=[GUARDED_NS[3]],
                             cluster_policies=[GUARDED_NS[2]])
    manifests = parse_manifests(yaml.safe_dump(ahead), "anp.yaml")
    [result] = check(manifests, SETTINGS, cluster).results
    assert not result.allowed and result.message == body["response"]["status"]["message"]
    report = check(manifests, default_settings(), cluster)
    assert report.results == () and [s.name for s in report.skipped] == ["pass-ahead"]
