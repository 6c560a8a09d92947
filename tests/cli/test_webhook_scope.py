"""Which requests kube-apiserver sends to netguard (webhook/cli/webhooks.py), checked against what
netguard's own rules do with them.

The Service webhook's match condition is evaluated with a CEL implementation (the
`common-expression-language` package, the `test` extra) on a grid of Service requests, for
several configurations, and compared with netguard's decision for the same request
(`decide.validate`): every request the condition leaves out must be one netguard would answer
with a plain allow (no denial, no warning, no audit record) whatever the namespace holds, and
must not change what the offline inventory knows. Every request a rule acts on is sent.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from webhook.cli import manifests
from webhook.cli.webhooks import service_condition
from webhook.core import decide
from webhook.core.config import parse_settings
from webhook.core.labels import is_load_balancer
from webhook.core.outcome import Verdict
from webhook.core.request import AdmissionRequest
from webhook.inventory.offline import OfflineInventory

cel = pytest.importorskip("cel")

NS = "demo"
CONFIGS = {
    "defaults": "",
    "required labels, deny": "labels:\n  required: [team]\n",
    "two required labels, warn": "labels:\n  required: [team, example.com/owner]\nrules:\n  required-labels: {action: warn}\n",
    "required labels, audit; source ranges warned":
        "labels:\n  required: [team]\nrules:\n  required-labels: {action: audit}\n"
        "  loadbalancer-requires-default-deny: {sourceRanges: warn}\n",
}
TYPES = (None, "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
LABELS = (None, {}, {"team": "a"}, {"team": "a", "example.com/owner": "b"})
DEFAULT_DENY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": NS},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def service(kind: str | None, labels: dict[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": NS}
    if labels is not None:
        metadata["labels"] = dict(labels)
    spec: dict[str, Any] = {"ports": [{"port": 80}]}
    if kind is not None:
        spec["type"] = kind
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def requests():
    for new_type, new_labels in itertools.product(TYPES, LABELS):
        new = service(new_type, new_labels)
        yield "CREATE", new, None
        for old_type, old_labels in itertools.product(TYPES, (None, {"team": "a"})):
            yield "UPDATE", new, service(old_type, old_labels)


def review(operation: str, new: dict[str, Any], old: dict[str, Any] | None) -> AdmissionRequest:
    return AdmissionRequest(uid="u1", api_version="admission.k8s.io/v1", kind="Service", group="",
                            namespace=NS, name="web", operation=operation, user="tester", dry_run=False,
                            object=new, old_object=old, field_manager="kubectl")


def sent(condition: dict[str, str], new: dict[str, Any] | None, old: dict[str, Any] | None) -> bool:
    value = cel.evaluate(condition["expression"], {"object": new, "oldObject": old})
    assert isinstance(value, bool), (condition, value)
    return value


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_service_left_out_is_a_plain_allow(config):
    settings = parse_settings(CONFIGS[config])
    condition = service_condition(settings)
    # The namespace as the worst case for a LoadBalancer (no policy), and as the usual one.
    views = [OfflineInventory([]).view(NS), OfflineInventory([DEFAULT_DENY]).view(NS)]
    counts = {True: 0, False: 0}
    for operation, new, old in requests():
        request = review(operation, new, old)
        is_sent = sent(condition, new, old)
        counts[is_sent] += 1
        for view in views:
            decision = decide.validate(request, view, settings)
            plain = decision.allowed and not decision.warnings and decision.verdict == Verdict.ALLOW
            assert is_sent or plain, (config, operation, new, old, decision)
        if not is_sent:  # nothing for the offline inventory to learn either
            assert not is_load_balancer(new) and not is_load_balancer(old)
    # The condition does narrow: ordinary Services are left out, LoadBalancers are not.
    assert counts[True] and counts[False], counts


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_loadbalancer_and_every_service_missing_a_label_is_sent(config):
    settings = parse_settings(CONFIGS[config])
    condition = service_condition(settings)
    required = settings.labels.required
    for operation, new, old in requests():
        missing = any(key not in (new["metadata"].get("labels") or {}) for key in required)
        expected = is_load_balancer(new) or is_load_balancer(old) or missing
        assert sent(condition, new, old) == expected, (config, operation, new, old)


def test_guards_hold_where_objects_are_null_or_partial():
    # A condition that fails to evaluate fails the request (failurePolicy Fail): it must always
    # evaluate, also on DELETE (object null), CREATE (oldObject null) and objects without spec.
    for config in CONFIGS.values():
        condition = service_condition(parse_settings(config))
        for new, old in ((None, None), (None, service("LoadBalancer", None)), ({"metadata": {}}, None),
                         ({"metadata": {}, "spec": {}}, {"metadata": {}})):
            assert isinstance(sent(condition, new, old), bool)
        assert sent(condition, None, service("LoadBalancer", None)) is True


def test_the_rendered_webhook_carries_the_condition():
    for config in CONFIGS.values():
        settings = parse_settings(config)
        docs = manifests.objects(config_text=config or "{}\n")
        [services, policies] = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")["webhooks"]
        assert services["matchConditions"] == [service_condition(settings)]
        assert "matchConditions" not in policies
