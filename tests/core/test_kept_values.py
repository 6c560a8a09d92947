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


def test_a_kept_loadbalancer_decision_answers_only_a_request_it_was_made_for():
    """The LoadBalancer rule keeps its decisions (a GitOps controller re-sends the same Service);
    each flag and object part that changes the answer must give its own."""
    from webhook.core.messages import FLUX_ADVICE
    from webhook.core.request import FLUX_FIELD_MANAGER

    loadbalancer._DECIDED.clear()
    view = NamespaceView(name="open", known=True)
    plain, flux_warns = settings(), settings(dry_run="warn")
    svc = service("edge", type="LoadBalancer", namespace="open")

    def decided(config=plain, obj=svc, **request):
        return decide.validate(make_request(namespace="open", obj=obj, **request), view, config)

    first = decided()
    assert not first.allowed and "netguard-allow-lb-edge" in first.message
    assert decided() is first  # asked again: the kept decision
    assert FLUX_ADVICE not in first.message
    assert FLUX_ADVICE in decided(field_manager=FLUX_FIELD_MANAGER).message
    assert decided(flux_warns, dry_run=True).allowed  # dryRun: warn only warns on a dry run
    assert not decided(flux_warns).allowed and not decided(dry_run=True).allowed
    already = decided(operation="UPDATE")  # already a LoadBalancer: warned, not refused
    assert already.allowed and already.warnings
    # The offered policy takes the required labels from the Service's own.
    teams = settings(required=("team",))
    relabelled = service("edge", type="LoadBalancer", namespace="open", labels={"team": "web"})
    assert "team: web" in decided(teams, obj=relabelled).message
    assert "team: web" not in decided(teams).message
    other_port = service("edge", type="LoadBalancer", namespace="open", ports=[{"port": 443, "targetPort": 8443}])
    assert "8443" in decided(obj=other_port).message and "8443" not in first.message
    guarded = view.with_policy(policy(namespace="open"))
    assert decide.validate(make_request(namespace="open", obj=svc), guarded, plain).allowed


def test_a_kept_label_decision_answers_only_an_object_and_namespace_it_was_made_for():
    """Label decisions are kept too (every apply is labelled, and a sync applies the same objects
    again); what the labels read (the object's labels, annotations and spec, the copied
    namespace labels, the settings) each gives its own."""
    from webhook.core import cloud
    from webhook.core.decide import _LABELLED

    _LABELLED.clear()
    plain, copying = settings(), settings(from_namespace=("team",))
    view = NamespaceView(name="shop", labels={"team": "payments"}, known=True)

    from webhook.core import patches

    def labels_set(obj, config=plain, on=view, kind="Service", group=""):
        """The labels the decision's patch sets or changes."""
        decision = decide.mutate(make_request(kind=kind, group=group, obj=obj), on, config)
        before = (obj.get("metadata") or {}).get("labels") or {}
        after = patches.apply_patch(obj, decision.patch)["metadata"].get("labels") or {}
        return {k: v for k, v in after.items() if before.get(k) != v}

    public = service("edge", type="LoadBalancer")
    assert labels_set(public) == {"netguard/exposure": "public"}
    first = decide.mutate(make_request(obj=public), view, plain)
    assert decide.mutate(make_request(obj=public), view, plain) is first  # the kept decision
    internal = service("edge", type="LoadBalancer", annotations={cloud.AWS_INTERNAL: "true"})
    assert labels_set(internal) == {"netguard/exposure": "private"}
    done = service("edge", type="LoadBalancer", labels={"netguard/exposure": "public"})
    assert labels_set(done) == {}
    assert labels_set(public, copying) == {"team": "payments", "netguard/exposure": "public"}
    elsewhere = NamespaceView(name="shop", labels={"team": "search"}, known=True)
    assert labels_set(public, copying, elsewhere) == {"team": "search", "netguard/exposure": "public"}
    prefixed = settings(prefix="guard.example.com")
    assert labels_set(public, prefixed) == {"guard.example.com/exposure": "public"}
    isolating = policy("web-only", {"podSelector": {"matchLabels": {"app": "web"}}})
    assert labels_set(isolating, kind="NetworkPolicy", group="networking.k8s.io") == \
        {"netguard/policy-type": "isolate-ingress"}
    no_labels = {**public, "metadata": {"name": "edge", "namespace": "shop"}}
    whole = decide.mutate(make_request(obj=no_labels), view, plain).patch
    assert [op["path"] for op in whole] == ["/metadata/labels"]


def test_a_cache_key_is_exact_json_or_none():
    import datetime
    from webhook.core.kept import exact_json

    assert exact_json({"a": [1, "x"], "b": None}, 100) == b'{"a":[1,"x"],"b":null}'
    assert exact_json(("a", "b"), 100) == exact_json(["a", "b"], 100)  # read alike where keys are used
    for unkeyable in ({"d": datetime.date(2024, 1, 1)}, {1: "a"}, {"s": "\ud800"}, {"big": 1 << 70}):
        assert exact_json(unkeyable, 100) is None
    assert exact_json("x" * 98, 100) is not None and exact_json("x" * 99, 100) is None  # 100 and 101 bytes
