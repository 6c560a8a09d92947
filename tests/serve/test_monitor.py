"""webhook/serve/monitor.py: the periodic scan publishes netguard_violations by real rule name
only, and when it last completed."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.reviews import make_request, namespace, policy, service, settings
from webhook.core.registry import RULE_NAMES
from webhook.inventory.offline import OfflineInventory
from webhook.serve.metrics import Metrics
from webhook.serve.monitor import Monitor

LB_RULE = "loadbalancer-requires-default-deny"
ALLOW_ALL = {"podSelector": {}, "ingress": [{}]}


def scraped(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def violation_series(found: dict[tuple[str, tuple], float]) -> dict[str, float]:
    return {dict(labels)["rule"]: value for (name, labels), value in found.items()
            if name == "netguard_violations"}


class NotReady(OfflineInventory):
    def ready(self) -> bool:
        return False


def test_a_cancelled_default_deny_counts_under_its_rule_and_no_other_name_becomes_a_series():
    inventory = OfflineInventory([
        namespace("shop"), policy("deny", namespace="shop"),
        policy("allow-all", ALLOW_ALL, namespace="shop"),  # cancels shop's default-deny
        namespace("open"), service("edge", type="LoadBalancer", namespace="open"),  # no default-deny
    ])
    metrics = Metrics()
    found = Monitor(inventory, settings(), metrics).round()
    series = violation_series(scraped(metrics))
    assert set(series) <= set(RULE_NAMES), f"series for names that are no rule: {set(series) - set(RULE_NAMES)}"
    assert "cancelled-default-deny" not in series
    assert series[LB_RULE] == 2  # the unprotected LoadBalancer and the cancelling policy
    assert found == series


def test_a_clean_inventory_still_has_a_zero_series_per_scanned_rule():
    metrics = Metrics()
    Monitor(OfflineInventory([namespace("shop")]), settings(), metrics).round()
    series = violation_series(scraped(metrics))
    assert series and set(series.values()) == {0}
    assert LB_RULE in series


def test_objects_lacking_required_labels_are_a_required_labels_series():
    inventory = OfflineInventory([
        namespace("shop"), service("web", namespace="shop", labels={"team": "a"}),
        service("api", namespace="shop"), policy("deny", namespace="shop"),
        service("dns", namespace="kube-system"),  # exempt
    ], required_labels=("team",))
    metrics = Metrics()
    monitor = Monitor(inventory, settings(required=("team",)), metrics)
    monitor.round()
    assert violation_series(scraped(metrics))["required-labels"] == 2  # Service api, NetworkPolicy deny
    # What netguard then allows changes the count at the next scan (the offline inventory's updates).
    inventory.observe(make_request(kind="Service", operation="UPDATE", namespace="shop", name="api",
                                   obj=service("api", namespace="shop", labels={"team": "a"}),
                                   old=service("api", namespace="shop")))
    monitor.round()
    assert violation_series(scraped(metrics))["required-labels"] == 1


def test_the_last_scan_time_is_set_when_a_scan_completes_and_not_before():
    metrics = Metrics()
    Monitor(NotReady([]), settings(), metrics).round()
    assert scraped(metrics)[("netguard_last_scan_timestamp_seconds", ())] == 0
    Monitor(OfflineInventory([]), settings(), metrics).round()
    stamp = scraped(metrics)[("netguard_last_scan_timestamp_seconds", ())]
    assert stamp > 1.7e9  # a Unix time in seconds (2023 onwards), not 0 nor milliseconds
    assert stamp < 1e10


def test_egress_required_counts_load_balancers_without_an_egress_default_deny():
    """The metric follows egress.required: the same LoadBalancer behind an ingress default-deny
    is a violation only where the configuration asks for an egress default-deny too."""
    from webhook.core.config import parse_settings
    objects = [namespace("shop", {"exposure": "public"}), policy("deny", namespace="shop"),
               service("edge", type="LoadBalancer", namespace="shop"),
               namespace("intra"), policy("deny", namespace="intra"),
               service("edge", type="LoadBalancer", namespace="intra")]
    required = parse_settings("egress:\n  required: true\n  namespaceSelector: {matchLabels: {exposure: public}}\n")
    counts = {}
    for name, config in (("off", settings()), ("required", required)):
        metrics = Metrics()
        Monitor(OfflineInventory(objects), config, metrics).round()
        counts[name] = violation_series(scraped(metrics))[LB_RULE]
    assert counts == {"off": 0, "required": 1}
