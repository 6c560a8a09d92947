"""protect-default-deny for the cluster-wide and CNI policies that isolate (webhook/core/rules/guard.py
asks here for them): deleting or changing one so that a namespace holding LoadBalancer Services
loses its last isolation from outside, or creating or changing one so that it admits every outside
address of a family there, is refused the same way as for a NetworkPolicy. Where egress.required
holds for the namespace, the same for its egress: losing its last egress isolation, or every pod
reaching every outside address of a family (the policy.networking.k8s.io kinds, which isolate
egress only, are guarded there alone: clusterpolicy.guarded).

A namespaced policy (Calico NetworkPolicy, CiliumNetworkPolicy) is decided on its namespace's
view; a cluster-scoped one (Calico GlobalNetworkPolicy, CiliumClusterwideNetworkPolicy) on the
views of the namespaces that may hold LoadBalancers, which the inventory hands out as the
`dependents` of the cluster-scoped view (namespace "").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core import clusterpolicy, messages, netpol
from webhook.core.clusterscope import ClusterSummary
from webhook.core.egress import required_directions
from webhook.core.outcome import Decision, allow, apply_action, violation
from webhook.core.request import AdmissionRequest
from webhook.core.rule import RuleContext
from webhook.core.view import NamespaceView


def _summaries(obj: Mapping[str, Any] | None, req: AdmissionRequest) -> tuple[ClusterSummary, ...]:
    if not isinstance(obj, Mapping):
        return ()
    # The request says the kind and group even where an object of a DELETE leaves them out.
    typed = {**obj, "kind": req.kind, "apiVersion": f"{req.group}/{obj.get('apiVersion', 'v').rpartition('/')[2]}"}
    return clusterpolicy.summarize(typed)


def _is_this(summary: ClusterSummary, kind: str, namespace: str, name: str) -> bool:
    return summary.kind == kind and summary.namespace == namespace and \
        (summary.name == name or summary.name.startswith(name + "#"))


def _change(view: NamespaceView, old: tuple[ClusterSummary, ...], new: tuple[ClusterSummary, ...],
            ident: tuple[str, str, str] | None, directions: tuple[str, ...]) -> list[tuple[str, str]]:
    """What the change does to `view`'s namespace, per direction it minds: "removes" its last
    isolation or "cancels" it (opens families); none when nothing the guard minds."""
    rest = tuple(c for c in view.cluster if ident is None or not _is_this(c, *ident))
    before = view.with_cluster(clusterpolicy.applying(rest + old, view.name, view.labels))
    after = view.with_cluster(clusterpolicy.applying(rest + new, view.name, view.labels))
    found = []
    for direction in directions:
        if not after.default_deny_policies(direction):
            if before.default_deny_policies(direction):
                found.append(("removes", direction))
        elif after.open_families(direction) - before.open_families(direction):
            found.append(("cancels", direction))
    return found


def admit(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext, rule: str) -> Decision | None:
    if (req.group, req.kind) not in clusterpolicy.guarded(ctx.egress.required) or \
            req.operation not in ("CREATE", "UPDATE", "DELETE"):
        return None
    old = _summaries(req.old_object, req) if req.operation != "CREATE" else ()
    new = _summaries(req.object, req) if req.operation != "DELETE" else ()
    sample = (old or new)
    if not sample:
        return None
    ident = (sample[0].kind, sample[0].namespace, req.name)
    targets = [view] if sample[0].namespace else list(view.dependents)
    hurt = [(t, changes) for t in targets if t.may_hold_load_balancers()
            and (changes := _change(t, old, new, ident, required_directions(t, ctx.egress)))]
    label = f"{sample[0].kind} {req.namespace}/{req.name}" if sample[0].namespace else f"{sample[0].kind} {req.name}"
    if not hurt:
        return allow(f"no namespace with LoadBalancer Services loses its isolation through {label}",
                     rule=rule, confirm_live=True)
    namespaces = [t.name for t, _ in hurt]
    services = sum(len(t.load_balancers) for t, _ in hurt)
    cancels = all(change == "cancels" for _, changes in hurt for change, _ in changes)
    directions = tuple(d for d in (netpol.INGRESS, netpol.EGRESS)
                       if any(d == w for _, changes in hurt for _, w in changes))
    found = violation(rule, messages.cluster_guard_denied(label, req.operation, namespaces, services,
                                                          cancels, rule=rule, directions=directions,
                                                          dns=ctx.egress.dns, taken=hurt[0][0].policies),
                      messages.cluster_guard_summary(label, namespaces, services, directions), confirm_live=True)
    return apply_action(found, ctx.own.action)
