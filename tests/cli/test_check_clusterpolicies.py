"""`netguard check` and `netguard audit` with cluster-wide and CNI policies: the same verdicts
as the server's (docs/clusterpolicies.md)."""

from __future__ import annotations

import json

from tests.cli.test_check import run_json, write
from tests.cli.test_scan import FakeApi, namespace, service, write_kubeconfig
from webhook.cli.audit import run_audit

LB = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 443}]}
"""
SHOP = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
GNP = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-ingress}
spec: {selector: all(), types: [Ingress]}
"""
OPEN_GNP = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: open}
spec: {selector: all(), types: [Ingress], ingress: [{action: Allow}]}
"""
BANP = """
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]
"""
CCNP = """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: default-deny}
spec: {endpointSelector: {}, ingress: [{}]}
"""


def manifests(tmp_path, *docs):
    return write(tmp_path / "set.yaml", "---\n".join(d.lstrip("\n") for d in docs))


def results(payload):
    return {(r["kind"], r["name"]): r for r in payload["results"]}


def test_check_counts_a_calico_global_deny(tmp_path, capsys):
    code, payload = run_json(capsys, manifests(tmp_path, SHOP, GNP, LB))
    found = results(payload)
    assert code == 0 and found[("Service", "web")]["allowed"]
    assert found[("GlobalNetworkPolicy", "deny-ingress")]["allowed"]


def test_check_counts_a_cilium_clusterwide_empty_rule(tmp_path, capsys):
    code, payload = run_json(capsys, manifests(tmp_path, SHOP, CCNP, LB))
    assert code == 0 and results(payload)[("Service", "web")]["allowed"]


def test_check_refuses_a_load_balancer_behind_a_baseline_deny_and_says_why(tmp_path, capsys):
    code, payload = run_json(capsys, manifests(tmp_path, SHOP, BANP, LB))
    web = results(payload)[("Service", "web")]
    assert code == 1 and not web["allowed"]
    assert "Not counted: BaselineAdminNetworkPolicy default" in web["message"]


def test_check_refuses_a_global_allow_that_cancels_the_deny(tmp_path, capsys):
    code, payload = run_json(capsys, manifests(tmp_path, SHOP, GNP, LB, OPEN_GNP))
    found = results(payload)
    assert code == 1 and not found[("GlobalNetworkPolicy", "open")]["allowed"]
    assert found[("Service", "web")]["allowed"]  # a refused policy is never stored


def _audit(capsys, tmp_path, served):
    objects = dict(namespaces=[namespace("shop")], policies=[], services=[service("shop", "web")])
    with FakeApi(**objects, served=served) as api:
        code = run_audit(["--kubeconfig", str(write_kubeconfig(tmp_path / "kubeconfig", api.url)),
                          "--format", "json"])
    return code, json.loads(capsys.readouterr().out), api


def test_audit_reads_the_kinds_the_cluster_serves(tmp_path, capsys):
    deny = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "deny-ingress"}, "spec": {"selector": "all()", "types": ["Ingress"]}}
    code, payload, api = _audit(capsys, tmp_path, {
        "projectcalico.org/v3": {("globalnetworkpolicies", "GlobalNetworkPolicy"): [deny]}})
    assert code == 0 and payload["summary"]["violations"] == 0
    assert "/apis/projectcalico.org/v3/globalnetworkpolicies" in api.paths()


def test_audit_of_a_cluster_with_only_a_baseline_deny_reports_the_load_balancer(tmp_path, capsys):
    banp = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"},
            "spec": {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}
    code, payload, _ = _audit(capsys, tmp_path, {
        "policy.networking.k8s.io/v1alpha1": {("baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy"): [banp]}})
    assert code == 1
    assert [(v["kind"], v["name"]) for v in payload["violations"]] == [("Service", "web")]
