"""The clusterpolicies.netguard.io webhook sends the policy.networking.k8s.io kinds only where
egress.required (they isolate egress only: docs/clusterpolicies.md), and then every kind it sends
is one netguard reviews."""

from __future__ import annotations

from webhook.cli.webhooks import CLUSTER_POLICIES_WEBHOOK, webhook_configurations
from webhook.core import clusterpolicy
from webhook.core.config import parse_settings
from webhook.core.settings import default_settings


def _sent(settings):
    [validating, _] = webhook_configurations(settings, "Q0E=", None, 5)
    [hook] = [w for w in validating["webhooks"] if w["name"] == CLUSTER_POLICIES_WEBHOOK]
    resources = {r: k for (_, k), (r, _) in clusterpolicy.KINDS.items()}
    return {(g, resources[r]) for rule in hook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


def test_the_admin_policy_kinds_are_sent_only_where_egress_is_required():
    assert _sent(default_settings()) == clusterpolicy.GUARDED == clusterpolicy.guarded(False)
    required = parse_settings("egress:\n  required: true\n", "netguard.yaml")
    assert _sent(required) == clusterpolicy.guarded(True) == set(clusterpolicy.KINDS)
