"""Rule protect-default-deny: a namespace's ingress default-deny stays in force while
LoadBalancer Services depend on it, and so does its egress default-deny where egress.required
asks for one (webhook/core/egress.py).

Deleting the last default-deny, changing it to stop denying, or creating (or changing) a policy
that admits every outside address to every pod on every port would each open those Services'
pods to everything the load balancer reaches: policies are additive, so the last one cancels the
default-deny as surely as a delete removes it. For egress, "cancelling" is the mirror image, to
the letter of the same API: a policy (or several together) that selects every pod, covers
Egress, and has a rule with no `ports` whose `to` is empty (every destination) or whose ipBlock
peers cover every IPv4 or every IPv6 address. A podSelector or namespaceSelector peer names pods
in the cluster, never an outside address, and a rule with ports leaves the others denied, so
neither cancels it (the DNS allowance does not). The rule is about changes only: a state has
nothing for it to scan.
"""

from __future__ import annotations

from webhook.core import clusterguard, clusterpolicy, messages, netpol
from webhook.core.egress import required_directions
from webhook.core.outcome import Decision, allow, apply_action, combine, violation
from webhook.core.request import AdmissionRequest
from webhook.core.rule import Rule, RuleContext
from webhook.core.view import NamespaceView, PolicySummary

NAME = "protect-default-deny"


def admit(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext) -> Decision | None:
    if (req.group, req.kind) in clusterpolicy.KINDS:  # Calico's, Cilium's (docs/clusterpolicies.md)
        return clusterguard.admit(req, view, ctx, NAME)
    if req.kind != "NetworkPolicy" or req.group != "networking.k8s.io" or \
            req.operation not in ("CREATE", "UPDATE", "DELETE"):
        return None
    answers = [d for direction in required_directions(view, ctx.egress)
               if (d := _admit(req, view, ctx, direction)) is not None]
    return combine(answers, "") if answers else None


def _admit(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext, direction: str) -> Decision | None:
    cancelling = _cancelling(req, view, ctx, direction)
    if cancelling is not None:
        return cancelling
    if req.operation == "CREATE" or direction not in PolicySummary.of(req.old_object or {}).default_deny:
        return None
    if req.operation == "UPDATE" and direction in PolicySummary.of(req.object or {}).default_deny:
        return None
    ns, name, word = req.namespace, req.name, direction.lower()
    # Allowing rests on cluster state as much as denying does: a LoadBalancer created a moment
    # ago may not be in the cache yet. Both answers are confirmed live (the deletes are rare).
    others = [p for p in view.default_deny_policies(direction) if p != name]
    if others:
        return allow(f"namespace {ns} stays default-deny for {word} through "
                     f"{messages.listing(others)}", rule=NAME, confirm_live=True)
    if not view.may_hold_load_balancers():
        return allow(f"no LoadBalancer Service in {ns} depends on default-deny {name}",
                     rule=NAME, confirm_live=True)
    found = violation(NAME,
                      messages.guard_denied(ns, name, req.operation, view.load_balancers, rule=NAME,
                                            direction=direction, taken=view.policies),
                      messages.guard_summary(ns, name, len(view.load_balancers), direction),
                      confirm_live=True)
    return apply_action(found, ctx.own.action)


def _cancelling(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext, direction: str) -> Decision | None:
    """A CREATE or UPDATE that would open the namespace to (for egress: from) every outside
    address of a family it is closed to now, while a default-deny is what keeps it closed."""
    if req.operation == "DELETE" or req.object is None or not view.default_deny_policies(direction):
        return None
    # The namespace without this policy, then with it as it was and as it will be: the view may
    # already hold either version (a cache that has seen the write, `netguard check`'s set).
    rest = view.without_policy(req.name)
    before = rest.with_policy(req.old_object) if req.old_object is not None else rest
    after = rest.with_policy(req.object)
    opened = after.open_families(direction) - before.open_families(direction)
    if not opened:
        return None
    ns, name = req.namespace, req.name
    if not after.default_deny_policies(direction):
        return None  # the policy itself stops being the last default-deny: the checks below say so
    if not view.may_hold_load_balancers():
        which = "its default-deny" if direction == netpol.INGRESS else "its default-deny egress"
        return allow(f"no LoadBalancer Service in {ns} depends on {which}, which {name} would "
                     f"cancel for {messages.families(opened)}", rule=NAME, confirm_live=True)
    found = violation(NAME,
                      messages.guard_cancel_denied(ns, name, req.operation, opened, view.load_balancers,
                                                   rule=NAME, direction=direction),
                      messages.guard_cancel_summary(ns, name, opened, len(view.load_balancers), direction),
                      confirm_live=True)
    return apply_action(found, ctx.own.action)


RULE = Rule(
    name=NAME,
    order=20,
    summary="while LoadBalancer Services depend on it, a namespace's default-deny ingress (and egress, "
            "where egress.required) cannot be deleted, changed to stop denying, or cancelled by a "
            "policy that admits every outside address",
    admit=admit,
)
