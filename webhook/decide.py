"""The decision core: (request, namespace view, settings) -> Decision. Pure: no Flask, no
kubernetes client, no I/O, no environment (tests/test_purity.py keeps it so).
"""

from __future__ import annotations

from webhook import messages, netpol
from webhook.config import Settings
from webhook.labels import desired_changes, is_load_balancer
from webhook.outcome import Decision, allow, combine, patched, violation
from webhook.patches import label_patch
from webhook.review import AdmissionRequest
from webhook.rules import LOADBALANCER_RULE, GUARD_RULE, RULES
from webhook.state import NamespaceView, PolicySummary

# (API group, kind) of the objects netguard reviews.
REVIEWED = {("", "Service"), ("networking.k8s.io", "NetworkPolicy")}


def _skip(req: AdmissionRequest, settings: Settings) -> Decision | None:
    """Guard clauses shared by both stages; each says why it lets the request pass."""
    if (req.group, req.kind) not in REVIEWED:
        return allow(f"netguard does not review {req.kind or 'this kind'}")
    if req.namespace in settings.exempt_namespaces:
        return allow(f"namespace {req.namespace} is exempt")
    return None


def validate(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision:
    skipped = _skip(req, settings)
    if skipped:
        return skipped
    answers = [d for rule in RULES if (d := rule(req, view, settings)) is not None]
    return combine(answers, f"no netguard rule applies to {req.operation} of a {req.kind}")


def mutate(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision:
    skipped = _skip(req, settings)
    if skipped:
        return skipped
    if req.operation not in ("CREATE", "UPDATE") or req.object is None:
        return allow(f"nothing to label on {req.operation}")
    changes = desired_changes(req.kind, req.object, settings.labels.prefix,
                              settings.labels.from_namespace, view.labels)
    ops = label_patch(req.object, changes)
    if not ops:
        return allow("labels already correct")
    return patched(f"set labels {', '.join(sorted(changes))}", ops, changes)


def needs_cluster_state(req: AdmissionRequest, settings: Settings) -> str:
    """The rule whose validating decision needs the namespace's policies, or '' if none does."""
    if _skip(req, settings) or req.operation not in ("CREATE", "UPDATE", "DELETE"):
        return ""
    if req.kind == "Service" and req.operation != "DELETE" and is_load_balancer(req.object):
        return LOADBALANCER_RULE
    if req.kind == "NetworkPolicy" and req.operation != "CREATE" and \
            netpol.INGRESS in PolicySummary.of(req.old_object or {}).default_deny:
        return GUARD_RULE
    return ""


def state_unknown(req: AdmissionRequest, settings: Settings, why: str) -> Decision | None:
    """The answer when cluster state cannot be known (API unreachable, not yet synced).

    None when the request needs no cluster state. Otherwise failureMode decides: closed denies,
    saying netguard could not confirm the namespace's policies; open allows with a warning.
    """
    rule = needs_cluster_state(req, settings)
    if not rule:
        return None
    if settings.failure_mode.value == "open":
        return allow(f"cluster state unknown ({why}); failureMode open", rule=rule,
                     warnings=[messages.state_unknown_warning(req.namespace)])
    return violation(rule, messages.state_unknown(req.namespace, why),
                     f"cluster state unknown ({why}); failureMode closed")
