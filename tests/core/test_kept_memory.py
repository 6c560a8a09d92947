"""Kept decisions and answers hold no superseded namespace view, nor a large view's fingerprint.

Every change to a namespace makes a new view, and each view holds its policies (a dict, and a
frozenset of them once its fingerprint is asked for). Kept by identity, up to 256 superseded
views per cache stayed alive: in a namespace of 2,000 policies, churned by a GitOps sync, that
was tens of megabytes per cache, and hundreds at 30,000 (docs/design.md, Kept decisions).
"""

from __future__ import annotations

import gc

from tests.reviews import make_request, policy, service, settings, view_of
from webhook.core import decide, fixpolicies
from webhook.core.view import NamespaceView

DENY = policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="churned")
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "churned"}}
ROUNDS = 40


def _policies(round_: int, count: int) -> list[dict]:
    # The same names each round, one of them changed: as a sync that edits one policy.
    return [policy(f"p{n}", {"podSelector": {"matchLabels": {"app": f"a{n}-{round_ if n == 0 else 0}"}},
                             "ingress": [{"from": [{"podSelector": {}}]}]}, namespace="churned")
            for n in range(count)]


def _alive(test) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if test(o))


def _lb():
    return make_request(namespace="churned", obj=service("web", type="LoadBalancer", namespace="churned"))


def test_kept_allows_and_reachability_answers_hold_no_superseded_view():
    config = settings()
    for round_ in range(ROUNDS):
        view = view_of([NS, DENY, *_policies(round_, 3)], "churned")
        decision = decide.validate(_lb(), view, config)
        assert decision.allowed and decision.warnings  # decided (and its reachability answered) on this view
        assert decide.validate(_lb(), view, config) is decision  # kept, for this view
    del view, decision
    assert _alive(lambda o: type(o) is NamespaceView and o.name == "churned") == 0


def test_kept_refusals_hold_no_superseded_view_and_no_large_fingerprint():
    config = settings()
    count = fixpolicies.OFFER_VIEW_POLICIES + 1
    for round_ in range(ROUNDS):
        view = view_of([NS, *_policies(round_, count)], "churned")
        decision = decide.validate(_lb(), view, config)
        assert not decision.allowed and "netguard fix" in decision.message
        assert view.fingerprint  # as the live confirmation asks for it
    del view, decision
    assert _alive(lambda o: type(o) is NamespaceView and o.name == "churned") == 0
    # No set of the namespace's policies (their names, or a fingerprint's (name, summary) pairs).
    names = {f"p{n}" for n in range(count)}
    assert _alive(lambda o: type(o) is frozenset and len(o) == count
                  and all((e[0] if type(e) is tuple else e) in names for e in o)) == 0


def test_a_small_view_s_offer_is_still_kept_across_equal_views():
    # A live read makes a new view of the same state on every denial: its offer is found again.
    config = settings()
    first = decide.validate(_lb(), view_of([NS, *_policies(0, 2)], "churned"), config)
    kept = len(fixpolicies._OFFERS)
    again = decide.validate(_lb(), view_of([NS, *_policies(0, 2)], "churned"), config)
    assert again.message == first.message and len(fixpolicies._OFFERS) == kept


NAMES = ["default-deny-ingress", "default-deny-ingress-2", "netguard-default-deny-ingress", "default-deny-egress",
         "default-deny-egress-3", "allow-dns-egress", "allow-dns-egress-2", "web", "default-denyx", "allow-dns",
         "x-default-deny-ingress", "netguard-allow-lb-web"]


def test_a_denial_s_text_is_kept_by_the_names_in_its_way_only():
    import itertools

    from webhook.core.egress import DnsTarget
    from webhook.core.policytexts import default_deny_fix_yaml, names_in_the_way
    for size in range(4):
        for taken in itertools.combinations(NAMES, size):
            for directions in (("Ingress",), ("Egress",), ("Ingress", "Egress")):
                assert default_deny_fix_yaml("ns", directions, DnsTarget(), names_in_the_way(taken)) == \
                    default_deny_fix_yaml("ns", directions, DnsTarget(), taken)
    assert names_in_the_way(NAMES) == {n for n in NAMES[:7]}
