"""What `netguard check` found: one Result per reviewed object, what it skipped, and warnings
about the set as a whole. Rendered by webhook/cli/report.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Result:
    """What the webhook would answer for one object."""

    kind: str
    namespace: str
    name: str
    source: str
    line: int
    decision: str  # allow | deny | warn | audit (outcome.Verdict)
    allowed: bool
    rule: str
    reason: str
    message: str  # the full denial text, as kubectl, Argo CD and Flux would show it
    warnings: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # what mutation would set
    warned_by: tuple[str, ...] = ()  # the rule of each warning


@dataclass(frozen=True)
class Skipped:
    kind: str
    api_version: str
    namespace: str
    name: str
    source: str
    line: int
    reason: str


@dataclass(frozen=True)
class SetWarning:
    """About the set of inputs as a whole, not one object's admission; never fails the check."""

    message: str  # one line, starting with the object (webhook/core/messages.py)
    source: str  # where the Service is: annotations point at it
    line: int
    kind: str
    namespace: str
    name: str
    detail: str = ""  # why, and what to do


@dataclass(frozen=True)
class CheckReport:
    results: tuple[Result, ...]
    skipped: tuple[Skipped, ...] = ()
    warnings: tuple[SetWarning, ...] = ()

    @property
    def denied(self) -> list[Result]:
        return [r for r in self.results if not r.allowed]

    @property
    def warned(self) -> bool:
        """Any warning: an object admitted with one (a rule set to warn, an existing violation,
        ports no policy opens...) or one about the set. A rule set to audit warns nothing."""
        return bool(self.warnings) or any(r.warnings for r in self.results)

    def count(self, decision: str) -> int:
        return sum(1 for r in self.results if r.decision == decision)
