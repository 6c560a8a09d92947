"""Rule protect-default-deny: the last ingress default-deny of a namespace stays while
LoadBalancer Services depend on it.

Deleting it, or changing it to stop denying, would open those Services' pods to everything the
load balancer reaches. The rule is about changes only: a state has nothing for it to scan.
"""

from __future__ import annotations

from webhook.core import messages, netpol
from webhook.core.outcome import Decision, allow, apply_action, violation
from webhook.core.request import AdmissionRequest
from webhook.core.rule import Rule, RuleContext
from webhook.core.view import NamespaceView, PolicySummary

NAME = "protect-default-deny"


def admit(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext) -> Decision | None:
    if req.kind != "NetworkPolicy" or req.operation not in ("UPDATE", "DELETE"):
        return None
    if netpol.INGRESS not in PolicySummary.of(req.old_object or {}).default_deny:
        return None
    if req.operation == "UPDATE" and netpol.INGRESS in PolicySummary.of(req.object or {}).default_deny:
        return None
    ns, name = req.namespace, req.name
    # Allowing rests on cluster state as much as denying does: a LoadBalancer created a moment
    # ago may not be in the cache yet. Both answers are confirmed live (the deletes are rare).
    others = [p for p in view.default_deny_policies() if p != name]
    if others:
        return allow(f"namespace {ns} stays default-deny for ingress through "
                     f"{messages.listing(others)}", rule=NAME, confirm_live=True)
    if not view.may_hold_load_balancers():
        return allow(f"no LoadBalancer Service in {ns} depends on default-deny {name}",
                     rule=NAME, confirm_live=True)
    found = violation(NAME,
                      messages.guard_denied(ns, name, req.operation, view.load_balancers),
                      messages.guard_summary(ns, name, len(view.load_balancers)), confirm_live=True)
    return apply_action(found, ctx.own.action)


RULE = Rule(
    name=NAME,
    order=20,
    summary="the last default-deny ingress NetworkPolicy of a namespace cannot be deleted "
            "(or changed to stop denying) while LoadBalancer Services depend on it",
    admit=admit,
)
