"""Cluster-wide and CNI policies in a real kube-apiserver (docs/clusterpolicies.md): CRDs of
three of the kinds installed from definitions written here, objects created, and a netguard started
after them discovers, lists and watches them; `netguard check --cluster` gives the same verdicts.

The CRDs carry a minimal structural schema (`x-kubernetes-preserve-unknown-fields`) rather than
the upstream ones (thousands of lines each for Calico and Cilium): the schema takes part in
nothing netguard decides, only the group, version, kind, plural and scope do, and those are the
upstream projects'."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from apiserver import eventually, skip_reason, unique
from tests.serverproc import Server, lb_review

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

# (group, version, kind, plural, scope) as the upstream projects define them.
CRDS = [
    ("projectcalico.org", "v3", "GlobalNetworkPolicy", "globalnetworkpolicies", "Cluster"),
    ("cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", "Namespaced"),
    ("policy.networking.k8s.io", "v1alpha1", "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies", "Cluster"),
]


def crd(group: str, version: str, kind: str, plural: str, scope: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope,
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


@pytest.fixture(scope="module")
def policies(kube, netguard):
    """The CRDs, established, and one policy of each kind for a namespace of its own."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(kube.api_client)
    custom = client.CustomObjectsApi(kube.api_client)
    for definition in CRDS:
        extensions.create_custom_resource_definition(crd(*definition))

    def established() -> bool:
        for group, _, _, plural, _ in CRDS:
            found = extensions.read_custom_resource_definition(f"{plural}.{group}")
            if not any(c.type == "Established" and c.status == "True" for c in found.status.conditions or ()):
                return False
        return True

    eventually(established, "the CRDs are established")
    names = {key: kube.new_namespace(f"e2e-{key}") for key in ("gnp", "cnp", "banp")}
    # The session's netguard reviews these creates (clusterpolicies.netguard.io): adding isolation
    # is never refused.
    eventually(lambda: custom.create_cluster_custom_object("projectcalico.org", "v3", "globalnetworkpolicies", {
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": unique("deny")},
        "spec": {"selector": "all()", "namespaceSelector": f"projectcalico.org/name == '{names['gnp']}'",
                 "types": ["Ingress"]}}), "a GlobalNetworkPolicy is created")
    eventually(lambda: custom.create_namespaced_custom_object("cilium.io", "v2", names["cnp"], "ciliumnetworkpolicies", {
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": unique("deny")},
        "spec": {"endpointSelector": {}, "ingress": [{}]}}), "a CiliumNetworkPolicy is created")
    eventually(lambda: custom.create_cluster_custom_object(
        "policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies", {
            "apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"},
            "spec": {"subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": names["banp"]}}},
                     "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}),
        "the BaselineAdminNetworkPolicy is created")
    yield names
    for group, _, _, plural, _ in CRDS:
        extensions.delete_custom_resource_definition(f"{plural}.{group}")


def test_a_netguard_started_after_them_counts_them_as_far_as_they_isolate(tmp_path, cluster, policies):
    server = Server(tmp_path, "--kubeconfig", str(cluster.kubeconfig))
    server.start_when(lambda: server.get("/readyz")[0] == 200, timeout=60)
    try:
        answers = {}
        for key, namespace in policies.items():
            status, body = server.post_review("/validate", lb_review(namespace))
            assert status == 200, body
            answers[key] = body["response"]
        assert answers["gnp"]["allowed"] and answers["cnp"]["allowed"]
        assert not answers["banp"]["allowed"]
        assert "Not counted: BaselineAdminNetworkPolicy default" in answers["banp"]["status"]["message"]
    finally:
        assert server.stop() == 0


def test_check_against_the_cluster_gives_the_same_verdicts(tmp_path, cluster, policies):
    manifests = tmp_path / "lbs.yaml"
    manifests.write_text("---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\n"
        "spec: {type: LoadBalancer, ports: [{port: 80}]}\n" for ns in policies.values()))
    result = subprocess.run([sys.executable, "-m", "webhook", "check", "--cluster", "--kubeconfig",
                             str(cluster.kubeconfig), "--format", "json", str(manifests)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    verdicts = {r["namespace"]: r["allowed"] for r in json.loads(result.stdout)["results"]}
    assert verdicts == {policies["gnp"]: True, policies["cnp"]: True, policies["banp"]: False}
