"""Admission and the scans agree, rule by rule, on the same cluster state: what a rule's scan
reports as a violation is what its admission function refuses (or warns about) when the same
object is created again, and a state it finds clean is one admission accepts as it stands."""

from __future__ import annotations

import pytest

from tests.reviews import make_request, namespace, policy, service, settings, view_of
from webhook.core import registry
from webhook.core.rules import guard, loadbalancer, required_labels
from webhook.core.violations import scan_objects, scan_views
from webhook.inventory.views import build_views_of

DENY = {"podSelector": {}, "policyTypes": ["Ingress"]}
ALLOW_ALL = {"podSelector": {}, "ingress": [{}]}
WEB_FROM_OUTSIDE = {"podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}

STATES = {
    "lb-without-deny": [namespace("a"), service("web", type="LoadBalancer", namespace="a")],
    "lb-behind-deny": [namespace("b"), policy("deny", DENY, namespace="b"),
                       service("web", type="LoadBalancer", namespace="b"),
                       policy("web", WEB_FROM_OUTSIDE, namespace="b")],
    "deny-cancelled": [namespace("c"), policy("deny", DENY, namespace="c"),
                       policy("open", ALLOW_ALL, namespace="c"),
                       service("web", type="LoadBalancer", namespace="c")],
    "two-lbs-one-namespace": [service("x", type="LoadBalancer", namespace="d"),
                              service("y", type="LoadBalancer", namespace="d"),
                              service("z", type="ClusterIP", namespace="d")],
    "unlabelled": [namespace("e"), policy("deny", DENY, namespace="e", labels={"team": "t"}),
                   service("web", type="ClusterIP", namespace="e")],
    "exempt": [service("web", type="LoadBalancer", namespace="kube-system")],
}
CONFIG = settings(required=("team",))


def _objects(state, kind):
    return [o for o in state if o["kind"] == kind]


def _create(obj):
    ns = obj["metadata"]["namespace"]
    return make_request(kind=obj["kind"], namespace=ns, name=obj["metadata"]["name"], obj=obj)


def _admitted(rule, objects, kinds):
    """For each object of `kinds` in the state, rule `rule`'s own admission of creating it again."""
    for obj in (o for o in objects if o["kind"] in kinds):
        req = _create(obj)
        if req.namespace in CONFIG.exempt_namespaces:
            continue
        yield req, rule.admit(req, view_of(objects, req.namespace), CONFIG.context(rule.name))


@pytest.mark.parametrize("state", sorted(STATES))
def test_loadbalancer_rule(state):
    objects = STATES[state]
    found = {(v.namespace, v.name) for v in scan_views(build_views_of(objects).values(), CONFIG)
             if v.rule == loadbalancer.NAME}
    refused = {(req.namespace, req.name) for req, d in _admitted(loadbalancer.RULE, objects, {"Service"})
               if d is not None and not d.allowed}
    assert found == refused


@pytest.mark.parametrize("state", sorted(STATES))
def test_cancelled_default_deny_finding(state):
    objects = STATES[state]
    found = {v.namespace for v in scan_views(build_views_of(objects).values(), CONFIG)
             if v.rule == loadbalancer.CANCELLED}
    warned = {req.namespace for req, d in _admitted(loadbalancer.RULE, objects, {"Service"})
              if d is not None and any("cancelled" in w for w in d.warnings)}
    assert found == warned


@pytest.mark.parametrize("state", sorted(STATES))
def test_required_labels_rule(state):
    objects = STATES[state]
    found = {(v.kind, v.namespace, v.name) for kind in ("Service", "NetworkPolicy")
             for v in scan_objects(kind, _objects(objects, kind), CONFIG) if v.rule == required_labels.NAME}
    refused = {(req.kind, req.namespace, req.name)
               for req, d in _admitted(required_labels.RULE, objects, {"Service", "NetworkPolicy"})
               if d is not None and not d.allowed}
    assert found == refused


def test_the_states_hold_violations_of_every_kind():
    # Control: the parity above is not between two empty sets.
    everything = [o for state in STATES.values() for o in state]
    found = {v.rule for v in scan_views(build_views_of(everything).values(), CONFIG)}
    found |= {v.rule for kind in ("Service", "NetworkPolicy") for v in scan_objects(kind, _objects(everything, kind), CONFIG)}
    assert found == {loadbalancer.NAME, loadbalancer.CANCELLED, required_labels.NAME}


def test_every_scanning_rule_is_covered_here_and_the_guard_scans_nothing():
    covered = {loadbalancer.NAME, loadbalancer.CANCELLED, required_labels.NAME}
    assert {f for rule in registry.RULES for f in rule.findings} == covered
    # The guard is about changes only: no state is a violation of it.
    assert guard.RULE.scan_view is None and guard.RULE.scan_object is None and not guard.RULE.findings


def test_two_truly_concurrent_writes_are_surfaced_by_the_scan():
    """What no admission webhook can close (docs/design.md, Live confirmation): the delete of the
    last default-deny and a LoadBalancer CREATE, each decided against the state before the other
    (even a live read sees the other's absence). Both are admitted; the scan reports the result."""
    before = [namespace("race"), policy("deny", DENY, namespace="race")]
    view = view_of(before, "race")
    delete = make_request(kind="NetworkPolicy", operation="DELETE", namespace="race", name="deny",
                          obj=None, old=policy("deny", DENY, namespace="race"))
    create = _create(service("web", type="LoadBalancer", namespace="race"))
    assert guard.RULE.admit(delete, view, CONFIG.context(guard.NAME)).allowed  # no LoadBalancer yet
    assert loadbalancer.RULE.admit(create, view, CONFIG.context(loadbalancer.NAME)).allowed  # deny still there
    after = [namespace("race"), service("web", type="LoadBalancer", namespace="race")]
    found = scan_views(build_views_of(after).values(), CONFIG)
    assert [(v.rule, v.namespace, v.name) for v in found] == [(loadbalancer.NAME, "race", "web")]
