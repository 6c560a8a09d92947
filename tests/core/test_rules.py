"""The validating rules, through decide.validate: the recorded kubectl session replayed in order,
then factory reviews for each rule, action and guard clause.
"""

from __future__ import annotations

import pytest

from tests.denials import fix_documents
from tests.reviews import (
    view_of,
    fixture_names,
    fixture_request,
    make_request,
    namespace,
    policy,
    service,
    settings,
)
from webhook.core import decide, messages, netpol
from webhook.inventory.offline import OfflineInventory
from webhook.core.outcome import Verdict
from webhook.core.rules.guard import NAME as GUARD_RULE
from webhook.core.rules.required_labels import NAME as LABELS_RULE
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.core.view import PolicySummary

SHOP_NS = namespace("shop", {"team": "payments"})
DEFAULT_DENY = policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
ALLOW_ALL = policy("allow-everything", {"podSelector": {}, "ingress": [{}]})
ALLOW_WEB = policy("allow-web", {"podSelector": {"matchLabels": {"app": "web"}},
                                 "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]})


def view(*objects, ns="shop"):
    """The namespace as an OfflineInventory seeded with `shop` (team=payments) and `objects` sees it."""
    return view_of([SHOP_NS, *objects], ns)


def validate(*objects, config=None, **review):
    return decide.validate(make_request(**review), view(*objects), config or settings())


def first_sentence(message: str) -> str:
    return messages.first_line(message)


# --------------------------------------------------------------------------- recorded session


REPLAY = {
    # name: (allowed, rule of the deciding answer or "" when no rule applied)
    "01-validate-NetworkPolicy-CREATE-default-deny": (True, ""),
    "03-validate-NetworkPolicy-CREATE-allow-lb-to-web": (True, ""),
    "05-validate-Service-CREATE-web": (True, LOADBALANCER_RULE),
    "07-validate-Service-CREATE-api": (True, ""),
    "09-validate-Service-UPDATE-api": (True, LOADBALANCER_RULE),
    "11-validate-Service-CREATE-ssa-lb": (True, LOADBALANCER_RULE),
    "13-validate-Service-CREATE-dry-dryrun": (True, LOADBALANCER_RULE),
    "15-validate-NetworkPolicy-UPDATE-default-deny": (True, ""),
    "16-validate-NetworkPolicy-DELETE-default-deny": (False, GUARD_RULE),
    "17-validate-Service-DELETE-api": (True, ""),
    "19-validate-Service-CREATE-ext": (True, ""),
}


def replay(names, config=None):
    """Each recorded request in order, through an OfflineInventory told of what was allowed."""
    inventory = OfflineInventory([SHOP_NS])
    config = config or settings()
    decisions = {}
    for name in names:
        req = fixture_request(name)
        decision = decide.validate(req, inventory.view(req.namespace), config)
        if decision.allowed and not req.dry_run:
            inventory.observe(req)
        decisions[name] = decision
    return decisions, inventory


@pytest.fixture(scope="module")
def session():
    return replay(fixture_names("validate"))


def test_replay_covers_every_recorded_validate_request():
    assert sorted(REPLAY) == fixture_names("validate")


@pytest.mark.parametrize("name", [pytest.param(n, id=n[:2] + "-" + n.split("-", 3)[3]) for n in REPLAY])
def test_recorded_session(session, name):
    decisions, _ = session
    allowed, rule = REPLAY[name]
    decision = decisions[name]
    assert decision.allowed is allowed
    assert decision.rule == rule
    assert decision.reason
    # api, ssa-lb and dry select pods no policy opens to outside traffic; web has allow-lb-to-web.
    assert [w.split(":")[0] for w in decision.warnings] == UNREACHABLE_WARNINGS.get(name, [])


UNREACHABLE_WARNINGS = {
    "09-validate-Service-UPDATE-api": ["Service shop/api"],
    "11-validate-Service-CREATE-ssa-lb": ["Service shop/ssa-lb"],
    "13-validate-Service-CREATE-dry-dryrun": ["Service shop/dry"],
}


def test_recorded_delete_of_default_deny_names_the_load_balancers(session):
    decisions, _ = session
    decision = decisions["16-validate-NetworkPolicy-DELETE-default-deny"]
    assert first_sentence(decision.message).startswith(
        "NetworkPolicy shop/default-deny cannot be deleted: it is the last default-deny ingress policy")
    # web, api (patched to LoadBalancer) and ssa-lb were allowed; the dry-run `dry` never existed.
    assert "3 LoadBalancer Service(s) depend on it." in first_sentence(decision.message)
    assert "\nThey are: api, ssa-lb, web. " in decision.message  # dry-run `dry` never existed
    assert decision.confirm_live


def test_recorded_session_leaves_the_inventory_as_the_cluster_is(session):
    _, inventory = session
    shop = inventory.view("shop")
    assert shop.load_balancers == {"web", "ssa-lb"}  # api deleted, dry never created
    assert shop.default_deny_policies() == ["default-deny"]  # its DELETE was denied
    assert dict(shop.labels) == {"team": "payments"}


REPLAY_WITHOUT_DEFAULT_DENY = {
    "03-validate-NetworkPolicy-CREATE-allow-lb-to-web": True,
    "05-validate-Service-CREATE-web": False,
    "07-validate-Service-CREATE-api": True,
    "09-validate-Service-UPDATE-api": False,
    "11-validate-Service-CREATE-ssa-lb": False,
    "13-validate-Service-CREATE-dry-dryrun": False,
    "17-validate-Service-DELETE-api": True,
    "19-validate-Service-CREATE-ext": True,
}


def test_recorded_session_without_the_default_deny_policy():
    decisions, inventory = replay(list(REPLAY_WITHOUT_DEFAULT_DENY))
    assert {n: d.allowed for n, d in decisions.items()} == REPLAY_WITHOUT_DEFAULT_DENY
    assert first_sentence(decisions["05-validate-Service-CREATE-web"].message).startswith(
        "Service shop/web of type LoadBalancer was refused")
    assert first_sentence(decisions["09-validate-Service-UPDATE-api"].message).startswith(
        "Service shop/api cannot change to type LoadBalancer")
    assert inventory.view("shop").load_balancers == frozenset()


def test_recorded_dry_run_with_dry_run_warn_is_allowed_with_a_warning():
    decisions, _ = replay(["13-validate-Service-CREATE-dry-dryrun"], settings(dry_run="warn"))
    decision = decisions["13-validate-Service-CREATE-dry-dryrun"]
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert len(decision.warnings) == 1
    assert decision.warnings[0].startswith(
        "Service shop/dry: dry-run, would be denied: no default-deny ingress NetworkPolicy")


def test_recorded_dry_run_warning_is_not_cut():
    decisions, _ = replay(["13-validate-Service-CREATE-dry-dryrun"], settings(dry_run="warn"))
    (warning,) = decisions["13-validate-Service-CREATE-dry-dryrun"].warnings
    assert warning == "Service shop/dry: dry-run, would be denied: no default-deny ingress NetworkPolicy"


# --------------------------------------------------------------------------- loadbalancer rule


def test_loadbalancer_create_without_default_deny_is_denied():
    decision = validate(ALLOW_WEB, obj=service("web", type="LoadBalancer"))
    assert not decision.allowed
    assert decision.verdict == Verdict.DENY
    assert decision.rule == LOADBALANCER_RULE
    assert decision.confirm_live
    sentence = first_sentence(decision.message)
    assert "Service shop/web" in sentence
    assert "namespace shop" in sentence
    assert "no default-deny ingress NetworkPolicy" in sentence
    assert decision.reason == ("Service shop/web: LoadBalancer without a default-deny ingress "
                               "NetworkPolicy in its namespace")


# 123, true, no, on and null are valid namespace names that YAML would read as other types.
@pytest.mark.parametrize("ns", ["shop", "payments-eu-1", "123", "true", "no", "on", "null"])
def test_denial_yaml_is_a_default_deny_for_that_namespace(ns):
    req = make_request(namespace=ns, obj=service("web", type="LoadBalancer", namespace=ns))
    decision = decide.validate(req, view_of([], ns), settings())
    # The default-deny, then the allow policy `netguard fix` writes for the Service
    # (tests/core/test_denial_allow.py has the table).
    parsed, allow = fix_documents(decision.message)
    assert parsed["kind"] == "NetworkPolicy"
    assert parsed["apiVersion"] == "networking.k8s.io/v1"
    assert parsed["metadata"]["namespace"] == ns
    assert netpol.INGRESS in netpol.default_deny_directions(parsed["spec"])
    # Applied, the namespace would be default-deny: the same request is then allowed, with a
    # warning that no policy admits its traffic -- until the allow policy is applied too.
    alone = decide.validate(req, view_of([parsed], ns), settings())
    assert alone.allowed and "no NetworkPolicy admits outside traffic" in alone.warnings[0]
    assert (allow["metadata"]["name"], allow["metadata"]["namespace"]) == ("netguard-allow-lb-web", ns)
    fixed = decide.validate(req, view_of([parsed, allow], ns), settings())
    assert fixed.allowed and fixed.warnings == ()


@pytest.mark.parametrize("objects", [
    pytest.param([DEFAULT_DENY], id="ingress-default-deny"),
    pytest.param([policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})], id="deny-all"),
    pytest.param([policy("implicit", {"podSelector": {"matchLabels": {}}})], id="implicit-types-empty-labels"),
    pytest.param([ALLOW_WEB, DEFAULT_DENY], id="with-allow-policy"),
])
def test_loadbalancer_create_with_default_deny_is_allowed(objects):
    decision = validate(*objects, obj=service("web", type="LoadBalancer"))
    assert decision.allowed
    assert "default-deny" in decision.reason
    # Only with the allow policy does outside traffic reach the pods; otherwise it is warned.
    reachable = ALLOW_WEB in objects
    assert decision.verdict == (Verdict.ALLOW if reachable else Verdict.WARN)
    assert bool(decision.warnings) is not reachable


@pytest.mark.parametrize("objects", [
    pytest.param([policy("egress-only", {"podSelector": {}, "policyTypes": ["Egress"]})], id="egress-only"),
    pytest.param([policy("some-pods", {"podSelector": {"matchLabels": {"app": "web"}}})], id="some-pods"),
    pytest.param([policy("with-rules", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})],
                 id="has-ingress-rules"),
])
def test_policies_that_are_not_ingress_default_deny_do_not_count(objects):
    decision = validate(*objects, obj=service("web", type="LoadBalancer"))
    assert not decision.allowed
    assert decision.rule == LOADBALANCER_RULE


def test_update_clusterip_to_loadbalancer_is_denied():
    decision = validate(operation="UPDATE", old=service("api", type="ClusterIP"),
                        obj=service("api", type="LoadBalancer"))
    assert not decision.allowed
    assert first_sentence(decision.message).startswith(
        "Service shop/api cannot change to type LoadBalancer: namespace shop has no default-deny ingress")
    assert decision.confirm_live


def test_update_loadbalancer_to_loadbalancer_warns_of_existing_violation():
    decision = validate(operation="UPDATE", old=service("web", type="LoadBalancer"),
                        obj=service("web", type="LoadBalancer", labels={"app": "web"}))
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert len(decision.warnings) == 1
    assert decision.warnings[0].startswith("Service shop/web: existing violation: LoadBalancer")


def test_update_loadbalancer_to_loadbalancer_audited_silently_with_action_audit():
    decision = validate(operation="UPDATE", old=service("web", type="LoadBalancer"),
                        obj=service("web", type="LoadBalancer"),
                        config=settings(actions={LOADBALANCER_RULE: "audit"}))
    assert decision.allowed
    assert decision.verdict == Verdict.AUDIT
    assert decision.warnings == ()


@pytest.mark.parametrize("review", [
    pytest.param(dict(operation="DELETE", old=service("web", type="LoadBalancer")), id="delete-lb"),
    pytest.param(dict(operation="UPDATE", old=service("web", type="LoadBalancer"),
                      obj=service("web", type="ClusterIP")), id="lb-to-clusterip"),
    pytest.param(dict(obj=service("web", type="NodePort")), id="nodeport"),
    pytest.param(dict(obj=service("web", type=None)), id="type-omitted"),
    pytest.param(dict(obj=service("ext", type="ExternalName", externalName="example.org")), id="externalname"),
])
def test_services_that_are_not_becoming_load_balancers_are_allowed(review):
    decision = validate(**review)
    assert decision.allowed
    assert decision.verdict == Verdict.ALLOW
    assert decision.warnings == ()


@pytest.mark.parametrize("dry_run_mode", ["same", "warn"])
def test_real_request_ignores_the_dry_run_setting(dry_run_mode):
    decision = validate(obj=service("web", type="LoadBalancer"), config=settings(dry_run=dry_run_mode))
    assert not decision.allowed


def test_dry_run_same_is_denied_like_a_real_request():
    real = validate(obj=service("web", type="LoadBalancer"))
    dry = validate(obj=service("web", type="LoadBalancer"), dry_run=True, config=settings(dry_run="same"))
    assert not dry.allowed
    assert dry.message == real.message
    assert dry.rule == real.rule == LOADBALANCER_RULE


def test_dry_run_warn_is_allowed_with_a_dry_run_warning():
    decision = validate(obj=service("web", type="LoadBalancer"), dry_run=True, config=settings(dry_run="warn"))
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert decision.warnings[0].startswith("Service shop/web: dry-run, would be denied: ")
    assert "shop/web" in decision.warnings[0]


def test_action_warn_allows_with_the_summary_as_warning():
    decision = validate(obj=service("web", type="LoadBalancer"),
                        config=settings(actions={LOADBALANCER_RULE: "warn"}))
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert decision.warnings == (
        "Service shop/web: LoadBalancer without a default-deny ingress NetworkPolicy in its namespace",)
    assert not decision.confirm_live


def test_action_audit_allows_silently_with_verdict_audit():
    decision = validate(obj=service("web", type="LoadBalancer"),
                        config=settings(actions={LOADBALANCER_RULE: "audit"}))
    assert decision.allowed
    assert decision.verdict == Verdict.AUDIT
    assert decision.warnings == ()
    assert decision.rule == LOADBALANCER_RULE
    assert not decision.confirm_live


@pytest.mark.parametrize("ns, config", [
    pytest.param("kube-system", settings(), id="kube-system"),
    pytest.param("netguard-system", settings(), id="own-namespace"),
    pytest.param("shop", settings(exempt_namespaces=frozenset({"shop"})), id="configured"),
])
def test_exempt_namespace_is_allowed(ns, config):
    req = make_request(namespace=ns, obj=service("web", type="LoadBalancer", namespace=ns))
    decision = decide.validate(req, view_of([], ns), config)
    assert decision.allowed
    assert decision.warnings == ()
    assert f"namespace {ns} is exempt" == decision.reason


def test_cancelled_default_deny_is_allowed_with_a_warning():
    decision = validate(DEFAULT_DENY, ALLOW_ALL, obj=service("web", type="LoadBalancer"))
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert len(decision.warnings) == 1
    assert "allow-everything" in decision.warnings[0]
    assert "not isolated" in decision.warnings[0]


@pytest.mark.parametrize("review", [
    pytest.param(dict(kind="Pod", obj={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}), id="pod"),
    pytest.param(dict(kind="ConfigMap", operation="DELETE", old={"metadata": {"name": "c"}}), id="configmap"),
    pytest.param(dict(kind="Service", group="example.com", obj=service("web", type="LoadBalancer")),
                 id="service-kind-of-another-group"),
])
def test_kinds_netguard_does_not_review_are_allowed(review):
    decision = validate(config=settings(required=("owner",)), **review)
    assert decision.allowed
    assert decision.reason.startswith("netguard does not review")



def test_a_reviewed_kind_no_rule_answers_for_is_allowed_saying_so():
    decision = validate(kind="Service", obj=service("web", type="ClusterIP"))
    assert decision.allowed and decision.verdict == Verdict.ALLOW and not decision.rule
    assert decision.reason == "no netguard rule applies to CREATE of a Service"


def test_two_answers_keep_both_reasons_and_the_first_denial_decides():
    decision = validate(kind="Service", obj=service("web", type="LoadBalancer"), config=settings(required=("owner",)))
    assert not decision.allowed
    assert decision.rule.split(",")[0] == LOADBALANCER_RULE and LABELS_RULE in decision.rule
    assert "; " in decision.reason and "owner" in decision.reason

# --------------------------------------------------------------------------- protect-default-deny


LBS = [service(f"lb-{i}", type="LoadBalancer") for i in range(8)]


def guard(*objects, op="DELETE", old=DEFAULT_DENY, obj=None, config=None):
    review = dict(kind="NetworkPolicy", operation=op, old=old)
    if op == "UPDATE":
        review["obj"] = obj
    return validate(*objects, config=config, **review)


def test_deleting_last_default_deny_with_load_balancers_is_denied():
    decision = guard(DEFAULT_DENY, *LBS[:2])
    assert not decision.allowed
    assert decision.rule == GUARD_RULE
    assert decision.confirm_live
    assert first_sentence(decision.message).startswith("NetworkPolicy shop/default-deny cannot be deleted")
    assert "2 LoadBalancer Service(s) depend on it." in first_sentence(decision.message)
    assert "\nThey are: lb-0, lb-1. " in decision.message
    [parsed] = fix_documents(decision.message)
    assert netpol.INGRESS in PolicySummary.of(parsed).default_deny


def test_guard_message_lists_five_and_counts_the_rest():
    decision = guard(DEFAULT_DENY, *LBS)
    assert not decision.allowed
    assert "8 LoadBalancer Service(s) depend on it." in first_sentence(decision.message)
    assert "They are: lb-0, lb-1, lb-2, lb-3, lb-4 and 3 more." in decision.message
    assert "lb-5" not in decision.message


def test_deleting_a_default_deny_when_another_exists_is_allowed():
    other = policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    decision = guard(DEFAULT_DENY, other, *LBS[:3])
    assert decision.allowed
    assert decision.rule == GUARD_RULE
    assert "deny-all" in decision.reason


def test_deleting_last_default_deny_without_load_balancers_is_allowed():
    decision = guard(DEFAULT_DENY, service("api", type="ClusterIP"), service("n", type="NodePort"))
    assert decision.allowed
    assert "no LoadBalancer Service" in decision.reason


def test_deleting_a_policy_that_is_not_default_deny_is_allowed():
    decision = guard(DEFAULT_DENY, ALLOW_WEB, *LBS[:2], old=ALLOW_WEB)
    assert decision.allowed
    assert decision.warnings == ()


def test_deleting_an_egress_only_default_deny_is_allowed():
    egress = policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
    decision = guard(egress, *LBS[:2], old=egress)
    assert decision.allowed


@pytest.mark.parametrize("new_spec", [
    pytest.param({"podSelector": {}, "policyTypes": ["Ingress"]}, id="unchanged"),
    pytest.param({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, id="adds-egress-deny"),
    pytest.param({"podSelector": {}}, id="drops-explicit-types"),
])
def test_update_that_keeps_default_deny_is_allowed(new_spec):
    decision = guard(DEFAULT_DENY, *LBS[:2], op="UPDATE", obj=policy("default-deny", new_spec))
    assert decision.allowed


@pytest.mark.parametrize("new_spec", [
    pytest.param({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
                 id="adds-ingress-rules"),
    pytest.param({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
                 id="narrows-pod-selector"),
    pytest.param({"podSelector": {}, "policyTypes": ["Egress"]}, id="becomes-egress-only"),
])
def test_update_that_stops_the_default_deny_is_denied(new_spec):
    decision = guard(DEFAULT_DENY, *LBS[:1], op="UPDATE", obj=policy("default-deny", new_spec))
    assert not decision.allowed
    assert decision.rule == GUARD_RULE
    assert first_sentence(decision.message).startswith(
        "NetworkPolicy shop/default-deny cannot be changed to stop denying ingress by default")


def test_guard_action_warn_allows_with_warning():
    decision = guard(DEFAULT_DENY, *LBS[:2], config=settings(actions={GUARD_RULE: "warn"}))
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert decision.warnings == ("NetworkPolicy shop/default-deny: the last default-deny ingress; "
                                 "2 LoadBalancer(s) depend on it",)


# --------------------------------------------------------------------------- required-labels


REQUIRE = settings(required=("owner", "example.com/cost-center"))


@pytest.mark.parametrize("kind, obj", [
    pytest.param("Service", service("api", labels={"app": "api"}), id="service"),
    pytest.param("NetworkPolicy", policy("allow-web", ALLOW_WEB["spec"]), id="policy"),
])
def test_missing_required_labels_are_denied_and_named(kind, obj):
    decision = validate(kind=kind, obj=obj, config=REQUIRE)
    assert not decision.allowed
    assert decision.rule == LABELS_RULE
    name = obj["metadata"]["name"]
    assert first_sentence(decision.message) == (
        f"{kind} shop/{name} was refused: it lacks the required label(s) owner, example.com/cost-center.")
    assert not decision.confirm_live


def test_only_the_missing_label_is_named():
    decision = validate(obj=service("api", labels={"owner": "sre"}), config=REQUIRE)
    assert not decision.allowed
    assert "label(s) example.com/cost-center." in decision.message
    assert "owner" not in first_sentence(decision.message)


def test_copied_label_hint_names_the_namespace():
    config = settings(required=("team",), from_namespace=("team",))
    decision = validate(obj=service("api"), config=config)
    assert not decision.allowed
    assert "netguard copies team from the namespace's labels" in decision.message


def test_present_required_labels_are_allowed():
    decision = validate(obj=service("api", labels={"owner": "sre", "example.com/cost-center": "7"}),
                        config=REQUIRE)
    assert decision.allowed
    assert decision.verdict == Verdict.ALLOW


def test_update_where_old_object_also_lacked_them_warns():
    decision = validate(operation="UPDATE", old=service("api"), obj=service("api", labels={"app": "api"}),
                        config=REQUIRE)
    assert decision.allowed
    assert decision.verdict == Verdict.WARN
    assert decision.warnings == (
        "Service shop/api: existing violation: lacks required label(s) owner, example.com/cost-center",)


def test_update_that_removes_a_required_label_is_denied():
    decision = validate(operation="UPDATE",
                        old=service("api", labels={"owner": "sre", "example.com/cost-center": "7"}),
                        obj=service("api", labels={"example.com/cost-center": "7"}), config=REQUIRE)
    assert not decision.allowed
    assert "label(s) owner." in decision.message


def test_delete_is_not_checked_for_labels():
    decision = validate(operation="DELETE", old=service("api"), config=REQUIRE)
    assert decision.allowed


def test_both_rules_denying_keeps_the_loadbalancer_message_and_both_rule_names():
    decision = validate(obj=service("web", type="LoadBalancer"), config=REQUIRE)
    assert not decision.allowed
    assert first_sentence(decision.message).startswith("Service shop/web of type LoadBalancer was refused")
    assert decision.rule == f"{LOADBALANCER_RULE},{LABELS_RULE}"
    assert decision.confirm_live


# --------------------------------------------------------------------------- warnings length

LONG_NS = "n" * 63
LONG = "s" * 63


def _long(*objects, **review):
    objects = [dict(o, metadata=dict(o["metadata"], namespace=LONG_NS)) for o in objects]
    inventory = OfflineInventory([namespace(LONG_NS), *objects])
    req = make_request(namespace=LONG_NS, **review)
    return req, inventory.view(LONG_NS)


@pytest.mark.parametrize("objects, review, config", [
    pytest.param([], dict(obj=service(LONG, type="LoadBalancer", namespace=LONG_NS)),
                 settings(actions={LOADBALANCER_RULE: "warn"}), id="action-warn"),
    pytest.param([], dict(obj=service(LONG, type="LoadBalancer", namespace=LONG_NS), dry_run=True),
                 settings(dry_run="warn"), id="dry-run-warn"),
    pytest.param([], dict(operation="UPDATE", old=service(LONG, type="LoadBalancer", namespace=LONG_NS),
                          obj=service(LONG, type="LoadBalancer", namespace=LONG_NS)), settings(),
                 id="existing-violation"),
    pytest.param([DEFAULT_DENY, policy("a" * 63, {"podSelector": {}, "ingress": [{}]}),
                  policy("b" * 63, {"podSelector": {}, "ingress": [{}]})],
                 dict(obj=service(LONG, type="LoadBalancer", namespace=LONG_NS)), settings(), id="cancelled"),
    pytest.param([policy("d" * 63), *LBS], dict(kind="NetworkPolicy", operation="DELETE",
                                                old=policy("d" * 63, namespace=LONG_NS)),
                 settings(actions={GUARD_RULE: "warn"}), id="guard-warn"),
    pytest.param([], dict(operation="UPDATE", old=service(LONG, namespace=LONG_NS),
                          obj=service(LONG, namespace=LONG_NS)),
                 settings(required=tuple(f"example.com/label-{i}" for i in range(5))), id="labels-existing"),
])
def test_every_warning_fits_one_line(objects, review, config):
    req, ns_view = _long(*objects, **review)
    decision = decide.validate(req, ns_view, config)
    assert decision.allowed
    assert decision.warnings
    for warning in decision.warnings:
        assert len(warning) <= 120, warning
        assert "\n" not in warning
