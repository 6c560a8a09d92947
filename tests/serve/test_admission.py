"""webhook.admission.Admission over a fake inventory: confirming denials with a live read,
failureMode when cluster state is unknown, and what the inventory is told afterwards.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.reviews import make_request, policy, service, settings
from webhook.core import decide, messages
from webhook.serve.admission import Admission
from webhook.core.options import FailureMode
from webhook.core.config import parse_settings
from webhook.inventory.protocol import InventoryUnavailable
from webhook.core.outcome import Verdict
from webhook.core.request import AdmissionRequest
from webhook.core.rules.guard import NAME as GUARD_RULE
from webhook.core.rules.required_labels import NAME as LABELS_RULE
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.core.view import NamespaceView

EMPTY = NamespaceView("shop", known=True, source="cache")
DEFAULT_DENY = policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
WITH_DENY = NamespaceView("shop", known=True, source="live").with_policy(DEFAULT_DENY)
CACHED_DENY = dataclasses.replace(WITH_DENY, source="cache")
LB_CREATE = dict(obj=service("web", type="LoadBalancer"))
CLOSED = settings(failure_mode=FailureMode.CLOSED)
OPEN = parse_settings("failureMode: open\n")


class FakeInventory:
    """Implements the Inventory protocol; records every call so tests can assert on them."""

    def __init__(self, cached: NamespaceView = EMPTY, live: NamespaceView | None = None, *,
                 is_ready: bool = True, view_error: str = "", confirm_error: str = "") -> None:
        self.cached = cached
        self.live = live if live is not None else dataclasses.replace(cached, source="live")
        self.is_ready = is_ready
        self.view_error = view_error
        self.confirm_error = confirm_error
        self.viewed: list[str] = []
        self.confirmed: list[str] = []
        self.observed: list[AdmissionRequest] = []
        self.started = self.stopped = 0

    def ready(self) -> bool:
        return self.is_ready

    def view(self, namespace: str) -> NamespaceView:
        self.viewed.append(namespace)
        if self.view_error:
            raise InventoryUnavailable(self.view_error)
        return self.cached

    def confirm(self, namespace: str) -> NamespaceView:
        self.confirmed.append(namespace)
        if self.confirm_error:
            raise InventoryUnavailable(self.confirm_error)
        return self.live

    def observe(self, req: AdmissionRequest) -> None:
        self.observed.append(req)

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1


def evaluate(inventory, config=None, stage="validate", **review):
    admission = Admission(config or settings(), inventory)
    req = make_request(**review)
    return admission, req, admission.evaluate(stage, req)


# --------------------------------------------------------------------------- confirming denials


def test_live_read_overturns_a_denial_the_cache_would_make():
    inventory = FakeInventory(cached=EMPTY, live=WITH_DENY)
    admission, req, evaluation = evaluate(inventory, **LB_CREATE)
    assert evaluation.decision.allowed
    assert evaluation.state == "live"
    assert admission.counters.overturned == 1
    assert admission.counters.confirmed == 0
    assert inventory.confirmed == ["shop"]
    assert inventory.observed == [req]


def test_live_read_hook_is_told_whether_it_overturned():
    inventory = FakeInventory(cached=EMPTY, live=WITH_DENY)
    admission = Admission(settings(), inventory)
    seen: list[bool] = []
    admission.on_live_read = seen.append
    admission.evaluate("validate", make_request(**LB_CREATE))
    inventory.live = dataclasses.replace(EMPTY, source="live")
    admission.evaluate("validate", make_request(obj=service("other", type="LoadBalancer")))
    admission.evaluate("validate", make_request(obj=service("api")))  # no live read
    assert seen == [True, False]


def test_live_read_confirms_the_denial():
    inventory = FakeInventory(cached=EMPTY, live=dataclasses.replace(EMPTY, source="live"))
    admission, _, evaluation = evaluate(inventory, **LB_CREATE)
    assert not evaluation.decision.allowed
    assert evaluation.decision.rule == LOADBALANCER_RULE
    assert first_line(evaluation.decision.message).startswith("Service shop/web of type LoadBalancer was refused")
    assert evaluation.state == "live"
    assert admission.counters.confirmed == 1
    assert admission.counters.overturned == 0
    assert inventory.observed == []


@pytest.mark.parametrize("live, decided", [
    pytest.param(dataclasses.replace(EMPTY, source="live"), 1, id="same-state"),
    pytest.param(dataclasses.replace(EMPTY.with_load_balancer("db", True), source="live"), 2,
                 id="state-changed"),
])
def test_a_live_view_with_the_cached_state_is_not_decided_again(monkeypatch, live, decided):
    calls: list[NamespaceView] = []
    real = decide.validate

    def counting(req, view, config):
        calls.append(view)
        return real(req, view, config)

    monkeypatch.setattr(decide, "validate", counting)
    _, _, evaluation = evaluate(FakeInventory(cached=EMPTY, live=live), **LB_CREATE)
    assert len(calls) == decided
    assert not evaluation.decision.allowed and evaluation.state == "live"


def first_line(text: str) -> str:
    return text.splitlines()[0]


def test_guard_denial_is_confirmed_live_too():
    cached = EMPTY.with_policy(DEFAULT_DENY).with_load_balancer("web", True)
    live = dataclasses.replace(cached.with_load_balancer("web", False), source="live")
    inventory = FakeInventory(cached=cached, live=live)
    admission, _, evaluation = evaluate(inventory, kind="NetworkPolicy", operation="DELETE", old=DEFAULT_DENY)
    assert evaluation.decision.allowed
    assert evaluation.decision.rule == GUARD_RULE
    assert admission.counters.overturned == 1


@pytest.mark.parametrize("cached, review, config", [
    pytest.param(CACHED_DENY, dict(operation="UPDATE", obj=service("web", type="LoadBalancer")),
                 settings(), id="re-applied-loadbalancer-allowed-from-cache"),
    pytest.param(EMPTY, dict(obj=service("api")), settings(required=("owner",)), id="label-denial"),
    pytest.param(EMPTY, LB_CREATE, settings(actions={LOADBALANCER_RULE: "warn"}), id="warned-violation"),
    pytest.param(EMPTY, LB_CREATE, settings(actions={LOADBALANCER_RULE: "audit"}), id="audited-violation"),
])
def test_no_live_read_when_the_answer_does_not_rest_on_a_cached_denial(cached, review, config):
    inventory = FakeInventory(cached=cached, live=WITH_DENY)
    admission, _, evaluation = evaluate(inventory, config, **review)
    assert inventory.confirmed == []
    assert (admission.counters.overturned, admission.counters.confirmed) == (0, 0)
    assert evaluation.state == "cache"


def test_label_denial_is_answered_without_confirming():
    inventory = FakeInventory(cached=EMPTY, live=WITH_DENY)
    _, _, evaluation = evaluate(inventory, settings(required=("owner",)), obj=service("api"))
    assert not evaluation.decision.allowed
    assert evaluation.decision.rule == LABELS_RULE


# --------------------------------------------------------------------------- failureMode


@pytest.mark.parametrize("inventory", [
    pytest.param(lambda: FakeInventory(confirm_error="connection refused"), id="confirm-raises"),
    pytest.param(lambda: FakeInventory(is_ready=False), id="not-ready"),
    pytest.param(lambda: FakeInventory(view_error="watch broken"), id="view-raises"),
])
def test_failure_mode_closed_denies_saying_state_could_not_be_confirmed(inventory):
    inventory = inventory()
    admission, _, evaluation = evaluate(inventory, CLOSED, **LB_CREATE)
    decision = evaluation.decision
    assert not decision.allowed
    assert first_line(decision.message) == ("Service shop/web was refused: netguard could not confirm the "
                                            "NetworkPolicies of namespace shop, and it fails closed.")
    assert "failureMode: closed" in decision.message
    assert decision.rule == LOADBALANCER_RULE
    assert evaluation.state == "unknown"
    assert inventory.observed == []
    assert (admission.counters.overturned, admission.counters.confirmed) == (0, 0)


def test_closed_message_carries_the_reason():
    _, _, evaluation = evaluate(FakeInventory(confirm_error="connection refused"), CLOSED, **LB_CREATE)
    assert "\nWhy: connection refused. " in evaluation.decision.message


def test_not_ready_is_not_even_asked_for_a_view():
    inventory = FakeInventory(is_ready=False)
    evaluate(inventory, CLOSED, **LB_CREATE)
    assert inventory.viewed == []
    assert inventory.confirmed == []


@pytest.mark.parametrize("inventory", [
    pytest.param(lambda: FakeInventory(confirm_error="connection refused"), id="confirm-raises"),
    pytest.param(lambda: FakeInventory(is_ready=False), id="not-ready"),
    pytest.param(lambda: FakeInventory(view_error="watch broken"), id="view-raises"),
])
def test_failure_mode_open_allows_with_a_warning(inventory):
    inventory = inventory()
    _, _, evaluation = evaluate(inventory, OPEN, **LB_CREATE)
    decision = evaluation.decision
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert decision.warnings == (messages.state_unknown_warning("Service", "shop", "web"),)
    assert decision.warnings[0].startswith("Service shop/web: allowed unchecked: netguard could not confirm")
    assert len(decision.warnings[0]) <= 120
    assert evaluation.state == "unknown"


def test_open_settings_from_yaml():
    assert OPEN.failure_mode is FailureMode.OPEN


@pytest.mark.parametrize("config", [pytest.param(CLOSED, id="closed"), pytest.param(OPEN, id="open")])
def test_not_ready_still_decides_a_request_that_needs_no_state(config):
    inventory = FakeInventory(is_ready=False)
    _, _, evaluation = evaluate(inventory, config, obj=service("api", type="ClusterIP"))
    assert evaluation.decision.allowed
    assert evaluation.decision.warnings == ()
    assert evaluation.state == "unknown"


def test_not_ready_still_applies_rules_that_need_no_state():
    # Decided on the request itself: a ClusterIP Service missing a required label is still denied.
    inventory = FakeInventory(is_ready=False)
    config = dataclasses.replace(settings(required=("owner",)), failure_mode=FailureMode.OPEN)
    _, _, evaluation = evaluate(inventory, config, obj=service("api", type="ClusterIP"))
    assert not evaluation.decision.allowed
    assert evaluation.decision.rule == LABELS_RULE


@pytest.mark.parametrize("config", [pytest.param(CLOSED, id="closed"), pytest.param(OPEN, id="open")])
def test_not_ready_still_mutates(config):
    inventory = FakeInventory(is_ready=False)
    _, _, evaluation = evaluate(inventory, config, stage="mutate", **LB_CREATE)
    assert evaluation.decision.allowed
    assert dict(evaluation.decision.patched_labels) == {"netguard/exposure": "public"}


@pytest.mark.parametrize("config", [pytest.param(CLOSED, id="closed"), pytest.param(OPEN, id="open")])
def test_exempt_namespace_needs_no_state(config):
    inventory = FakeInventory(is_ready=False)
    _, _, evaluation = evaluate(inventory, config, namespace="kube-system",
                                obj=service("web", type="LoadBalancer", namespace="kube-system"))
    assert evaluation.decision.allowed
    assert evaluation.decision.warnings == ()


@pytest.mark.parametrize("config", [pytest.param(CLOSED, id="closed"), pytest.param(OPEN, id="open")])
def test_deleting_a_default_deny_needs_state(config):
    inventory = FakeInventory(is_ready=False)
    _, _, evaluation = evaluate(inventory, config, kind="NetworkPolicy", operation="DELETE", old=DEFAULT_DENY)
    assert evaluation.decision.allowed is (config is OPEN)
    assert evaluation.decision.rule == GUARD_RULE


# A rule that, whatever the cluster state, would only warn or audit must not be turned into a
# denial by failureMode closed: the outage would block what netguard never blocks.
NEVER_DENIED = [
    pytest.param(settings(actions={LOADBALANCER_RULE: "warn"}), LB_CREATE, id="lb-action-warn"),
    pytest.param(settings(actions={LOADBALANCER_RULE: "audit"}), LB_CREATE, id="lb-action-audit"),
    pytest.param(settings(dry_run="warn"), dict(LB_CREATE, dry_run=True), id="lb-dry-run-warn"),
    pytest.param(settings(), dict(operation="UPDATE", old=service("web", type="LoadBalancer"),
                                  obj=service("web", type="LoadBalancer", labels={"v": "2"})),
                 id="lb-update-of-existing-lb"),
    pytest.param(settings(actions={GUARD_RULE: "audit"}),
                 dict(kind="NetworkPolicy", operation="DELETE", old=DEFAULT_DENY), id="guard-action-audit"),
]


@pytest.mark.parametrize("config, review", NEVER_DENIED)
def test_same_requests_are_never_denied_when_state_is_known(config, review):
    # Control for the xfail below: with any namespace state these are allowed.
    for cached in (EMPTY, EMPTY.with_load_balancer("lb", True), CACHED_DENY):
        _, _, evaluation = evaluate(FakeInventory(cached=cached), config, **review)
        assert evaluation.decision.allowed


@pytest.mark.parametrize("config, review", NEVER_DENIED)
def test_failure_mode_closed_does_not_deny_what_the_rule_never_denies(config, review):
    config = dataclasses.replace(config, failure_mode=FailureMode.CLOSED)
    _, _, evaluation = evaluate(FakeInventory(is_ready=False), config, **review)
    assert evaluation.decision.allowed


# --------------------------------------------------------------------------- observe


@pytest.mark.parametrize("stage, inventory, review, observed", [
    pytest.param("validate", lambda: FakeInventory(cached=CACHED_DENY), LB_CREATE, True, id="allowed"),
    pytest.param("validate", lambda: FakeInventory(), dict(obj=service("api")), True, id="allowed-clusterip"),
    pytest.param("validate", lambda: FakeInventory(), dict(operation="DELETE", old=service("api")), True,
                 id="allowed-delete"),
    pytest.param("validate", lambda: FakeInventory(cached=EMPTY, live=WITH_DENY), LB_CREATE, True,
                 id="allowed-after-live-read"),
    pytest.param("validate", lambda: FakeInventory(), LB_CREATE, False, id="denied"),
    pytest.param("validate", lambda: FakeInventory(cached=CACHED_DENY), dict(LB_CREATE, dry_run=True), False,
                 id="allowed-dry-run"),
    pytest.param("validate", lambda: FakeInventory(), dict(obj=service("api"), dry_run=True), False,
                 id="allowed-dry-run-clusterip"),
    pytest.param("mutate", lambda: FakeInventory(cached=CACHED_DENY), LB_CREATE, False, id="mutate-stage"),
    pytest.param("mutate", lambda: FakeInventory(), dict(obj=service("api")), False, id="mutate-patched"),
])
def test_observe_only_allowed_real_validate_requests(stage, inventory, review, observed):
    inventory = inventory()
    _, req, evaluation = evaluate(inventory, stage=stage, **review)
    assert inventory.observed == ([req] if observed else [])
    assert evaluation.decision.allowed is (observed or stage == "mutate" or req.dry_run)


def test_admission_does_not_start_or_stop_the_inventory():
    inventory = FakeInventory()
    evaluate(inventory, **LB_CREATE)
    assert (inventory.started, inventory.stopped) == (0, 0)


def test_counters_add_up_over_many_requests():
    inventory = FakeInventory(cached=EMPTY, live=WITH_DENY)
    admission = Admission(settings(), inventory)
    for i in range(3):
        admission.evaluate("validate", make_request(obj=service(f"web-{i}", type="LoadBalancer")))
    inventory.live = dataclasses.replace(EMPTY, source="live")
    admission.evaluate("validate", make_request(obj=service("web-x", type="LoadBalancer")))
    assert (admission.counters.overturned, admission.counters.confirmed) == (3, 1)


# --------------------------------------------------------------------------- guard confirmed live


def test_guard_allow_on_a_stale_cache_is_confirmed_live_and_overturned():
    """The cache has not seen the LoadBalancer created a moment ago: deleting the last
    default-deny would be allowed on it. The live read sees the Service and denies."""
    live = dataclasses.replace(WITH_DENY.with_load_balancer("fresh-lb", True), source="live")
    inventory = FakeInventory(cached=CACHED_DENY, live=live)
    admission, _, evaluation = evaluate(inventory, kind="NetworkPolicy", operation="DELETE", old=DEFAULT_DENY)
    assert inventory.confirmed == ["shop"]
    assert evaluation.decision.allowed is False and "fresh-lb" in evaluation.decision.message
    assert evaluation.state == "live"
    assert admission.counters.overturned == 1


def test_guard_allow_confirmed_live_stays_allowed():
    inventory = FakeInventory(cached=CACHED_DENY)
    admission, _, evaluation = evaluate(inventory, kind="NetworkPolicy", operation="DELETE", old=DEFAULT_DENY)
    assert inventory.confirmed == ["shop"] and evaluation.decision.allowed
    assert admission.counters.confirmed == 1 and admission.counters.overturned == 0


def test_loadbalancer_allow_on_a_cached_default_deny_is_read_live():
    """Read-your-writes for allows (docs/design.md, Live confirmation): the cache still holds a
    default-deny that was deleted a moment ago; the live read sees it gone and the CREATE is
    denied. Before, an allow was never confirmed and this LoadBalancer was admitted."""
    inventory = FakeInventory(cached=CACHED_DENY, live=dataclasses.replace(EMPTY, source="live"))
    admission, _, evaluation = evaluate(inventory, **LB_CREATE)
    assert inventory.confirmed == ["shop"]
    assert not evaluation.decision.allowed and evaluation.decision.rule == LOADBALANCER_RULE
    assert evaluation.state == "live"
    assert (admission.counters.overturned, admission.counters.confirmed) == (1, 0)


@pytest.mark.parametrize("review", [
    pytest.param(LB_CREATE, id="create"),
    pytest.param(dict(operation="UPDATE", obj=service("web", type="LoadBalancer"), old=service("web")),
                 id="update-to-loadbalancer"),
])
def test_loadbalancer_allow_confirmed_live_stays_allowed(review):
    inventory = FakeInventory(cached=CACHED_DENY, live=WITH_DENY)
    admission, _, evaluation = evaluate(inventory, **review)
    assert inventory.confirmed == ["shop"] and evaluation.decision.allowed
    assert (admission.counters.overturned, admission.counters.confirmed) == (0, 1)


def test_a_reapplied_loadbalancer_is_not_read_live():
    # Already a LoadBalancer: nothing the rule guards changes, so no live read is paid for.
    inventory = FakeInventory(cached=CACHED_DENY, live=EMPTY)
    _, _, evaluation = evaluate(inventory, operation="UPDATE", obj=service("web", type="LoadBalancer"))
    assert evaluation.decision.allowed and inventory.confirmed == []


def test_labelling_a_cluster_scoped_policy_builds_no_view_of_every_namespace():
    """view("") is every namespace with LoadBalancers, built per call: the guard needs it, the
    label of a GlobalNetworkPolicy does not."""
    gnp = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "deny"},
           "spec": {"selector": "all()", "types": ["Ingress"]}}
    inventory = FakeInventory()
    _, _, evaluation = evaluate(inventory, stage="mutate", kind="GlobalNetworkPolicy", group="projectcalico.org",
                                namespace="", obj=gnp)
    decision = evaluation.decision
    assert dict(decision.patched_labels) == {"netguard/policy-type": "default-deny-ingress"}
    assert inventory.viewed == [] and inventory.confirmed == []


def test_a_cluster_scoped_denial_is_not_confirmed_by_a_namespace_read():
    """The guard refuses deleting the GlobalNetworkPolicy namespace shop's LoadBalancer rests
    on; a live read of namespace "" would list namespaces//networkpolicies and lose the
    dependents (it overturned the refusal)."""
    from webhook.core import clusterpolicy

    old = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "deny"},
           "spec": {"selector": "all()", "types": ["Ingress"]}}
    dependent = NamespaceView("shop", known=True, load_balancers=frozenset({"web"}),
                              cluster=clusterpolicy.summarize(old))
    inventory = FakeInventory(cached=NamespaceView("", dependents=(dependent,)))
    _, _, evaluation = evaluate(inventory, kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="",
                                operation="DELETE", obj=None, old=old)
    assert not evaluation.decision.allowed and evaluation.decision.rule == GUARD_RULE
    assert inventory.confirmed == [] and inventory.viewed == [""]
