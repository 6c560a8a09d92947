"""`netguard audit --kubeconfig` against the real API finds what the webhook never saw: the
LoadBalancers of the `legacy` namespace were created before netguard was registered."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiserver import eventually, service, skip_reason

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

RULE = "loadbalancer-requires-default-deny"


def test_audit_lists_a_violation_created_before_netguard_was_registered(cluster, kube, netguard, legacy):
    result = subprocess.run([sys.executable, "-m", "webhook", "audit", "--kubeconfig", str(cluster.kubeconfig),
                             "--format", "json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    found = {(v["rule"], v["namespace"], v["kind"], v["name"]) for v in report["violations"]}
    assert (RULE, legacy, "Service", "legacy") in found, report
    assert report["summary"]["violations"] == len(report["violations"])
    assert report["summary"]["namespaces"] >= 1

    # The webhook now refuses a new one there.
    code, status = kube.refused(kube.core.create_namespaced_service, legacy, service("another"))
    assert code == 403 and "was refused" in status.get("message", ""), status


def test_the_server_reports_the_same_violation_in_its_metrics(netguard, legacy):
    """The periodic scan (scanIntervalSeconds: 1) publishes netguard_violations{rule=...}."""
    def violations() -> float:
        text = netguard.get("/metrics")[1]
        text = text.decode() if isinstance(text, bytes) else str(text)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "netguard_violations" and sample.labels.get("rule") == RULE:
                    return sample.value
        return 0.0

    eventually(lambda: violations() >= 1, f"netguard_violations{{rule={RULE!r}}} >= 1", 20)
