"""A LoadBalancer's denial offers, after the default-deny(s), the allow policy `netguard fix`
writes for the Service (webhook/core/fixpolicies.py, one generator for both), as long as the
whole denial fits messages.MAX_MESSAGE_CHARS; else one line points to `netguard fix`. Each row
of tests/denial_cases.py: the YAML parses, is a valid NetworkPolicy, equals what `netguard fix`
writes, and -- the round trip -- applied with the default-deny(s) it admits the Service
without warnings."""

from __future__ import annotations

import pytest
import yaml

from tests.denial_cases import CASES, PARAMS, Case, lb, state
from tests.denials import fix_documents, fix_yaml
from tests.reviews import make_request, service, view_of
from webhook.core import decide, fix, fixpolicies, messages, yamltext
from webhook.core.options import LabelSettings
from webhook.core.rules.loadbalancer import NAME as LB
from webhook.core.settings import default_settings
from webhook.core.view import NamespaceView


def request(case: Case, obj: dict, ns: str = "shop"):
    if case.operation == "UPDATE":
        old = service(obj["metadata"]["name"], namespace=ns)
        return make_request(operation="UPDATE", namespace=ns, name=obj["metadata"]["name"], old=old, obj=obj)
    return make_request(namespace=ns, name=obj["metadata"]["name"], obj=obj)


def denied(case: Case, obj: dict, ns: str = "shop"):
    decision = decide.validate(request(case, obj, ns), view_of(state(case, ns), ns), case.settings())
    assert not decision.allowed and decision.rule == LB, decision
    return decision


def fix_writes(case: Case, obj: dict, ns: str = "shop") -> dict:
    """The allow policy `netguard fix` plans for the Service among the same objects."""
    [allow] = [p for p in fix.plan([obj, *state(case, ns)], case.settings()).policies
               if p["metadata"]["name"].startswith(fix.ALLOW_PREFIX)]
    return allow


@pytest.mark.parametrize("name, case", PARAMS)
def test_the_denial_offers_what_netguard_fix_writes(name, case):
    assert case.cited.startswith("https://kubernetes.io/docs/")
    obj = lb(case)
    decision = denied(case, obj)
    docs = fix_documents(decision.message)
    allow = docs[-1]
    assert allow == fix_writes(case, obj)
    # Byte for byte as `netguard fix` renders it (webhook/cli/fix.py renders through yamltext).
    assert yamltext.dump(fix_writes(case, obj)) in decision.message
    [rule] = allow["spec"]["ingress"]
    assert [(p["protocol"], p["port"]) for p in rule["ports"]] == case.ports
    assert [peer["ipBlock"]["cidr"] for peer in rule["from"]] == case.cidrs
    assert allow["spec"]["podSelector"] == {"matchLabels": {"app": "web", "tier": "front"}}
    # The default-deny(s) the namespace lacks come first, as before.
    missing = ["default-deny-ingress"] * (not case.state) + ["default-deny-egress", "allow-dns-egress"] * bool(case.config)
    assert [d["metadata"]["name"] for d in docs[:-1]] == missing
    # The round trip: applied, the Service is admitted, without a warning.
    admitted = decide.validate(request(case, obj), view_of([*state(case), *docs]), case.settings())
    assert admitted.allowed and admitted.warnings == (), admitted
    # And the shape every denial has.
    assert len(decision.message) <= messages.MAX_MESSAGE_CHARS
    assert len(messages.first_line(decision.message)) <= messages.FIRST_LINE_CHARS
    assert decision.message.splitlines()[-1] == messages.closing(LB)


@pytest.mark.parametrize("name, case", PARAMS)
def test_the_offered_policies_are_valid_network_policies(name, case):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in fix_documents(denied(case, lb(case)).message):
        kubernetes_validate.validate(doc, "1.33", strict=True)  # raises on any unknown or wrong field


def test_a_named_target_port_is_kept_with_a_note():
    case = CASES["named-targetPort-kept"]
    message = denied(case, lb(case)).message
    note = ("# note: Service shop/web: target port http/TCP left as a named port (the request holds the "
            "Service, not its pods: the name is looked up on each pod, as the Service's is)")
    assert note in message.splitlines()
    # A note is a YAML comment: the block copied whole still applies.
    assert note in fix_yaml(message)


def test_every_address_comes_with_its_warning():
    case = CASES["port-without-targetPort"]
    message = denied(case, lb(case)).message
    assert ("# warning: Service shop/web: has no loadBalancerSourceRanges: its allow policy admits every "
            "address (0.0.0.0/0, ::/0); set them to the clients that need it and run netguard fix again") \
        in message.splitlines()


def test_oversized_falls_back_to_a_pointer_within_the_budget():
    ns, name = "n" * 63, "s" * 63
    ports = [{"name": f"p{i:03d}", "port": 1000 + i, "targetPort": f"{'t' * 11}{i:03d}"} for i in range(100)]
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"type": "LoadBalancer", "selector": {f"{'k' * 60}{i}": "v" * 63 for i in range(5)},
                    "ports": ports}}
    for operation, flux in (("CREATE", ""), ("UPDATE", "kustomize-controller")):
        req = make_request(namespace=ns, name=name, obj=obj, operation=operation, field_manager=flux or None,
                           **({"old": service(name, namespace=ns)} if operation == "UPDATE" else {}))
        decision = decide.validate(req, view_of([], ns), default_settings())
        message = decision.message
        allow_name = fix.allow_name(name)
        assert len(message) <= messages.MAX_MESSAGE_CHARS
        [pointer] = [line for line in message.splitlines() if line.startswith("`netguard fix`")]
        assert allow_name in pointer and "too long to show here" in pointer
        assert [d["metadata"]["name"] for d in fix_documents(message)] == ["default-deny-ingress"]
        assert message.splitlines()[-1] == messages.closing(LB)
        assert (messages.FLUX_ADVICE in message) is bool(flux)
    # What the pointer promises: netguard fix writes it, with every port.
    written = fix.plan([obj], default_settings()).policies[-1]
    assert written["metadata"]["name"] == allow_name and len(written["spec"]["ingress"][0]["ports"]) == 100


def test_the_budget_boundary():
    offer = fixpolicies.offer(lb(CASES["port-without-targetPort"]), NamespaceView("shop"), fixpolicies.FixSettings())

    def denial_with(padding: int) -> str:  # the offer, its YAML longer by a comment line
        padded = offer._replace(text=offer.text + "#" * (padding - 1) + "\n") if padding else offer
        return messages.loadbalancer_denied("shop", "web", "CREATE", rule=LB, allow=padded)

    room = messages.MAX_MESSAGE_CHARS - len(denial_with(0))
    assert room > 0 and offer.text in denial_with(0)
    # A policy text that fills the room exactly still shows; one character more does not.
    assert len(denial_with(room)) == messages.MAX_MESSAGE_CHARS and offer.text in denial_with(room)
    over = denial_with(room + 1)
    assert offer.text not in over and "too long to show here" in over
    assert len(over) < messages.MAX_MESSAGE_CHARS


@pytest.mark.parametrize("spec, why", [
    pytest.param({"selector": {}}, "no selector: its pods are unknown", id="no-selector"),
    pytest.param({"ports": []}, "no ports", id="no-ports"),
    pytest.param({"loadBalancerSourceRanges": ["office"]}, "no usable ranges", id="no-usable-range"),
])
def test_no_allow_offered_where_fix_writes_none(spec, why):
    obj = service("web", type="LoadBalancer", **spec)
    message = decide.validate(make_request(obj=obj), view_of([]), default_settings()).message
    assert [d["metadata"]["name"] for d in fix_documents(message)] == ["default-deny-ingress"], why
    assert "(then allow the traffic your pods need with further policies)" in message
    assert "netguard fix" not in message


def test_policies_that_already_admit_the_traffic_leave_nothing_to_offer():
    mine = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 8080}]}]}}
    decision = decide.validate(make_request(obj=service("web", type="LoadBalancer")), view_of([mine]), default_settings())
    assert [d["metadata"]["name"] for d in fix_documents(decision.message)] == ["default-deny-ingress"]


def test_a_name_the_namespace_has_is_not_offered_again():
    taken = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "netguard-allow-lb-web", "namespace": "shop"},
             "spec": {"podSelector": {"matchLabels": {"app": "other"}}}}
    message = decide.validate(make_request(obj=service("web", type="LoadBalancer")), view_of([taken]), default_settings()).message
    assert fix_documents(message)[-1]["metadata"]["name"] == "netguard-allow-lb-web-2"
    assert ("# note: NetworkPolicy shop/netguard-allow-lb-web: the name is already taken by one of your "
            "policies: written as netguard-allow-lb-web-2") in message.splitlines()


def test_names_yaml_would_misread_are_quoted():
    case = CASES["targetPort-number"]
    obj = lb(case, ns="123", name="true")
    docs = fix_documents(denied(case, obj, ns="123").message)
    assert [d["metadata"]["namespace"] for d in docs] == ["123", "123"]
    assert docs[-1]["metadata"]["name"] == "netguard-allow-lb-true" and docs[-1]["spec"]["podSelector"] == \
        {"matchLabels": {"app": "true", "tier": "front"}}
    assert yaml.safe_load(yamltext.dump({"v": "true"})) == {"v": "true"}


def test_an_offer_is_remade_when_what_it_rests_on_changes():
    # Offers are kept for the Service sent again; the Service, the namespace and the settings
    # are all in what they are kept by.
    obj = lb(CASES["targetPort-number"])
    taken = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "netguard-allow-lb-web", "namespace": "shop"},
             "spec": {"podSelector": {"matchLabels": {"app": "other"}}}}
    plain = fixpolicies.FixSettings()

    def offered(view, settings=plain, service=obj):
        return fixpolicies.offer(service, view, settings)

    assert offered(view_of([])).name == "netguard-allow-lb-web"
    assert offered(view_of([taken])).name == "netguard-allow-lb-web-2"
    assert offered(view_of([])).name == "netguard-allow-lb-web"
    other = {**obj, "spec": {**obj["spec"], "ports": [{"port": 9090}]}}
    assert "port: 9090" in offered(view_of([]), service=other).text
    prefixed = fixpolicies.FixSettings(labels=LabelSettings(prefix="guard.example.com"))
    assert "guard.example.com/fix-for" in offered(view_of([]), prefixed).text
    assert "netguard/fix-for" in offered(view_of([])).text


def test_a_service_that_cannot_be_keyed_still_gets_its_offer():
    # YAML may give a map keys of several types; the offer is then made without being kept.
    obj = lb(CASES["targetPort-number"])
    obj["metadata"]["labels"] = {"team": "a", 1: "b"}
    made = fixpolicies.offer(obj, view_of([]), fixpolicies.FixSettings())
    assert made is not None and made.name == "netguard-allow-lb-web"


def test_the_offer_cache_keeps_digests_and_no_offer_too_long_to_show():
    """Denied Services are offered again and again (a GitOps retry), so offers are kept, but a
    Service may be megabytes: a small one is kept under its JSON, a large one under a 16-byte
    digest, and an offer too long for any denial is not kept at all."""
    from webhook.core import fixpolicies

    fixpolicies._OFFERS.clear()
    small = service("web", type="LoadBalancer", namespace="shop")
    small["spec"]["selector"] = {"app": "web"}
    decide.validate(make_request(namespace="shop", name="web", obj=small), view_of([], "shop"), default_settings())
    [key] = fixpolicies._OFFERS
    assert isinstance(key[0], bytes) and b'"web"' in key[0] and len(key[0]) <= fixpolicies.OFFER_KEY_BYTES
    labelled = service("wide", type="LoadBalancer", namespace="shop",
                       labels={f"team.example.com/label-{i:03d}": "x" * 40 for i in range(40)})
    first = decide.validate(make_request(namespace="shop", name="wide", obj=labelled), view_of([], "shop"),
                            default_settings())
    [wide] = [k for k in fixpolicies._OFFERS if k != key]
    assert isinstance(wide[0], tuple) and wide[0][0] > fixpolicies.OFFER_KEY_BYTES and len(wide[0][1]) == 16
    again = decide.validate(make_request(namespace="shop", name="wide", obj=labelled), view_of([], "shop"),
                            default_settings())
    assert again.message == first.message and "netguard-allow-lb-wide" in first.message
    fixpolicies._OFFERS.clear()
    ports = [{"name": f"p{i:03d}", "port": 1000 + i, "targetPort": f"{'t' * 11}{i:03d}"} for i in range(100)]
    big = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big", "namespace": "shop"},
           "spec": {"type": "LoadBalancer", "selector": {"app": "big"}, "ports": ports}}
    decision = decide.validate(make_request(namespace="shop", name="big", obj=big), view_of([], "shop"), default_settings())
    assert "too long to show here" in decision.message
    assert len(fixpolicies._OFFERS) == 0  # the big one was made, shown as a pointer, and not kept


@pytest.mark.parametrize("egress", [False, True], ids=["ingress", "ingress-and-egress"])
def test_the_denial_never_offers_a_name_one_of_the_namespaces_policies_has(egress):
    """A policy of the user's called default-deny-ingress that is no default-deny (and, with
    egress required, allow-dns-egress): applying a denial that offered those names would replace
    them, dropping what they allow. The denial names its policies as `netguard fix` does."""
    from webhook.core.config import parse_settings

    theirs = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": "shop"},
               "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{}]}}
              for name in ("default-deny-ingress", "allow-dns-egress", "default-deny-egress")]
    chosen = parse_settings("egress:\n  required: true\n") if egress else default_settings()
    lb_object = service("web", type="LoadBalancer", namespace="shop")
    lb_object["spec"]["selector"] = {"app": "web"}
    decision = decide.validate(make_request(namespace="shop", name="web", obj=lb_object),
                               view_of(theirs, "shop"), chosen)
    offered = [d["metadata"]["name"] for d in fix_documents(decision.message)]
    assert not {t["metadata"]["name"] for t in theirs} & set(offered), offered
    assert offered[0] == "netguard-default-deny-ingress"
    planned = fix.plan([*theirs, lb_object], chosen).policies
    assert offered == [p["metadata"]["name"] for p in planned]  # the same names as netguard fix
