"""netguard's rules through a real kube-apiserver: the LoadBalancer rule on create, update and
server-side dry-run, the default-deny guard on delete, and no false denial when a policy and its
Service are created back to back. Each test works in namespaces of its own."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from apiserver import default_deny, eventually, service, skip_reason, status_of

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def test_loadbalancer_denied_without_default_deny_then_admitted(kube, netguard):
    namespace = kube.new_namespace("e2e-lb")
    kube.assert_loadbalancer_requires_default_deny(namespace, "web")
    # The decision is in netguard's audit trail, with the requesting user and the live state.
    lines = [line for line in netguard.audit_lines()
             if line.get("namespace") == namespace and line.get("stage") == "validate"
             and line.get("kind") == "Service"]
    assert [line["decision"] for line in lines][:1] == ["deny"], lines
    assert lines[0]["user"] == "e2e-admin" and lines[0]["operation"] == "CREATE"


def test_clusterip_changed_to_loadbalancer_is_denied(kube, netguard):
    namespace = kube.new_namespace("e2e-update")
    kube.core.create_namespaced_service(namespace, service("api", "ClusterIP"))
    code, status = kube.refused(kube.core.patch_namespaced_service, "api", namespace,
                                {"spec": {"type": "LoadBalancer"}},
                                _content_type="application/merge-patch+json")
    assert code == 403, status
    message = status.get("message", "")
    assert "admission webhook" in message
    assert (f"Service {namespace}/api cannot change to type LoadBalancer: namespace {namespace} "
            "has no default-deny ingress NetworkPolicy") in message, message
    assert kube.core.read_namespaced_service("api", namespace).spec.type == "ClusterIP"


def test_server_side_dry_run_gets_the_same_denial(kube, netguard):
    namespace = kube.new_namespace("e2e-dryrun")
    code, status = kube.refused(kube.core.create_namespaced_service, namespace, service("dry"),
                                dry_run="All")
    assert code == 403, status
    assert (f"Service {namespace}/dry of type LoadBalancer was refused: namespace {namespace} "
            "has no default-deny ingress NetworkPolicy") in status.get("message", ""), status
    # Once the namespace is default-deny the dry-run passes, and still stores nothing.
    kube.networking.create_namespaced_network_policy(namespace, default_deny())
    kube.core.create_namespaced_service(namespace, service("dry"), dry_run="All")
    with pytest.raises(ApiException) as missing:
        kube.core.read_namespaced_service("dry", namespace)
    assert missing.value.status == 404


def test_default_deny_delete_is_guarded_while_a_loadbalancer_depends_on_it(kube, netguard):
    namespace = kube.new_namespace("e2e-guard")
    kube.networking.create_namespaced_network_policy(namespace, default_deny())
    kube.core.create_namespaced_service(namespace, service("web"))
    # The guard decides an *allow* on netguard's watch cache (only denials are confirmed live),
    # so a delete sent before the watch delivered the Service would pass. Wait for the watch,
    # with server-side dry-run deletes (they store nothing), before the real one.
    eventually(lambda: kube.refused(kube.networking.delete_namespaced_network_policy, "default-deny",
                                    namespace, dry_run="All")[0] == 403,
               "netguard's watch has the LoadBalancer (a dry-run delete of the policy is refused)", 15)
    code, status = kube.refused(kube.networking.delete_namespaced_network_policy, "default-deny", namespace)
    assert code == 403, status
    message = status.get("message", "")
    assert "admission webhook" in message
    assert (f"NetworkPolicy {namespace}/default-deny cannot be deleted: it is the last default-deny "
            f"ingress policy in namespace {namespace}, and 1 LoadBalancer Service(s) depend on it.\n"
            "They are: web. ") in message, message
    assert kube.networking.read_namespaced_network_policy("default-deny", namespace)

    kube.core.delete_namespaced_service("web", namespace)
    # netguard's cache may still list the Service; it confirms with a live read before refusing.
    kube.networking.delete_namespaced_network_policy("default-deny", namespace)
    with pytest.raises(ApiException) as gone:
        kube.networking.read_namespaced_network_policy("default-deny", namespace)
    assert gone.value.status == 404


def test_policy_then_service_back_to_back_is_never_falsely_denied(kube, netguard):
    """Policy created, Service created at once, as `kubectl apply -f` of one file does: 20 times.
    Half of the namespaces exist a while before (netguard's watch has them, not their policy),
    half are created in the same breath (netguard has never seen them)."""
    early = [kube.new_namespace("e2e-b2b") for _ in range(10)]
    denied = []
    for index in range(20):
        namespace = early[index // 2] if index % 2 == 0 else kube.new_namespace("e2e-b2b")
        kube.networking.create_namespaced_network_policy(namespace, default_deny())
        try:
            kube.core.create_namespaced_service(namespace, service("web"))
        except ApiException as exc:
            denied.append((namespace, exc.status, status_of(exc).get("message", "")[:300]))
    assert denied == []
