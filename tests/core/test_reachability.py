"""The reachability and source-range warnings on an admitted LoadBalancer."""

from __future__ import annotations

import weakref

import pytest

from tests.reviews import make_request, policy, service, settings, view_of
from webhook.core import decide, netpol, reachability
from webhook.core.outcome import MAX_WARNING_CHARS
from webhook.core.config import parse_settings

DENY = policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def warnings_for(svc, *policies, config=None):
    view = view_of([NS, DENY, *policies], "shop")
    decision = decide.validate(make_request(obj=svc), view, config or settings())
    assert decision.allowed
    return decision.warnings


def allow(name, selector, rule):
    return policy(name, {"podSelector": selector, "ingress": [rule]})


WEB = {"matchLabels": {"app": "web"}}
FROM_OUTSIDE = {"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}


@pytest.mark.parametrize("policies, dropped", [
    pytest.param([], True, id="only-default-deny"),
    pytest.param([allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8080}]})], False, id="ipblock-on-port"),
    pytest.param([allow("a", WEB, {})], False, id="empty-rule-admits-all"),
    pytest.param([allow("a", WEB, {"ports": [{"port": 8080, "protocol": "TCP"}]})], False, id="no-from-any-source"),
    pytest.param([allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 9090}]})], True, id="other-port"),
    pytest.param([allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8000, "endPort": 8100}]})], False,
                 id="port-range"),
    pytest.param([allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8080, "protocol": "UDP"}]})], True,
                 id="other-protocol"),
    pytest.param([allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": "http"}]})], False,
                 id="named-port-unknown-counts-as-open"),
    pytest.param([allow("a", WEB, {"from": [{"podSelector": {}}]})], True, id="pod-peers-are-not-outside"),
    pytest.param([allow("a", {"matchLabels": {"app": "db"}}, FROM_OUTSIDE)], True, id="selects-other-pods"),
    pytest.param([allow("a", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]},
                        FROM_OUTSIDE)], False, id="expression-in"),
    pytest.param([allow("a", {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
                        FROM_OUTSIDE)], True, id="expression-notin"),
    pytest.param([policy("eg", {"podSelector": WEB, "policyTypes": ["Egress"],
                                "egress": [{}]})], True, id="egress-only-policy"),
])
def test_traffic_dropped_warning(policies, dropped):
    warnings = warnings_for(service("web", type="LoadBalancer"), *policies)
    hit = [w for w in warnings if "no NetworkPolicy admits outside traffic" in w]
    assert bool(hit) is dropped
    if dropped:
        assert hit[0] == ("Service shop/web: no NetworkPolicy admits outside traffic to its pods "
                          "on 8080/TCP (netguard fix writes one)")
        assert len(hit[0]) < 120


def test_the_warning_points_to_netguard_fix_where_that_fits():
    # netguard fix writes the policy that opens the ports; a name too long for the pointer keeps
    # the warning's own words, whole where they fit.
    longer = reachability.unreachable_warning("payments-prod", "checkout", ["8080/TCP"])
    assert longer == ("Service payments-prod/checkout: no NetworkPolicy admits outside traffic to its "
                      "pods on 8080/TCP; it will be dropped")
    assert len(longer) <= MAX_WARNING_CHARS
    pointed = reachability.unreachable_warning("shop", "checkout", ["8080/TCP"])
    assert pointed.endswith(" (netguard fix writes one)") and len(pointed) <= MAX_WARNING_CHARS


def test_only_the_closed_ports_are_named():
    svc = service("web", type="LoadBalancer", ports=[
        {"name": "a", "port": 80, "targetPort": 8080}, {"name": "b", "port": 443, "targetPort": 8443},
        {"name": "c", "port": 53, "protocol": "UDP"}])
    (warning,) = warnings_for(svc, allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8080}]}))
    assert "on 8443/TCP, 53/UDP " in warning


def test_service_without_selector_is_not_judged():
    assert warnings_for(service("web", type="LoadBalancer", selector=None)) == ()


@pytest.mark.parametrize("ranges, warned", [
    pytest.param(None, True, id="missing"),
    pytest.param(["0.0.0.0/0"], True, id="everything"),
    pytest.param(["203.0.113.0/24"], False, id="restricted"),
])
def test_source_ranges_warning_when_configured(ranges, warned):
    extra = {} if ranges is None else {"loadBalancerSourceRanges": ranges}
    svc = service("web", type="LoadBalancer", **extra)
    opened = allow("a", WEB, FROM_OUTSIDE)
    config = parse_settings("rules: {loadbalancer-requires-default-deny: {sourceRanges: warn}}")
    assert any("open to every address" in w for w in warnings_for(svc, opened, config=config)) is warned
    # Not asked for: never warned.
    assert not any("open to every address" in w for w in warnings_for(svc, opened))


def test_selector_matching_against_service_labels():
    selector = netpol.frozen_selector({"matchLabels": {"app": "web"},
                                       "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})
    assert netpol.selector_matches(selector, {"app": "web"})
    assert not netpol.selector_matches(selector, {"app": "web", "tier": "front"})
    assert not netpol.selector_matches(selector, {"app": "api"})


def test_each_view_gives_its_own_answer_and_a_changed_view_a_new_one():
    from webhook.core.reachability import unreachable_ports
    svc = service("web", type="LoadBalancer")  # selector app=web, target port 8080
    view = view_of([NS, DENY], "shop")
    assert unreachable_ports(svc, view) == ["8080/TCP"]
    assert unreachable_ports(svc, view) == ["8080/TCP"]  # asked again, same answer
    # Same selector, other port: another answer.
    other = service("web", type="LoadBalancer", ports=[{"port": 80, "targetPort": 9090}])
    assert unreachable_ports(other, view) == ["9090/TCP"]
    opened = view.with_policy(allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8080}]}))
    assert unreachable_ports(svc, opened) == []
    assert unreachable_ports(svc, view) == ["8080/TCP"]  # the old view keeps its own answer


def test_a_selector_value_that_cannot_be_a_key_is_still_judged():
    from webhook.core.reachability import unreachable_ports
    svc = service("web", type="LoadBalancer", selector={"app": ["web"]})  # a list: unhashable
    view = view_of([NS, DENY], "shop")
    assert unreachable_ports(svc, view) == ["8080/TCP"]



def test_remembered_answers_stay_bounded_and_belong_to_their_view():
    from webhook.core import reachability
    view = view_of([NS, DENY], "shop")
    for i in range(reachability.ANSWERS_KEPT * 3):
        reachability.unreachable_ports(service("web", type="LoadBalancer", selector={"app": f"web-{i}"}), view)
    assert 0 < len(reachability._ANSWERS) <= reachability.ANSWERS_KEPT
    # A new view with the same id as a dead one (ids are reused) never gets the dead one's answer.
    svc = service("web", type="LoadBalancer")
    assert reachability.unreachable_ports(svc, view) == ["8080/TCP"]
    key = next(k for k in reachability._ANSWERS if k[1] == (("app", "web"),))
    opened = view.with_policy(allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8080}]}))
    reachability._ANSWERS[(id(opened), *key[1:])] = (weakref.ref(view), ("8080/TCP",))  # as if id(opened) were reused
    assert reachability.unreachable_ports(svc, opened) == []


def _lb_warnings(svc, view, config):
    decision = decide.validate(make_request(obj=svc), view, config)
    assert decision.allowed
    return decision.warnings


def test_kept_allows_belong_to_their_view_context_name_and_spec():
    from webhook.core.rules import loadbalancer
    plain = settings()
    view = view_of([NS, DENY], "shop")
    svc = service("web", type="LoadBalancer")
    dropped = _lb_warnings(svc, view, plain)
    assert len(dropped) == 1 and "8080/TCP" in dropped[0]
    assert _lb_warnings(svc, view, plain) == dropped  # asked again: the same answer
    assert any(entry[0]() is view for entry in loadbalancer._DECIDED.values())  # from the kept one
    # Each input that changes the answer gives its own: the spec, the name, the view, the context.
    other_port = service("web", type="LoadBalancer", ports=[{"port": 80, "targetPort": 9090}])
    assert "9090/TCP" in _lb_warnings(other_port, view, plain)[0]
    assert "Service shop/api:" in _lb_warnings(service("api", type="LoadBalancer", selector={"app": "web"}),
                                               view, plain)[0]
    opened = view.with_policy(allow("a", WEB, {**FROM_OUTSIDE, "ports": [{"port": 8080}]}))
    assert _lb_warnings(svc, opened, plain) == ()
    ranges = parse_settings("rules:\n  loadbalancer-requires-default-deny:\n    sourceRanges: warn\n")
    assert len(_lb_warnings(svc, view, ranges)) == 2  # the open-to-every-address warning too
    # A Service that already was a LoadBalancer is not confirmed live; one that becomes one is.
    created = decide.validate(make_request(obj=svc), view, plain)
    kept = decide.validate(make_request(operation="UPDATE", obj=svc), view, plain)
    becoming = decide.validate(make_request(operation="UPDATE", obj=svc, old=service("web")), view, plain)
    assert (created.confirm_live, kept.confirm_live, becoming.confirm_live) == (True, False, True)
    renamed = view_of([NS, policy("deny-in", {"podSelector": {}, "policyTypes": ["Ingress"]})], "shop")
    assert "(deny-in)" in decide.validate(make_request(obj=svc), renamed, plain).reason
    # A new view or context with a dead one's id (ids are reused) never gets the dead one's answer.
    key = next(k for k, entry in loadbalancer._DECIDED.items() if entry[0]() is view and entry[1] is
               plain.context(loadbalancer.NAME) and k[3] == "web" and k[4] == "CREATE" and b"9090" not in k[-1])
    loadbalancer._DECIDED[(id(opened), *key[1:])] = loadbalancer._DECIDED[key]  # as if id(opened) were reused
    assert _lb_warnings(svc, opened, plain) == ()


def test_kept_allows_stay_bounded_and_skip_specs_that_are_not_plain_json():
    import datetime
    from webhook.core.rules import loadbalancer
    view = view_of([NS, DENY], "shop")
    for i in range(loadbalancer.DECIDED_KEPT * 3):
        _lb_warnings(service(f"web-{i}", type="LoadBalancer"), view, settings())
    assert 0 < len(loadbalancer._DECIDED) <= loadbalancer.DECIDED_KEPT
    # A date (from YAML, for `netguard check`) would encode like a string: it makes no key, and
    # the warnings are worked out as for any spec.
    loadbalancer._DECIDED.clear()
    dated = service("web", type="LoadBalancer", ports=[{"port": 80, "targetPort": 8080}],
                    selector={"app": "web", "since": datetime.date(2024, 1, 1)})
    assert loadbalancer._service_json(dated) is None
    request = make_request(obj=service("web", type="LoadBalancer"))._replace(object=dated)  # unchecked
    assert "8080/TCP" in decide.validate(request, view, settings()).warnings[0]
    assert loadbalancer._DECIDED == {}
    huge = service("web", type="LoadBalancer", loadBalancerSourceRanges=[f"10.0.{i // 256}.{i % 256}/32"
                                                                       for i in range(200)])
    assert loadbalancer._service_json(huge) is None  # longer than DECIDED_SERVICE_BYTES: not kept
