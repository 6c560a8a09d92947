"""The small vocabulary of outcomes every rule and handler speaks.

A `Decision` is what netguard answers for one request: allowed or not, why (always a human
reason), which rule decided, the warnings, and the JSON patch. Rules build them with `allow`,
`violation` and `patched`; `combine` merges the rules' answers; `apply_action` turns a violation
into a denial, a warning or a silent audit record as the configuration says.

A `Violation` is what a scan finds wrong in the cluster as it stands (`netguard audit`, the
periodic scan behind the netguard_violations metric).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping, NamedTuple

# kubectl prints each warning on one line; the apiserver truncates long ones. Keep them short
# (webhook/core/messages.py writes them to fit; this cuts what long names still push past it).
MAX_WARNING_CHARS = 120


class Verdict(enum.StrEnum):
    """Values of the audit log's `decision` field and the `decision` audit annotation."""

    ALLOW = "allow"
    DENY = "deny"
    WARN = "warn"  # a violation answered with a warning only
    AUDIT = "audit"  # a violation recorded only
    ERROR = "error"  # netguard itself failed while deciding (HTTP 500; the audit log only)


_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class Decision(NamedTuple):
    """Immutable; change a field with `_replace`. A NamedTuple, not a frozen dataclass: one to
    three are built on every admission call, and the dataclass's field-by-field
    object.__setattr__ cost 1.4 us a build (0.6 us here)."""

    allowed: bool
    reason: str
    verdict: Verdict = Verdict.ALLOW
    rule: str = ""
    message: str = ""  # the full denial text shown by kubectl, Argo CD and Flux
    summary: str = ""  # one short line: the warning used when a violation is only warned
    warnings: tuple[str, ...] = ()
    patch: tuple[Mapping[str, Any], ...] = ()
    patched_labels: Mapping[str, str] = _NO_LABELS
    # Set by the rule that decides: the answer rests on cached cluster state (every denial of
    # the state rules, and the guard's allows), so the caller confirms it with a live read of
    # the namespace and decides again before answering: cache lag never causes a false
    # rejection or a missed guard (docs/design.md, Live confirmation).
    confirm_live: bool = False
    # The rule behind each warning, in the same order (SARIF results name their rule).
    warned_by: tuple[str, ...] = ()


def short(text: str) -> str:
    """Cut a warning to what kubectl shows well on one line."""
    # ASCII "...": warnings travel in HTTP Warning headers, where non-ASCII is not safe.
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 3] + "..."


def allow(reason: str, *, rule: str = "", warnings: Iterable[str] = (),
          confirm_live: bool = False) -> Decision:
    # Built positionally, in the fields' order: most admission calls end here, and keywords (with
    # a generator for the warnings) took twice as long.
    shown = tuple([short(w) for w in warnings]) if warnings else ()
    return Decision(True, reason, Verdict.WARN if shown else Verdict.ALLOW, rule, "", "", shown, (),
                    _NO_LABELS, confirm_live, (rule,) * len(shown))


def violation(rule: str, message: str, summary: str, *, confirm_live: bool = False) -> Decision:
    """A rule found a violation; `apply_action` decides what the requester sees."""
    # Positional, in the fields' order, as in `allow`: every denial is built here.
    return Decision(False, summary, Verdict.DENY, rule, message, short(summary), (), (), _NO_LABELS,
                    confirm_live, ())


def patched(reason: str, ops: Iterable[Mapping[str, Any]], labels: Mapping[str, str]) -> Decision:
    return Decision(True, reason, Verdict.ALLOW, "labels", "", "", (), tuple(ops), dict(labels), False, ())


def with_warnings(decision: Decision, warnings: Iterable[str], rule: str = "") -> Decision:
    extra = tuple(short(w) for w in warnings)
    if not extra:
        return decision
    verdict = Verdict.WARN if decision.verdict == Verdict.ALLOW else decision.verdict
    return decision._replace(warnings=decision.warnings + extra, verdict=verdict,
                             warned_by=decision.warned_by + (rule,) * len(extra))


def apply_action(decision: Decision, action: str) -> Decision:
    """deny keeps a violation; warn allows it with its summary as a warning; audit allows silently."""
    if decision.allowed or action == "deny":
        return decision
    if action == "warn":
        return decision._replace(allowed=True, verdict=Verdict.WARN, confirm_live=False,
                                 warnings=decision.warnings + (decision.summary,),
                                 warned_by=decision.warned_by + (decision.rule,))
    return decision._replace(allowed=True, verdict=Verdict.AUDIT, confirm_live=False)


def combine(decisions: Iterable[Decision], default_reason: str) -> Decision:
    """Merge the answers of several rules: the first denial wins, every warning is kept."""
    answered = list(decisions)
    if not answered:
        return allow(default_reason)
    if len(answered) == 1:  # the usual case: merging one answer would rebuild the same one
        return answered[0]
    denied = [d for d in answered if not d.allowed]
    primary = denied[0] if denied else next(
        (d for d in answered if d.verdict != Verdict.ALLOW), answered[0])
    warnings = tuple(w for d in answered for w in d.warnings)
    warned_by = tuple(r for d in answered for r in d.warned_by)
    rules = [d.rule for d in answered if d.rule and d.verdict != Verdict.ALLOW]
    return primary._replace(warnings=warnings, warned_by=warned_by,
                            rule=",".join(dict.fromkeys(rules)) or primary.rule,
                            reason="; ".join(d.reason for d in answered))


@dataclass(frozen=True, slots=True)
class Violation:
    """Something wrong in the cluster as it stands, found by a rule's scan."""

    rule: str
    namespace: str
    name: str
    kind: str  # of the object to fix: Service or NetworkPolicy
    message: str

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.namespace, self.kind, self.name, self.rule)
