"""Every denial and every warning netguard can give, rule by rule, sized for the tools that show
them (webhook/core/messages.py): a denial's first line says what and why in at most 200
characters, the Flux advice comes only with Flux's requests, every denial ends with the same
closing line; every warning fits 120 characters and starts with its object. Each path runs with
ordinary names and with the longest names Kubernetes allows (63 for namespaces and Services, 253
for NetworkPolicies)."""

from __future__ import annotations

import pytest

from tests.reviews import make_request, namespace, policy, service, settings, view_of
from webhook.core import decide, fixpolicies, messages
from webhook.core.config import parse_settings
from webhook.core.outcome import MAX_WARNING_CHARS
from webhook.core.request import FLUX_FIELD_MANAGER
from webhook.core.rules.guard import NAME as GUARD
from webhook.core.rules.loadbalancer import NAME as LB
from webhook.core.rules.required_labels import NAME as LABELS
from webhook.core.violations import scan_objects, scan_views
from webhook.inventory.views import build_views_of

DENY = {"podSelector": {}, "policyTypes": ["Ingress"]}
ALLOW_ALL = {"podSelector": {}, "ingress": [{}]}
NARROW = {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}
WEB_FROM_OUTSIDE = {"podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}
STOPS_DENYING = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}

NAMES = {  # id: (namespace, Service name, NetworkPolicy name)
    "short": ("shop", "web", "allow-web"),
    "longest": ("n" * 63, "s" * 63, "p" * 253),
}
REQUIRE = settings(required=("owner", "example.com/cost-center"))
SOURCE_RANGES = parse_settings(f"rules:\n  {LB}: {{sourceRanges: warn}}\n")
EGRESS = parse_settings("egress: {required: true}\n")
EGRESS_GUARD_WARN = parse_settings(f"egress: {{required: true}}\nrules:\n  {GUARD}: {{action: warn}}\n")
DENY_EGRESS = {"podSelector": {}, "policyTypes": ["Egress"]}
ALLOW_ALL_EGRESS = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}


def lb(name, ns, **fields):
    return service(name, type="LoadBalancer", namespace=ns, selector={"app": "web"},
                   ports=[{"port": 443, "targetPort": 8443}], **fields)


def other_lb(ns):
    return service("other", type="LoadBalancer", namespace=ns)


# Each path: (rule, what it builds: (ns, svc, pol) -> (state, review, config)).
DENIALS = {
    "lb-create": (LB, lambda ns, svc, pol: ([], dict(obj=lb(svc, ns)), settings())),
    "lb-update-to-lb": (LB, lambda ns, svc, pol: (
        [], dict(operation="UPDATE", old=service(svc, namespace=ns), obj=lb(svc, ns)), settings())),
    "lb-dry-run": (LB, lambda ns, svc, pol: ([], dict(obj=lb(svc, ns), dry_run=True), settings())),
    "guard-delete": (GUARD, lambda ns, svc, pol: (
        [policy(pol, DENY, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", operation="DELETE", old=policy(pol, DENY, namespace=ns)), settings())),
    "guard-stops-denying": (GUARD, lambda ns, svc, pol: (
        [policy(pol, DENY, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", operation="UPDATE", old=policy(pol, DENY, namespace=ns),
             obj=policy(pol, STOPS_DENYING, namespace=ns)), settings())),
    "guard-cancel-create": (GUARD, lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", obj=policy(pol, ALLOW_ALL, namespace=ns)), settings())),
    "guard-cancel-update": (GUARD, lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy(pol, NARROW, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", operation="UPDATE", old=policy(pol, NARROW, namespace=ns),
             obj=policy(pol, ALLOW_ALL, namespace=ns)), settings())),
    "lb-egress-create": (LB, lambda ns, svc, pol: ([policy(pol, DENY, namespace=ns)], dict(obj=lb(svc, ns)), EGRESS)),
    "lb-egress-and-ingress-create": (LB, lambda ns, svc, pol: ([], dict(obj=lb(svc, ns)), EGRESS)),
    "guard-egress-delete": (GUARD, lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy(pol, DENY_EGRESS, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", operation="DELETE", old=policy(pol, DENY_EGRESS, namespace=ns)), EGRESS)),
    "guard-egress-stops-denying": (GUARD, lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy(pol, DENY_EGRESS, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", operation="UPDATE", old=policy(pol, DENY_EGRESS, namespace=ns),
             obj=policy(pol, {"podSelector": {}}, namespace=ns)), EGRESS)),
    "guard-egress-cancel-create": (GUARD, lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy("deny-egress", DENY_EGRESS, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", obj=policy(pol, ALLOW_ALL_EGRESS, namespace=ns)), EGRESS)),
    "labels-create-service": (LABELS, lambda ns, svc, pol: (
        [], dict(obj=service(svc, namespace=ns)), REQUIRE)),
    "labels-create-policy": (LABELS, lambda ns, svc, pol: (
        [], dict(kind="NetworkPolicy", obj=policy(pol, NARROW, namespace=ns)), REQUIRE)),
    "labels-update-removes": (LABELS, lambda ns, svc, pol: (
        [], dict(operation="UPDATE", old=service(svc, namespace=ns, labels={"owner": "sre"}),
                 obj=service(svc, namespace=ns)), REQUIRE)),
}

WARNINGS = {
    "lb-action-warn": lambda ns, svc, pol: ([], dict(obj=lb(svc, ns)), settings(actions={LB: "warn"})),
    "lb-dry-run-warn": lambda ns, svc, pol: ([], dict(obj=lb(svc, ns), dry_run=True), settings(dry_run="warn")),
    "lb-existing-violation": lambda ns, svc, pol: (
        [], dict(operation="UPDATE", old=lb(svc, ns), obj=lb(svc, ns, labels={"a": "b"})), settings()),
    "lb-cancelled": lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy(pol, ALLOW_ALL, namespace=ns)],
        dict(obj=lb(svc, ns)), settings()),
    "lb-unreachable-ports": lambda ns, svc, pol: (
        [policy(pol, DENY, namespace=ns)], dict(obj=lb(svc, ns)), settings()),
    "lb-open-source-ranges": lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy(pol, WEB_FROM_OUTSIDE, namespace=ns)],
        dict(obj=lb(svc, ns)), SOURCE_RANGES),
    "guard-warn": lambda ns, svc, pol: (
        [policy(pol, DENY, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", operation="DELETE", old=policy(pol, DENY, namespace=ns)),
        settings(actions={GUARD: "warn"})),
    "guard-cancel-warn": lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", obj=policy(pol, ALLOW_ALL, namespace=ns)), settings(actions={GUARD: "warn"})),
    "lb-egress-cancelled": lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy("deny-egress", DENY_EGRESS, namespace=ns),
         policy(pol, ALLOW_ALL_EGRESS, namespace=ns)], dict(obj=lb(svc, ns)), EGRESS),
    "guard-egress-cancel-warn": lambda ns, svc, pol: (
        [policy("default-deny", DENY, namespace=ns), policy("deny-egress", DENY_EGRESS, namespace=ns), other_lb(ns)],
        dict(kind="NetworkPolicy", obj=policy(pol, ALLOW_ALL_EGRESS, namespace=ns)), EGRESS_GUARD_WARN),
    "labels-warn": lambda ns, svc, pol: (
        [], dict(obj=service(svc, namespace=ns)), settings(required=("owner",), actions={LABELS: "warn"})),
    "labels-existing-violation": lambda ns, svc, pol: (
        [], dict(operation="UPDATE", old=service(svc, namespace=ns), obj=service(svc, namespace=ns, labels={"a": "b"})),
        REQUIRE),
}


def decide_path(build, names, **extra):
    ns, svc, pol = names
    state, review, config = build(ns, svc, pol)
    req = make_request(namespace=ns, **review, **extra)
    return req, decide.validate(req, view_of([namespace(ns), *state], ns), config)


def object_of(req):
    return f"{req.kind} {req.namespace}/{req.name}: "


def check_denial(req, decision, rule):
    assert not decision.allowed, decision
    first = messages.first_line(decision.message)
    assert len(first) <= messages.FIRST_LINE_CHARS, first
    assert first.startswith(f"{req.kind} {req.namespace[:messages.SHORTEST_NAME - 3]}") and (" refused" in first or " cannot " in first)
    assert first.endswith("."), first
    assert len(decision.message.splitlines()) >= 3  # what and why, how to fix, the closing line
    assert decision.message.splitlines()[-1] == messages.closing(rule)
    assert len(decision.message) <= messages.MAX_MESSAGE_CHARS  # the whole, allow policy and all


@pytest.mark.parametrize("names", NAMES.values(), ids=NAMES.keys())
@pytest.mark.parametrize("path", DENIALS, ids=DENIALS.keys())
def test_every_denial_has_the_one_shape(path, names):
    rule, build = DENIALS[path]
    req, decision = decide_path(build, names)
    check_denial(req, decision, rule)
    assert decision.rule.split(",")[0] == rule
    assert messages.FLUX_ADVICE not in decision.message and "Flux" not in decision.message
    # A LoadBalancer's denial offers the allow policy for its pods (tests/core/test_denial_allow.py).
    assert (f"  name: {fixpolicies.allow_name(names[1])}\n" in decision.message) is path.startswith("lb-")


@pytest.mark.parametrize("path", DENIALS, ids=DENIALS.keys())
def test_the_flux_advice_comes_only_with_flux_requests(path):
    rule, build = DENIALS[path]
    req, decision = decide_path(build, NAMES["short"], field_manager=FLUX_FIELD_MANAGER)
    assert req.from_flux or req.operation == "DELETE"  # DeleteOptions carry no fieldManager
    check_denial(req, decision, rule)  # still ending with the closing line
    # Only the LoadBalancer rule is about what Flux's dry-run of a stage does.
    assert (messages.FLUX_ADVICE in decision.message) is (rule == LB)
    if rule == LB:
        assert decision.message.splitlines()[-2] == messages.FLUX_ADVICE


@pytest.mark.parametrize("names", NAMES.values(), ids=NAMES.keys())
@pytest.mark.parametrize("mode", ["closed", "open"])
def test_cluster_state_unknown(mode, names):
    ns, svc, _ = names
    req = make_request(namespace=ns, obj=lb(svc, ns))
    decision = decide.state_unknown(req, parse_settings(f"failureMode: {mode}\n"), "the API server did not answer")
    if mode == "closed":
        check_denial(req, decision, LB)
        assert "\nWhy: the API server did not answer. " in decision.message
    else:
        [warning] = decision.warnings
        assert len(warning) <= MAX_WARNING_CHARS and warning.startswith(object_of(req)[:MAX_WARNING_CHARS - 3])


@pytest.mark.parametrize("names", NAMES.values(), ids=NAMES.keys())
@pytest.mark.parametrize("path", WARNINGS, ids=WARNINGS.keys())
def test_every_warning_fits_and_starts_with_its_object(path, names):
    req, decision = decide_path(WARNINGS[path], names)
    assert decision.allowed and decision.warnings, decision
    # Each warning is told with the rule it comes from (SARIF results name it).
    rule = {"lb": LB, "guard": GUARD, "labels": LABELS}[path.split("-")[0]]
    assert decision.warned_by == (rule,) * len(decision.warnings)
    for warning in decision.warnings:
        assert len(warning) <= MAX_WARNING_CHARS and "\n" not in warning, warning
        # The longest names do not leave room for the whole object: what fits of it comes first.
        assert warning.startswith(object_of(req)[:MAX_WARNING_CHARS - 3]), warning


@pytest.mark.parametrize("path", WARNINGS, ids=WARNINGS.keys())
def test_warnings_with_ordinary_names_are_never_cut(path):
    _, decision = decide_path(WARNINGS[path], NAMES["short"])
    assert not any(w.endswith("...") for w in decision.warnings), decision.warnings


def test_every_warning_path_is_covered():
    """Each warning text of messages.py and reachability.py comes out of one path above."""
    seen = {tuple(w.split(": ", 1)[1].split()[:3])
            for build in WARNINGS.values() for w in decide_path(build, NAMES["short"])[1].warnings}
    assert len(seen) == len(WARNINGS)  # ten different texts, not one text ten times


def test_scan_findings_start_with_their_object():
    state = [namespace("a"), service("web", type="LoadBalancer", namespace="a"),
             namespace("c"), policy("deny", DENY, namespace="c"), policy("open", ALLOW_ALL, namespace="c"),
             service("web", type="LoadBalancer", namespace="c")]
    found = list(scan_views(build_views_of(state).values(), REQUIRE))
    found += scan_objects("Service", [o for o in state if o["kind"] == "Service"], REQUIRE)
    assert {v.rule for v in found} == {LB, "cancelled-default-deny", LABELS}
    for v in found:
        assert v.message.startswith(f"{v.kind} {v.namespace}/{v.name}: "), v
        assert len(v.message) <= MAX_WARNING_CHARS


@pytest.mark.parametrize("names, cut", [
    pytest.param(("shop", "web"), False, id="short"),
    pytest.param(("n" * 63, "s" * 63), True, id="longest"),
])
def test_fit_cuts_the_longest_names_only_as_much_as_needed(names, cut):
    template = "Service {0}/{1} of type LoadBalancer was refused: namespace {0} has no default-deny " + "x" * 60
    line = messages.fit(template, *names)
    assert len(line) <= messages.FIRST_LINE_CHARS
    assert ("..." in line) is cut
    if not cut:
        assert line == template.format(*names)
    else:
        assert len(line) >= messages.FIRST_LINE_CHARS - 3  # nothing cut that did not need to be


def test_a_first_line_is_one_line():
    with pytest.raises(ValueError):
        messages.denial("two\nlines", "fix", LB)


def test_a_denial_text_is_made_once_for_the_same_arguments_and_anew_for_others():
    """A GitOps controller retries a denied sync: the same Service in the same namespace state
    gets the very same text, without building it again; any argument that changes it is part of
    what is remembered."""
    from webhook.core import messages as m

    args = dict(rule="loadbalancer-requires-default-deny", not_isolating=[("Calico X", "it passes")],
                taken={"default-deny-ingress": None})
    first = m.loadbalancer_denied("shop", "web", "CREATE", **args)
    assert m.loadbalancer_denied("shop", "web", "CREATE", **args) is first
    variants = [m.loadbalancer_denied("shop", "web", "CREATE", **{**args, **change}) for change in (
        {"from_flux": True}, {"taken": {}}, {"not_isolating": []}, {"missing": ("Ingress", "Egress")},
        {"labels_unknown": True, "missing": ("Egress",)})]
    assert len({first, *variants}) == 1 + len(variants)
    assert m.loadbalancer_denied("shop", "api", "CREATE", **args) != first
    assert "netguard-default-deny-ingress" in first and "netguard-default-deny-ingress" not in variants[1]


def _offered_names(message: str) -> list[str]:
    from tests.denials import fix_documents

    return [d["metadata"]["name"] for d in fix_documents(message)]


def test_refusing_to_delete_the_last_default_deny_offers_another_name():
    """The example policy the refusal offers must not be the one being deleted (applying it
    would change that policy, and the delete would be refused again), nor another of the
    namespace's."""
    deny = policy("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    view = view_of([deny, service("web", type="LoadBalancer")])
    req = make_request(kind="NetworkPolicy", operation="DELETE", obj=None, old=deny, name="default-deny-ingress")
    decision = decide.validate(req, view, settings())
    assert not decision.allowed and decision.rule == GUARD
    assert _offered_names(decision.message) == ["netguard-default-deny-ingress"]


def test_refusing_a_cluster_policy_change_offers_names_the_namespace_does_not_have():
    from webhook.core import clusterpolicy

    gnp = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "deny"},
           "spec": {"selector": "all()", "types": ["Ingress"]}}
    theirs = policy("default-deny-ingress", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{}]})
    shop = view_of([theirs, service("web", type="LoadBalancer")]).with_cluster(clusterpolicy.summarize(gnp))
    req = make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="", operation="DELETE",
                       obj=None, old=gnp)
    decision = decide.validate(req, NamespaceViewWithDependents(shop), settings())
    assert not decision.allowed
    assert _offered_names(decision.message) == ["netguard-default-deny-ingress"]


def NamespaceViewWithDependents(*views):  # noqa: N802 (reads as the view it builds)
    from webhook.core.view import NamespaceView

    return NamespaceView(name="", dependents=tuple(views))
