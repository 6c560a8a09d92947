"""Rule loadbalancer-requires-default-deny: a Service of type LoadBalancer only in a namespace
that is default-deny for ingress (and for egress too, where egress.required says so:
webhook/core/egress.py).

A LoadBalancer brings traffic from outside the cluster to the Service's pods; behind a
default-deny, only what another policy admits gets through. The scan reports LoadBalancers
without a default-deny, and policies that cancel one (policies are additive:
https://kubernetes.io/docs/concepts/services-networking/network-policies/#the-two-sorts-of-pod-isolation).
"""

from __future__ import annotations

import enum
import weakref
from typing import Any, Iterator, Mapping

from webhook.core import fixpolicies, messages, netpol, reachability
from webhook.core.egress import missing_directions
from webhook.core.kept import exact_json, keep
from webhook.core.labels import is_load_balancer
from webhook.core.options import ACTION, Action, Option
from webhook.core.outcome import Decision, Violation, allow, apply_action, violation
from webhook.core.request import AdmissionRequest
from webhook.core.rule import Rule, RuleContext
from webhook.core.view import NamespaceView

NAME = "loadbalancer-requires-default-deny"
# What its scan reports besides NAME: a policy that admits every source to every pod.
CANCELLED = "cancelled-default-deny"


class DryRunMode(enum.StrEnum):
    """How the rule treats dry-run requests."""

    SAME = "same"  # as a real request
    WARN = "warn"  # warn only


class SourceRangesMode(enum.StrEnum):
    """Whether a LoadBalancer open to every address (no loadBalancerSourceRanges) is warned."""

    IGNORE = "ignore"
    WARN = "warn"


DRY_RUN = Option("dryRun", "dry_run", DryRunMode, DryRunMode.SAME,
                 "same applies action to dry-run requests as to real ones; warn only warns on "
                 "dry-run requests (Flux dry-runs a whole stage before applying it)")
SOURCE_RANGES = Option("sourceRanges", "source_ranges", SourceRangesMode, SourceRangesMode.IGNORE,
                       "warn adds a warning to a LoadBalancer without spec.loadBalancerSourceRanges, "
                       "or with 0.0.0.0/0 among them: it is open to every address")


def admit(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext) -> Decision | None:
    if req.kind != "Service" or req.operation not in ("CREATE", "UPDATE") or not is_load_balancer(req.object):
        return None
    was_load_balancer = req.operation == "UPDATE" and is_load_balancer(req.old_object)
    shown = _service_json(req.object)
    if shown is None:
        return _decide(req, view, ctx, was_load_balancer)
    key = (id(view), id(ctx), req.namespace, req.name, req.operation, was_load_balancer, req.dry_run,
           req.from_flux, shown)
    known = _DECIDED.get(key)
    if known is not None and known[0]() is view and known[1] is ctx:
        return known[2]
    decision = _decide(req, view, ctx, was_load_balancer)
    # The view is referred to weakly: a namespace's every change makes a new one, and the entries
    # must not keep superseded views (and their policies) alive. A dead view's id may be reused
    # by a later view, whose lookup then finds a dead reference and decides anew. The context
    # lives as long as its settings, and holding it keeps its id from being reused.
    keep(_DECIDED, key, (weakref.ref(view), ctx, decision), DECIDED_KEPT)
    return decision


# Decisions already made, by all they are made from: the view and the rule context (by identity:
# both are immutable; the view referred to weakly), the request's namespace, name, operation and
# flags, whether the Service already was a LoadBalancer, and the Service's name, labels and spec
# (its exact JSON). A GitOps controller re-applies the same Service to the same view again and
# again, an allowed one on every sync and a refused one on every retry, and making the decision
# again (its reason, the exposure warnings, the denial and its allow offer) was most of the call's
# decision. A Decision is immutable, so one can answer many calls. Bounded like every hot-path
# cache (webhook/core/kept.py); a Service whose JSON is longer than DECIDED_SERVICE_BYTES is
# decided each time rather than kept.
DECIDED_KEPT = 256
DECIDED_SERVICE_BYTES = 2048
_DECIDED: dict[tuple, tuple[weakref.ref[NamespaceView], RuleContext, Decision]] = {}


def _service_json(service: Mapping[str, Any] | None) -> bytes | None:
    """The JSON of what the rule reads of the Service (its name, labels and spec), or None when
    it cannot stand for them (webhook/core/kept.py exact_json)."""
    metadata = service.get("metadata") if service else None
    if metadata is not None and type(metadata) is not dict:
        return None  # a mapping of another type (from Python) would encode as nothing
    return exact_json([metadata and metadata.get("name"), metadata and metadata.get("labels"),
                       service.get("spec") if service else None], DECIDED_SERVICE_BYTES)


def _decide(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext, was_load_balancer: bool) -> Decision:
    ns, name = req.namespace, req.name
    missing = missing_directions(view, ctx.egress)
    if not missing:
        # Read-your-writes for allows too: a default-deny deleted a moment ago may still be in
        # the cache, so an allow resting on it is confirmed live -- except for a Service that
        # already was a LoadBalancer (its re-apply changes nothing the rule guards).
        reason = f"namespace {ns} is default-deny for ingress ({messages.listing(view.default_deny_policies())})"
        if ctx.egress.required and ctx.egress.required_in(view):
            reason += f" and egress ({messages.listing(view.default_deny_policies(netpol.EGRESS))})"
        return allow(reason, rule=NAME, warnings=_exposure_warnings(ns, name, req.object or {}, view, ctx),
                     confirm_live=not was_load_balancer)
    action = ctx.own.action
    if was_load_balancer:
        # Already a LoadBalancer: blocking would block every unrelated edit of the Service.
        found = violation(NAME, "", messages.existing_loadbalancer_summary(ns, name, missing))
        return apply_action(found, Action.AUDIT if action == Action.AUDIT else Action.WARN)
    summary = messages.loadbalancer_summary(ns, name, missing)
    if req.dry_run and action == Action.DENY and ctx.own.dry_run == DryRunMode.WARN:
        # Flux dry-runs a whole stage before applying it; this is the documented escape hatch.
        action, summary = Action.WARN, messages.dry_run_summary(ns, name, missing)
    # Only a denial shows the allow policy `netguard fix` writes: no work for a warning.
    offered = fixpolicies.offer(req.object or {}, view, _fix_settings(ctx)) if action == Action.DENY else None
    found = violation(NAME, messages.loadbalancer_denied(ns, name, req.operation, rule=NAME,
                                                         from_flux=req.from_flux, missing=missing,
                                                         dns=ctx.egress.dns,
                                                         labels_unknown=_labels_unknown(view, ctx),
                                                         not_isolating=view.not_isolating(missing), allow=offered,
                                                         taken=view.policies),
                      summary, confirm_live=True)
    return apply_action(found, action)


def _fix_settings(ctx: RuleContext) -> fixpolicies.FixSettings:
    # Kept per context (a configuration's contexts live as long as it): the settings are part
    # of the offer cache's key, and a fresh one per denial was built and hashed field by field.
    known = _FIX_SETTINGS.get(id(ctx))
    if known is not None and known[0] is ctx:
        return known[1]
    made = fixpolicies.FixSettings(ctx.labels, ctx.egress, ctx.own.source_ranges == SourceRangesMode.WARN)
    # Holding ctx keeps its id from being reused; configurations come and go (reloads, tests).
    keep(_FIX_SETTINGS, id(ctx), (ctx, made), 64)
    return made


_FIX_SETTINGS: dict[int, tuple[RuleContext, fixpolicies.FixSettings]] = {}
_ANY_NAMESPACE = netpol.frozen_selector({})


def _labels_unknown(view: NamespaceView, ctx: RuleContext) -> bool:
    """egress.namespaceSelector was taken to select a namespace whose labels are unknown."""
    return not view.known and ctx.egress.namespace_selector != _ANY_NAMESPACE


def _exposure_warnings(ns: str, name: str, service: Mapping[str, Any], view: NamespaceView,
                       ctx: RuleContext) -> list[str]:
    """What may still be wrong with an admitted LoadBalancer: a cancelled default-deny, ports no
    policy opens (its traffic would be dropped), an address range open to everyone."""
    warnings = []
    cancelling = view.cancelling_policies()
    if cancelling:
        warnings.append(messages.cancelled_default_deny(ns, name, cancelling, view.open_families()))
    egress = _cancelled_egress(view, ctx, holds_load_balancers=True) if ctx.egress.required else ()
    if egress:
        warnings.append(messages.cancelled_default_deny(ns, name, egress, view.open_families(netpol.EGRESS),
                                                        netpol.EGRESS))
    if cancelling:
        return warnings  # pods open to everyone: which ports a policy opens no longer matters
    closed = reachability.unreachable_ports(service, view)
    if closed:
        warnings.append(reachability.unreachable_warning(ns, name, closed))
    if ctx.own.source_ranges == SourceRangesMode.WARN and reachability.open_source_ranges(service):
        warnings.append(reachability.source_ranges_warning(ns, name))
    return warnings


def _cancelled_egress(view: NamespaceView, ctx: RuleContext, holds_load_balancers: bool) -> list[str]:
    """The policies cancelling the egress default-deny of a namespace that must have one: only
    a namespace holding LoadBalancers must (egress.required), and only one that has it can have
    it cancelled."""
    if not holds_load_balancers or not ctx.egress.required_in(view) \
            or not view.default_deny_policies(netpol.EGRESS):
        return []
    return view.cancelling_policies(netpol.EGRESS)


def scan_view(view: NamespaceView, ctx: RuleContext) -> Iterator[Violation]:
    ns = view.name
    missing = missing_directions(view, ctx.egress)
    if view.load_balancers and missing:
        for name in sorted(view.load_balancers):
            yield Violation(NAME, ns, name, "Service", messages.loadbalancer_summary(ns, name, missing))
        return
    if netpol.INGRESS in missing:
        return
    # A cancelling policy matters only where a default-deny exists to be cancelled (and, for
    # egress, where it is required: in a namespace holding LoadBalancers).
    for name in view.cancelling_policies():
        yield Violation(CANCELLED, ns, name, "NetworkPolicy",
                        messages.cancelling_finding(ns, name, view.open_families()))
    for name in _cancelled_egress(view, ctx, bool(view.load_balancers)):
        yield Violation(CANCELLED, ns, name, "NetworkPolicy",
                        messages.cancelling_finding(ns, name, view.open_families(netpol.EGRESS), netpol.EGRESS))


RULE = Rule(
    name=NAME,
    order=10,
    summary="a Service of type LoadBalancer only in a namespace with a default-deny ingress NetworkPolicy",
    admit=admit,
    options=(ACTION, DRY_RUN, SOURCE_RANGES),
    scan_view=scan_view,
    findings=(NAME, CANCELLED),
)
