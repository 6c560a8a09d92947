"""What a rule is: the one declaration from which admission, the scans, the configuration and
its reference, the `netguard_violations` metric, `check` and `audit` all read.

Each module of webhook/core/rules/ declares one `Rule` as `RULE`; webhook/core/registry.py
collects them. A rule's admission function sees the request, the namespace view and its
`RuleContext` (its own settings and the label settings), never the whole configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from webhook.core.egress import EgressSettings
from webhook.core.options import ACTION, LabelSettings, Option, RuleSettings
from webhook.core.outcome import Decision, Violation
from webhook.core.request import AdmissionRequest
from webhook.core.view import NamespaceView


@dataclass(frozen=True)
class RuleContext:
    """What a rule reads of the configuration: its own options, the label settings and the
    egress settings (webhook/core/egress.py)."""

    own: RuleSettings
    labels: LabelSettings
    egress: EgressSettings = field(default_factory=EgressSettings)


Admit = Callable[[AdmissionRequest, NamespaceView, RuleContext], Optional[Decision]]
# What is wrong in one namespace view as it stands (the periodic scan and `netguard audit`).
ScanView = Callable[[NamespaceView, RuleContext], Iterable[Violation]]
# What is wrong with one stored object (`netguard audit`, which builds its views without the
# object facts the periodic scan keeps, such as `NamespaceView.unlabelled`).
ScanObject = Callable[[str, Mapping[str, Any], RuleContext], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    """One validating rule.

    name: as in the configuration, the audit log, the metrics and the messages.
    order: rules are asked in this order; the first denial wins (outcome.combine).
    summary: one line for the configuration reference.
    admit: the admission decision, None when the rule does not apply to the request.
    options: the rule's configuration keys, `action` first.
    scan_view / scan_object: how `netguard audit` and the periodic scan find existing violations;
    None when the rule is about changes only (there is nothing to find in a state).
    findings: the `rule` names its scans report (`netguard audit` shows them; the
    netguard_violations series counts them all under the rule's name); by default the rule's
    own name when it scans.
    """

    name: str
    order: int
    summary: str
    admit: Admit
    options: tuple[Option, ...] = (ACTION,)
    scan_view: ScanView | None = None
    scan_object: ScanObject | None = None
    findings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.options or self.options[0] is not ACTION:
            raise ValueError(f"rule {self.name}: its first option must be action")
        if not self.findings and (self.scan_view or self.scan_object):
            object.__setattr__(self, "findings", (self.name,))

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)

    def settings(self, action: Any = None, **values: Any) -> RuleSettings:
        """This rule's settings: the defaults, with `action` and any option (by attribute name)
        given; values are Enum members or their string values."""
        given = dict(values)
        if action is not None:
            given["action"] = action
        resolved = {}
        for option in self.options:
            value = given.pop(option.attribute, option.default)
            resolved[option.attribute] = option.choices(value)
        if given:
            raise TypeError(f"rule {self.name} has no option(s) {', '.join(sorted(given))}")
        return RuleSettings(resolved)
