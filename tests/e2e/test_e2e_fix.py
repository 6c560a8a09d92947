"""`netguard fix` against a real kube-apiserver: the files it writes apply as they stand, and the
LoadBalancer they were written for is then admitted without a `Warning:` line. With `--cluster`
a named target port is resolved from the Deployment the cluster holds. Skipped without kubectl."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from apiserver import eventually, skip_reason, yaml_documents

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def deployment(namespace: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "example.com/web:1",
                                                           "ports": [{"name": "http", "containerPort": 8080}]}]}}}}


def load_balancer(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "loadBalancerSourceRanges": ["203.0.113.0/24"],
                     "ports": [{"port": 80, "targetPort": "http"}]}}


def netguard_fix(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webhook", "fix", *args], capture_output=True, text=True,
                          timeout=60)


def test_the_fix_applies_and_the_loadbalancer_is_admitted_without_warnings(kube, netguard, kubectl, tmp_path):
    namespace = kube.new_namespace("e2e-fix")
    assert kubectl.run("apply", "-f", "-", input=yaml_documents(deployment(namespace))).returncode == 0
    service = tmp_path / "service.yaml"
    service.write_text(yaml_documents(load_balancer(namespace)))
    out = tmp_path / "fix"
    result = netguard_fix("--cluster", "--kubeconfig", str(kubectl.kubeconfig), str(service), "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = out / f"{namespace}.yaml"
    [deny, allow] = list(yaml.safe_load_all(written.read_text()))
    assert allow["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]  # the cluster's Deployment

    applied = kubectl.run("apply", "-f", str(written))
    assert applied.returncode == 0, applied.stderr
    assert "Warning:" not in applied.stderr, applied.stderr  # netguard's labels were already right

    # netguard's cache sees the new policies within a moment: a server-side dry-run says when.
    def admitted_quietly() -> bool:
        dry = kubectl.run("apply", "--dry-run=server", "-f", str(service))
        return dry.returncode == 0 and "Warning:" not in dry.stderr

    eventually(admitted_quietly, "the LoadBalancer admitted without warnings at dry-run")
    created = kubectl.run("apply", "-f", str(service))
    assert created.returncode == 0, created.stderr
    assert "Warning:" not in created.stderr, created.stderr
    assert kube.core.read_namespaced_service("web", namespace).spec.type == "LoadBalancer"
