"""The live inventory's memo of policy summaries (webhook/inventory/interning.py): one summary
per distinct (name, spec), never one spec's summary for another."""

from __future__ import annotations

import copy

import pytest

from tests.reviews import make_request, service, settings
from webhook.core import decide
from webhook.core.view import NamespaceView, PolicySummary
from webhook.inventory.interning import PolicySummaries, spec_key

DENY = {"podSelector": {}, "policyTypes": ["Ingress"]}
ALLOW_ALL = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}  # cancels a default-deny


def policy(name: str, spec, namespace: str = "a") -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": copy.deepcopy(spec)}


def test_equal_policies_of_many_namespaces_are_summarised_once(monkeypatch):
    calls = []
    real = PolicySummary.of.__func__
    monkeypatch.setattr(PolicySummary, "of", classmethod(lambda cls, obj: calls.append(obj) or real(cls, obj)))
    summaries = PolicySummaries()
    found = [summaries(policy("default-deny", DENY, namespace=f"ns-{i}")) for i in range(50)]
    assert len(calls) == 1
    assert all(s is found[0] for s in found)
    assert found[0] == PolicySummary.of(policy("default-deny", DENY))


@pytest.mark.parametrize("first,second", [
    (policy("p", DENY), policy("p", ALLOW_ALL)),  # same name, another spec
    (policy("p", DENY), policy("q", DENY)),  # same spec, another name
    (policy("p", {"podSelector": {"matchLabels": {"app": "web"}}}),
     policy("p", {"podSelector": {"matchLabels": {"app": "db"}}})),
    (policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}),
     policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "80"}]}]})),  # int vs named port
], ids=["spec", "name", "selector", "port-type"])
def test_policies_that_differ_in_name_or_spec_keep_their_own_summaries(first, second):
    summaries = PolicySummaries()
    assert summaries(first) == PolicySummary.of(first)
    assert summaries(second) == PolicySummary.of(second)
    assert summaries(first) != summaries(second)


def test_the_memo_never_lends_one_namespaces_verdict_to_another():
    summaries = PolicySummaries()
    # One policy name in two namespaces, a default-deny in one and an allow-all in the other.
    isolated = NamespaceView(name="a", known=True, policies={"p": summaries(policy("p", DENY, "a"))})
    open_ = NamespaceView(name="b", known=True, policies={"p": summaries(policy("p", ALLOW_ALL, "b"))})

    def allowed(view):
        req = make_request(kind="Service", namespace=view.name,
                           obj=service("lb", type="LoadBalancer", namespace=view.name))
        return decide.validate(req, view, settings()).allowed

    assert allowed(isolated) and not allowed(open_)


def test_the_key_ignores_key_order_and_the_namespace():
    reordered = {"policyTypes": ["Ingress"], "podSelector": {}}
    assert spec_key(policy("p", DENY, "a")) == spec_key(policy("p", reordered, "b"))
    assert spec_key(policy("p", DENY)) != spec_key(policy("p", {"podSelector": {}, "policyTypes": ["Egress"]}))


def test_a_spec_json_cannot_hold_is_summarised_without_the_memo():
    huge = policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 2 ** 70}]}]})
    assert spec_key(huge) is None
    summaries = PolicySummaries()
    assert summaries(huge) == PolicySummary.of(huge)
