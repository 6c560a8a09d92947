"""What kubectl users see: `kubectl apply -f` of a policy and its Service in one file, the denial
as kubectl prints it, and netguard's warnings as `Warning:` lines. Skipped without kubectl."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from apiserver import allow_all, default_deny, eventually, service, skip_reason, yaml_documents

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def test_kubectl_apply_of_policy_and_service_in_one_file_is_admitted(kube, netguard, kubectl, tmp_path):
    for _ in range(5):
        namespace = kube.new_namespace("e2e-apply")
        manifest = tmp_path / f"{namespace}.yaml"
        # Document order is apply order: the policy, then the Service (docs/design.md, Delivery pipelines).
        manifest.write_text(yaml_documents(default_deny(namespace=namespace),
                                           service("web", namespace=namespace)))
        result = kubectl.run("apply", "-f", str(manifest))
        assert result.returncode == 0, result.stderr
        assert "networkpolicy.networking.k8s.io/default-deny created" in result.stdout, result.stdout
        assert "service/web created" in result.stdout, result.stdout
        assert "denied the request" not in result.stderr
        assert kube.core.read_namespaced_service("web", namespace).spec.type == "LoadBalancer"


def test_kubectl_shows_the_denial(kube, netguard, kubectl):
    namespace = kube.new_namespace("e2e-kubectl")
    first = f"Service {namespace}/x of type LoadBalancer was refused: namespace {namespace} has no default-deny"

    # `kubectl create service` wraps the API's error in its own: "error: failed to create
    # LoadBalancer service: admission webhook ... denied the request: ..." (kubectl's
    # create_service.go), so no "Error from server" here.
    result = kubectl.run("create", "service", "loadbalancer", "x", "--tcp=80:8080", "-n", namespace)
    assert result.returncode != 0, result.stdout
    assert "admission webhook" in result.stderr and f"denied the request: {first}" in result.stderr, result.stderr

    # Manifests (`kubectl create -f`, `kubectl apply -f`, what GitOps tools run) get the API's
    # Status printed as is.
    for verb in ("create", "apply"):
        result = kubectl.run(verb, "-n", namespace, "-f", "-", input=yaml_documents(service("x")))
        assert result.returncode != 0, result.stdout
        assert "Error from server (Forbidden)" in result.stderr, result.stderr
        assert "denied the request: Service" in result.stderr and first in result.stderr, result.stderr

    with pytest.raises(ApiException) as missing:
        kube.core.read_namespaced_service("x", namespace)
    assert missing.value.status == 404


def test_kubectl_prints_the_warning_for_an_existing_violation(kube, netguard, kubectl, legacy):
    """`legacy-edit` is a LoadBalancer created before netguard was registered, in a namespace
    without policy: an unrelated edit is allowed, with a warning."""
    result = kubectl.run("label", "service", "legacy-edit", "-n", legacy, "e2e/touched=yes")
    assert result.returncode == 0, result.stderr
    assert f"Warning: Service {legacy}/legacy-edit: existing violation: LoadBalancer" in result.stderr, \
        result.stderr
    assert kube.service_labels(legacy, "legacy-edit").get("e2e/touched") == "yes"


def test_kubectl_prints_the_warning_for_a_cancelled_default_deny(kube, netguard, kubectl):
    namespace = kube.new_namespace("e2e-cancel")
    kube.networking.create_namespaced_network_policy(namespace, default_deny())
    kube.networking.create_namespaced_network_policy(namespace, allow_all())
    manifest = yaml_documents(service("web"))
    warning = (f"Warning: Service {namespace}/web: default-deny ingress is cancelled for IPv4 and IPv6 "
               "by allow-all; pods are not isolated")
    # An admitted Service is decided on netguard's watch cache: wait until it has both policies
    # (a server-side dry-run gets the same answer and stores nothing).
    eventually(lambda: warning in kubectl.run("create", "-n", namespace, "-f", "-", "--dry-run=server",
                                              input=manifest).stderr,
               "netguard's watch has both policies", 15)
    result = kubectl.run("create", "-n", namespace, "-f", "-", input=manifest)
    assert result.returncode == 0, result.stderr
    assert warning in result.stderr, result.stderr
    assert "service/web created" in result.stdout


def test_kubectl_cannot_cancel_a_default_deny_a_load_balancer_depends_on(kube, netguard, kubectl):
    """The guard cannot be sidestepped: with a LoadBalancer behind the default-deny, a policy
    that admits every source to every pod is refused, like deleting the default-deny."""
    namespace = kube.new_namespace("e2e-sidestep")
    kube.networking.create_namespaced_network_policy(namespace, default_deny())
    eventually(lambda: kubectl.run("create", "-n", namespace, "-f", "-", "--dry-run=server",
                                   input=yaml_documents(service("web"))).returncode == 0,
               "netguard's watch has the default-deny", 15)
    kube.core.create_namespaced_service(namespace, service("web"))
    result = kubectl.run("create", "-n", namespace, "-f", "-", input=yaml_documents(allow_all()))
    assert result.returncode != 0
    assert (f"NetworkPolicy {namespace}/allow-all cannot be created: it admits every IPv4 and IPv6 "
            "address") in result.stderr, result.stderr
    assert "The LoadBalancer Services of namespace" in result.stderr and "web" in result.stderr
