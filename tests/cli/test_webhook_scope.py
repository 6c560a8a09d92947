"""Which requests kube-apiserver sends to netguard (webhook/cli/webhooks.py), checked against what
netguard's own rules do with them.

The Service webhooks' match conditions are evaluated with a CEL implementation (the
`common-expression-language` package, the `test` extra) on a grid of Service requests, for
several configurations, and compared with netguard's decision for the same request
(`decide.validate`), whatever the namespace holds:
- a request no webhook receives is one netguard answers with a plain allow (no denial, no
  warning, no audit record), and tells the offline inventory nothing new;
- a request the fail-closed webhook receives is a LoadBalancer (before or after), or one a rule
  can deny: an outage blocks nothing netguard would have let through without a word;
- a request the fail-open webhook receives is never denied, only warned or audited;
- no request reaches both.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from webhook.cli import manifests
from webhook.cli.webhooks import service_condition, service_labels_condition
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
    "two required labels, deny": "labels:\n  required: [team, example.com/owner]\n",
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


def evaluate(condition: dict[str, str] | None, new: dict[str, Any] | None, old: dict[str, Any] | None) -> bool:
    if condition is None:  # no such webhook in this configuration
        return False
    value = cel.evaluate(condition["expression"], {"object": new, "oldObject": old})
    assert isinstance(value, bool), (condition, value)
    return value


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_each_service_goes_where_netguard_can_act_on_it(config):
    settings = parse_settings(CONFIGS[config])
    fail_closed, fail_open = service_condition(settings), service_labels_condition(settings)
    # The namespace as the worst case for a LoadBalancer (no policy), and as the usual one.
    views = [OfflineInventory([]).view(NS), OfflineInventory([DEFAULT_DENY]).view(NS)]
    counts = {"closed": 0, "open": 0, "none": 0}
    for operation, new, old in requests():
        request = review(operation, new, old)
        closed, opened = evaluate(fail_closed, new, old), evaluate(fail_open, new, old)
        assert not (closed and opened), (config, new, old)
        counts["closed" if closed else "open" if opened else "none"] += 1
        load_balancer = is_load_balancer(new) or is_load_balancer(old)
        decisions = [decide.validate(request, view, settings) for view in views]
        plain = [d.allowed and not d.warnings and d.verdict == Verdict.ALLOW for d in decisions]
        where = (config, operation, new, old, decisions)
        if not closed and not opened:
            assert all(plain) and not load_balancer, where
        elif opened:
            assert all(d.allowed for d in decisions) and not all(plain), where
        elif not load_balancer:
            assert not all(d.allowed for d in decisions), where  # a rule can refuse it
    # The conditions do narrow: ordinary Services are left out, LoadBalancers are not.
    assert counts["closed"] and counts["none"], counts
    assert bool(counts["open"]) == (fail_open is not None), counts


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_loadbalancer_and_every_service_missing_a_label_is_sent(config):
    settings = parse_settings(CONFIGS[config])
    required = settings.labels.required
    for operation, new, old in requests():
        missing = any(key not in (new["metadata"].get("labels") or {}) for key in required)
        expected = is_load_balancer(new) or is_load_balancer(old) or missing
        got = evaluate(service_condition(settings), new, old) or evaluate(service_labels_condition(settings), new, old)
        assert got == expected, (config, operation, new, old)


def test_a_label_rule_that_only_warns_never_blocks():
    warn = parse_settings(CONFIGS["two required labels, warn"])
    deny = parse_settings(CONFIGS["two required labels, deny"])
    assert service_labels_condition(parse_settings("")) is None  # no labels required: no such webhook
    assert service_labels_condition(deny) and service_labels_condition(warn)
    assert service_condition(warn) == service_condition(parse_settings(""))  # LoadBalancers only
    assert service_condition(deny)["name"] == "loadbalancer-or-refused-labels"
    hooks = {h["name"]: h for d in manifests.objects(config_text=CONFIGS["two required labels, warn"])
             if d["kind"] == "ValidatingWebhookConfiguration" for h in d["webhooks"]}
    assert hooks["service-labels.netguard.io"]["failurePolicy"] == "Ignore"
    assert hooks["service-labels.netguard.io"]["rules"] == hooks["services.netguard.io"]["rules"]
    assert hooks["services.netguard.io"]["failurePolicy"] == "Fail"


def test_guards_hold_where_objects_are_null_or_partial():
    # A condition that fails to evaluate fails the request (failurePolicy Fail): it must always
    # evaluate, also on DELETE (object null), CREATE (oldObject null) and objects without spec.
    for config in CONFIGS.values():
        settings = parse_settings(config)
        for condition in (service_condition(settings), service_labels_condition(settings)):
            for new, old in ((None, None), (None, service("LoadBalancer", None)), ({"metadata": {}}, None),
                             ({"metadata": {}, "spec": {}}, {"metadata": {}})):
                evaluate(condition, new, old)  # a bool, or the assertion in evaluate fails
        assert evaluate(service_condition(settings), None, service("LoadBalancer", None)) is True


def test_the_rendered_webhook_carries_the_condition():
    for config in CONFIGS.values():
        settings = parse_settings(config)
        docs = manifests.objects(config_text=config or "{}\n")
        [services, policies, _, *labels] = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")[
            "webhooks"]
        assert services["matchConditions"] == [service_condition(settings)]
        assert "matchConditions" not in policies
        extra = service_labels_condition(settings)
        assert [h["matchConditions"] for h in labels] == ([[extra]] if extra else [])
