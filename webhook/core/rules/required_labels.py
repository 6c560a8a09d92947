"""Rule required-labels: Services and NetworkPolicies carry the labels in `labels.required`.

The server's inventory keeps, per namespace view, which objects lack required keys
(`NamespaceView.unlabelled`), so the periodic scan reports them (`scan_view`, the
netguard_violations series). `netguard audit` builds its views without them and checks each
listed object instead (`scan_object`), so nothing is counted twice.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from webhook.core import messages
from webhook.core.labels import metadata_map, missing_labels
from webhook.core.options import Action
from webhook.core.outcome import Decision, Violation, allow, apply_action, violation
from webhook.core.request import AdmissionRequest
from webhook.core.clusterpolicy import KINDS  # Services and NetworkPolicies only
from webhook.core.rule import Rule, RuleContext
from webhook.core.view import NamespaceView

NAME = "required-labels"


def admit(req: AdmissionRequest, view: NamespaceView, ctx: RuleContext) -> Decision | None:
    required = ctx.labels.required
    if not required or req.operation not in ("CREATE", "UPDATE") or (req.group, req.kind) in KINDS:
        return None
    missing = list(missing_labels(req.object, required))
    if not missing:
        return allow(f"has the required labels {', '.join(required)}", rule=NAME)
    summary = messages.labels_summary(req.kind, req.namespace, req.name, missing)
    action = ctx.own.action
    old_labels = metadata_map(req.old_object, "labels")
    if req.operation == "UPDATE" and all(key not in old_labels for key in missing):
        # The object lacked them before this update: an existing violation, warned, not blocked.
        found = violation(NAME, "", messages.existing_labels_summary(req.kind, req.namespace,
                                                                     req.name, missing))
        return apply_action(found, Action.AUDIT if action == Action.AUDIT else Action.WARN)
    message = messages.labels_denied(req.kind, req.namespace, req.name, missing,
                                     ctx.labels.from_namespace, rule=NAME)
    return apply_action(violation(NAME, message, summary), action)


def scan_object(kind: str, obj: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
    missing = list(missing_labels(obj, ctx.labels.required))
    if missing:
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        ns, name = str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")
        yield Violation(NAME, ns, name, kind, messages.labels_summary(kind, ns, name, missing))


def scan_view(view: NamespaceView, ctx: RuleContext) -> Iterator[Violation]:
    required = set(ctx.labels.required)
    for (kind, name), lacking in sorted(view.unlabelled.items()):
        missing = [key for key in lacking if key in required]
        if missing:
            yield Violation(NAME, view.name, name, kind, messages.labels_summary(kind, view.name, name, missing))


RULE = Rule(
    name=NAME,
    order=30,
    summary="Services and NetworkPolicies carry every label key of labels.required",
    admit=admit,
    scan_view=scan_view,
    scan_object=scan_object,
)
