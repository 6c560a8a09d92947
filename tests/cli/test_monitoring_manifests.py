"""manifests/monitoring/: the overlay builds, adds only monitoring objects to the base, scrapes
the right Service port, and ships the rules and the dashboard the other tests check."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import DASHBOARD, MONITORING, rule_spec
from webhook.cli import manifests

ROOT = Path(__file__).resolve().parents[2]
NS = manifests.DEFAULT_NAMESPACE
ADDED = {("ServiceMonitor", "netguard"), ("PrometheusRule", "netguard"), ("ConfigMap", "netguard-dashboard")}


def parse(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    assert shutil.which("kubectl"), "kubectl is not on PATH (it builds the kustomize overlays)"
    result = subprocess.run(["kubectl", "kustomize", "manifests/monitoring/"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_the_overlay_is_the_base_plus_the_monitoring_objects(built):
    names = {(d["kind"], d["metadata"]["name"]) for d in built}
    base = {(d["kind"], d["metadata"]["name"]) for d in manifests.objects()}
    assert names - base == ADDED
    assert base <= names
    assert all(d["metadata"].get("namespace") == NS for d in built if (d["kind"], d["metadata"]["name"]) in ADDED)


def test_the_service_monitor_scrapes_the_netguard_service_over_plain_http(built):
    spec = one(built, "ServiceMonitor", "netguard")["spec"]
    service = one(built, "Service", "netguard")
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    [endpoint] = spec["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("metrics", "/metrics", "http")


def test_the_service_has_the_port_the_service_monitor_names(built):
    ports = {p["name"]: p for p in one(built, "Service", "netguard")["spec"]["ports"]}
    if "metrics" not in ports:
        pytest.skip("the base Service has no port named metrics yet (it comes with --metrics-bind)")
    container = one(built, "Deployment", "netguard")["spec"]["template"]["spec"]["containers"][0]
    numbers = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    target = ports["metrics"].get("targetPort", ports["metrics"]["port"])
    # Some policy of the default-deny namespace lets other namespaces' pods (Prometheus) in on it.
    allowed = [port for d in built if d["kind"] == "NetworkPolicy"
               for rule in d["spec"].get("ingress", []) if {"namespaceSelector": {}} in rule.get("from", [])
               for port in rule.get("ports", [])]
    assert {"protocol": "TCP", "port": numbers.get(target, target)} in allowed


def test_the_rule_and_the_dashboard_config_map_are_the_files_tested(built):
    assert one(built, "PrometheusRule", "netguard")["spec"] == rule_spec()
    config = one(built, "ConfigMap", "netguard-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config["data"][DASHBOARD.name]) == json.loads(DASHBOARD.read_text())


def test_the_overlay_folder_holds_only_what_its_kustomization_names():
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    named = {*kustomization["resources"][1:],
             *(f for gen in kustomization["configMapGenerator"] for f in gen["files"])}
    assert kustomization["resources"][0] == "../base"
    assert {p.name for p in MONITORING.iterdir()} == named | {"kustomization.yaml"}
