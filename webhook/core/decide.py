"""The decision core: (request, namespace view, settings) -> Decision. Pure: no Flask, no
kubernetes client, no I/O, no environment (tests/core/test_purity.py keeps every module of
webhook/core/ so).
"""

from __future__ import annotations

from webhook.core import clusterpolicy, messages
from webhook.core.kept import exact_json, keep
from webhook.core.labels import POLICY_TYPE, desired_changes
from webhook.core.outcome import Decision, allow, combine, patched, violation
from webhook.core.patches import label_patch
from webhook.core.request import AdmissionRequest
from webhook.core.settings import Settings
from webhook.core.view import NamespaceView

# (API group, kind) of the objects netguard reviews.
REVIEWED = {("", "Service"), ("networking.k8s.io", "NetworkPolicy")}


def _skip(req: AdmissionRequest, settings: Settings, labelling: bool = False) -> Decision | None:
    """Guard clauses shared by both stages; each says why it lets the request pass. Every
    cluster-wide and CNI policy kind is labelled; only those that can isolate in a required
    direction are validated."""
    kind = (req.group, req.kind)
    if kind not in REVIEWED and kind not in (
            clusterpolicy.KINDS if labelling else clusterpolicy.guarded(settings.egress.required)):
        return allow(f"netguard does not review {req.kind or 'this kind'}")
    if req.namespace in settings.exempt_namespaces:
        return allow(f"namespace {req.namespace} is exempt")
    if req.sub_resource:
        # A status UPDATE is a controller (the cloud controller writing the load balancer's
        # address) reporting what is, not a change of intent: nothing to refuse, warn or label.
        return allow(f"netguard does not review the {req.sub_resource} subresource")
    return None


def validate(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision:
    skipped = _skip(req, settings)
    if skipped:
        return skipped
    answers = [d for admit, ctx in settings.admitters if (d := admit(req, view, ctx)) is not None]
    if not answers:  # the reason formatted only when it is given: nearly every call has an answer
        return allow(f"no netguard rule applies to {req.operation} of a {req.kind}")
    return combine(answers, "")


def mutate(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision:
    skipped = _skip(req, settings, labelling=True)
    if skipped:
        return skipped
    if req.operation not in ("CREATE", "UPDATE") or req.object is None:
        return allow(f"nothing to label on {req.operation}")
    labelled = _labelled_json(req) if (req.group, req.kind) in REVIEWED else None
    if labelled is None:
        return _label(req, view, settings)
    # What the labels read of the namespace: only the copied keys' values (None: absent).
    copied = tuple([view.labels.get(key) for key in settings.labels.from_namespace])
    key = (id(settings), req.kind, copied, labelled)
    known = _LABELLED.get(key)
    if known is not None and known[0] is settings:
        return known[1]
    decision = _label(req, view, settings)
    # Holding the settings keeps their id from being reused while the entry lives.
    keep(_LABELLED, key, (settings, decision), LABELLED_KEPT)
    return decision


# Label decisions already made, by all they are made from: the settings (by identity: they are
# immutable and held by the entry), the kind, the copied namespace labels' values, and the exact
# JSON of the object's labels, annotations (a Service's exposure reads its load balancer
# annotations) and spec. Every apply is labelled, and a GitOps sync applies the
# same objects again and again. A Decision is immutable, so one can answer many calls. Bounded
# like every hot-path cache (webhook/core/kept.py); an object whose JSON is longer than
# LABELLED_OBJECT_BYTES is labelled each time rather than kept.
LABELLED_KEPT = 256
LABELLED_OBJECT_BYTES = 4096
_LABELLED: dict[tuple, tuple[Settings, Decision]] = {}


def _labelled_json(req: AdmissionRequest) -> bytes | None:
    """The JSON of what labelling reads of the object, or None when it cannot stand for it
    (webhook/core/kept.py exact_json)."""
    obj = req.object or {}
    metadata = obj.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        return None  # a mapping of another type (from Python) would encode as nothing
    return exact_json([metadata is not None, metadata and metadata.get("labels"),
                       metadata and metadata.get("annotations"), obj.get("spec")], LABELLED_OBJECT_BYTES)


def _label(req: AdmissionRequest, view: NamespaceView, settings: Settings) -> Decision:
    owned = None
    if (req.group, req.kind) in clusterpolicy.KINDS:  # what netguard counts it as
        owned = {f"{settings.labels.prefix}/{POLICY_TYPE}": clusterpolicy.policy_type(req.object)}
    changes = desired_changes(req.kind, req.object, settings.labels.prefix,
                              settings.labels.from_namespace, view.labels, owned)
    ops = label_patch(req.object, changes)
    if not ops:
        return allow("labels already correct")
    return patched(f"set labels {', '.join(sorted(changes))}", ops, changes)


def state_unknown(req: AdmissionRequest, settings: Settings, why: str) -> Decision | None:
    """The answer when cluster state cannot be known (API unreachable, not yet synced).

    The request is decided against the worst a namespace could hold (`NamespaceView.unknown`:
    no policies, perhaps some LoadBalancer Services). None when even that is not a denial
    resting on cluster state (the request needs no state, or its rule only warns or audits):
    the caller decides as usual. Otherwise failureMode decides: closed denies, saying netguard
    could not confirm the namespace's policies; open allows with a warning.
    """
    worst = validate(req, NamespaceView.unknown(req.namespace), settings)
    if worst.allowed or not worst.confirm_live:
        return None
    if settings.failure_mode.value == "open":
        return allow(f"cluster state unknown ({why}); failureMode open", rule=worst.rule,
                     warnings=[messages.state_unknown_warning(req.kind, req.namespace, req.name)])
    return violation(worst.rule, messages.state_unknown(req.kind, req.namespace, req.name, why,
                                                        rule=worst.rule),
                     f"cluster state unknown ({why}); failureMode closed")
