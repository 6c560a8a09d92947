"""Values worked out once and kept: a view's fingerprint, the fix settings of a rule context,
the offline inventory's view of a namespace its files do not name. Each is kept for speed
only, so each must read exactly as if made again, and never outlive what it was made from."""

from __future__ import annotations

import dataclasses

from tests.reviews import make_request, policy, service, settings
from webhook.core import decide
from webhook.core.rules import loadbalancer
from webhook.core.view import NamespaceView
from webhook.inventory.offline import OfflineInventory


def _made_again(view: NamespaceView) -> tuple:
    return (frozenset(view.labels.items()), frozenset(view.policies.items()), view.load_balancers,
            view.cluster, view.known, view.complete, tuple(_made_again(d) for d in view.dependents))


def test_a_kept_fingerprint_is_the_fingerprint_made_again():
    view = NamespaceView(name="shop", known=True).with_policy(policy())
    assert view.fingerprint == _made_again(view)
    assert view.fingerprint is view.fingerprint  # made once


def test_a_changed_view_does_not_inherit_the_fingerprint_of_the_one_it_came_from():
    view = NamespaceView(name="shop", known=True)
    before = view.fingerprint
    changed = [view.with_policy(policy()), view.with_load_balancer("edge", True), view.with_policy(policy("x"))]
    for other in changed:
        assert other.fingerprint != before and other.fingerprint == _made_again(other)
    assert view.fingerprint == before


def test_each_rule_context_has_its_own_fix_settings():
    plain = settings()
    ranges = plain.rules[loadbalancer.NAME].replace(source_ranges=loadbalancer.SourceRangesMode.WARN)
    warned = dataclasses.replace(plain, rules={**plain.rules, loadbalancer.NAME: ranges})
    first = loadbalancer._fix_settings(plain.context(loadbalancer.NAME))
    assert loadbalancer._fix_settings(plain.context(loadbalancer.NAME)) is first  # kept
    other = loadbalancer._fix_settings(warned.context(loadbalancer.NAME))
    assert first.warn_open_ranges is False and other.warn_open_ranges is True


def test_a_namespace_the_files_do_not_name_reads_empty_until_a_request_changes_it():
    inventory = OfflineInventory([])
    first = inventory.view("fresh")
    assert first is inventory.view("fresh")  # the same empty view: its fingerprint made once
    assert first.policies == {} and not first.load_balancers and not first.known
    balancer = make_request(namespace="fresh", obj=service("edge", type="LoadBalancer", namespace="fresh"))
    assert not decide.validate(balancer, first, settings()).allowed
    inventory.observe(make_request(kind="NetworkPolicy", group="networking.k8s.io", namespace="fresh",
                                   obj=policy(namespace="fresh")))
    now = inventory.view("fresh")
    assert list(now.policies) == ["default-deny"]
    assert decide.validate(balancer, now, settings()).allowed


def test_a_kept_cache_starts_over_at_its_limit_and_hands_back_the_value():
    from webhook.core.kept import keep

    cache: dict[int, str] = {}
    assert [keep(cache, n, f"v{n}", 3) for n in range(3)] == ["v0", "v1", "v2"]
    assert cache == {0: "v0", 1: "v1", 2: "v2"}
    assert keep(cache, 3, "v3", 3) == "v3"
    assert cache == {3: "v3"}  # full: started over, never past its limit
