"""The validating rules. Each is a pure function (request, namespace view, settings) -> Decision,
or None when the rule does not apply to the request. Every allow says why it let the request pass.
"""

from __future__ import annotations

from typing import Callable, Optional

from webhook import messages, netpol, reachability
from webhook.config import Settings
from webhook.labels import is_load_balancer, metadata_map
from webhook.outcome import Decision, allow, apply_action, violation
from webhook.review import AdmissionRequest
from webhook.state import NamespaceView, PolicySummary

LOADBALANCER_RULE = "loadbalancer-requires-default-deny"
GUARD_RULE = "protect-default-deny"
LABELS_RULE = "required-labels"

Rule = Callable[[AdmissionRequest, NamespaceView, Settings], Optional[Decision]]


def _action(settings: Settings, rule: str) -> str:
    return settings.rule(rule).action.value


def loadbalancer_requires_default_deny(req: AdmissionRequest, view: NamespaceView,
                                       settings: Settings) -> Decision | None:
    if req.kind != "Service" or req.operation not in ("CREATE", "UPDATE") or not is_load_balancer(req.object):
        return None
    ns, name = req.namespace, req.name
    guards = view.default_deny_policies()
    if guards:
        return allow(f"namespace {ns} is default-deny for ingress ({messages.listing(guards)})",
                     rule=LOADBALANCER_RULE, warnings=_exposure_warnings(req, view, settings))
    action = _action(settings, LOADBALANCER_RULE)
    if req.operation == "UPDATE" and is_load_balancer(req.old_object):
        # Already a LoadBalancer: blocking would block every unrelated edit of the Service.
        found = violation(LOADBALANCER_RULE, "", messages.existing_loadbalancer_summary(ns, name))
        return apply_action(found, "audit" if action == "audit" else "warn")
    summary = messages.loadbalancer_summary(ns, name)
    if req.dry_run and action == "deny" and settings.rule(LOADBALANCER_RULE).dry_run.value == "warn":
        # Flux dry-runs a whole stage before applying it; this is the documented escape hatch.
        action, summary = "warn", messages.dry_run_summary(summary)
    found = violation(LOADBALANCER_RULE, messages.loadbalancer_denied(ns, name, req.operation),
                      summary, confirm_live=True)
    return apply_action(found, action)


def _exposure_warnings(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> list[str]:
    """What may still be wrong with an admitted LoadBalancer: a cancelled default-deny, ports no
    policy opens (its traffic would be dropped), an address range open to everyone."""
    ns, name, service = req.namespace, req.name, req.object or {}
    cancelling = view.cancelling_policies()
    if cancelling:
        return [messages.cancelled_default_deny(ns, cancelling)]
    warnings = []
    closed = reachability.unreachable_ports(service, view)
    if closed:
        warnings.append(reachability.unreachable_warning(ns, name, closed))
    if settings.rule(LOADBALANCER_RULE).source_ranges.value == "warn" and \
            reachability.open_source_ranges(service):
        warnings.append(reachability.source_ranges_warning(ns, name))
    return warnings


def protect_default_deny(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision | None:
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
                     f"{messages.listing(others)}", rule=GUARD_RULE)._replace(confirm_live=True)
    if not view.load_balancers:
        return allow(f"no LoadBalancer Service in {ns} depends on default-deny {name}",
                     rule=GUARD_RULE)._replace(confirm_live=True)
    found = violation(GUARD_RULE,
                      messages.guard_denied(ns, name, req.operation, view.load_balancers),
                      messages.guard_summary(ns, name, len(view.load_balancers)), confirm_live=True)
    return apply_action(found, _action(settings, GUARD_RULE))


def required_labels(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision | None:
    required = settings.labels.required
    if not required or req.operation not in ("CREATE", "UPDATE"):
        return None
    labels = metadata_map(req.object, "labels")
    missing = [key for key in required if key not in labels]
    if not missing:
        return allow(f"has the required labels {', '.join(required)}", rule=LABELS_RULE)
    summary = messages.labels_summary(req.kind, req.namespace, req.name, missing)
    action = _action(settings, LABELS_RULE)
    old_labels = metadata_map(req.old_object, "labels")
    if req.operation == "UPDATE" and all(key not in old_labels for key in missing):
        # The object lacked them before this update: an existing violation, warned, not blocked.
        found = violation(LABELS_RULE, "", f"existing violation: {summary}")
        return apply_action(found, "audit" if action == "audit" else "warn")
    message = messages.labels_denied(req.kind, req.namespace, req.name, missing,
                                     settings.labels.from_namespace)
    return apply_action(violation(LABELS_RULE, message, summary), action)


RULES: tuple[Rule, ...] = (loadbalancer_requires_default_deny, protect_default_deny, required_labels)
