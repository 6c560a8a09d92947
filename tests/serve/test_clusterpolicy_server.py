"""Verdict parity with cluster-wide and CNI policies: a real server over TLS (offline inventory),
`netguard check` against the same cluster state, and `netguard audit`'s scan give one verdict per
namespace (docs/clusterpolicies.md)."""

from __future__ import annotations

import pytest
import yaml

from tests.reviews import make_review, namespace, service
from tests.serverproc import Server
from webhook.cli.audit import scan
from webhook.cli.check import check
from webhook.core import clusterpolicy
from webhook.core.settings import default_settings
from webhook.inventory.kube import ClusterObjects
from webhook.inventory.objects import parse_manifests


def _cluster(api_version, kind, name, spec, ns=None):
    metadata = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


# namespace -> (its isolating-or-not policy, whether a LoadBalancer there is admitted)
ROWS = {
    "gnp": (_cluster("projectcalico.org/v3", "GlobalNetworkPolicy", "deny-gnp",
                     {"selector": "all()", "namespaceSelector": "projectcalico.org/name == 'gnp'",
                      "types": ["Ingress"]}), True),
    "calico": (_cluster("projectcalico.org/v3", "NetworkPolicy", "deny",
                        {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}, "calico"), True),
    "ccnp": (_cluster("cilium.io/v2", "CiliumClusterwideNetworkPolicy", "deny-ccnp",
                      {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ccnp"}},
                       "ingress": [{}]}), True),
    "cnp": (_cluster("cilium.io/v2", "CiliumNetworkPolicy", "deny", {"endpointSelector": {}, "ingress": [{}]},
                     "cnp"), True),
    "cnp-world": (_cluster("cilium.io/v2", "CiliumNetworkPolicy", "world",
                           {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}]}, "cnp-world"), False),
    "banp": (_cluster("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy", "default",
                      {"subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "banp"}}},
                       "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}), False),
    "anp": (_cluster("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy", "deny-anp",
                     {"priority": 10, "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "anp"}}},
                      "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}), False),
    "cnp-admin": (_cluster("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy", "admin-deny",
                           {"tier": "Admin", "priority": 10,
                            "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "cnp-admin"}}},
                            "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}), False),
}
STATE = [o for ns, (p, _) in ROWS.items() for o in (namespace(ns), p)]


def _lb(ns):
    return service("web", type="LoadBalancer", namespace=ns)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("clusterpolicies")
    objects = work / "objects"
    objects.mkdir()
    (objects / "state.yaml").write_text(yaml.safe_dump_all(STATE))
    srv = Server(work, "--objects", str(objects)).start()
    yield srv
    assert srv.stop() == 0


@pytest.mark.parametrize("ns", sorted(ROWS))
def test_server_and_check_give_one_verdict(server, ns):
    status, body = server.post_review("/validate", make_review(kind="Service", namespace=ns, obj=_lb(ns),
                                                               dry_run=True))
    assert status == 200, body
    answer = body["response"]
    assert answer["allowed"] is ROWS[ns][1]
    cluster = ClusterObjects(namespaces=[o for o in STATE if o["kind"] == "Namespace"], policies=[], services=[],
                             cluster_policies=[o for o in STATE if clusterpolicy.is_cluster_policy(o)])
    [result] = check(parse_manifests(yaml.safe_dump(_lb(ns)), "lb.yaml"), default_settings(), cluster).results
    assert result.allowed is answer["allowed"]
    assert list(result.warnings) == answer.get("warnings", [])
    if not result.allowed:
        assert "Not counted:" in answer["status"]["message"] and "Not counted:" in result.message \
            or ns == "cnp-world"


def test_audit_reports_the_namespaces_the_server_refuses():
    services = [_lb(ns) for ns in ROWS]
    found = scan([o for o in STATE if o["kind"] == "Namespace"], [], services, default_settings(),
                 [o for o in STATE if clusterpolicy.is_cluster_policy(o)])
    assert {v.namespace for v in found} == {ns for ns, (_, admitted) in ROWS.items() if not admitted}


# What each row's policy is labelled (netguard/policy-type): what the rule above counts it as.
LABELS = {"gnp": "default-deny-ingress", "calico": "default-deny-ingress", "ccnp": "default-deny-ingress",
          "cnp": "default-deny-ingress", "cnp-world": "not-isolating", "banp": "not-isolating",
          "anp": "not-isolating", "cnp-admin": "not-isolating"}


@pytest.mark.parametrize("ns", sorted(ROWS))
def test_the_server_labels_each_policy_with_what_it_counts_as(server, ns):
    import base64
    import json

    policy = ROWS[ns][0]
    group = policy["apiVersion"].rpartition("/")[0]
    status, body = server.post_review("/mutate", make_review(
        kind=policy["kind"], group=group, namespace=policy["metadata"].get("namespace", ""), obj=policy))
    assert status == 200, body
    answer = body["response"]
    assert answer["allowed"] is True and answer["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(answer["patch"]))
    assert patch == [{"op": "add", "path": "/metadata/labels", "value": {"netguard/policy-type": LABELS[ns]}}]
    assert (LABELS[ns] == "default-deny-ingress") is ROWS[ns][1]  # the label says what the rule counts
