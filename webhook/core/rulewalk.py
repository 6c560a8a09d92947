"""Rules matched in order, the first that matches deciding: a Calico policy's rules and an
AdminNetworkPolicy's, BaselineAdminNetworkPolicy's or ClusterNetworkPolicy's (webhook/core/calico.py
and adminpolicy.py cite their documents). Each family reduces a rule to its action and the outside
addresses it matches on every port; the walk says what reaches the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from webhook.core import netpol

ALLOW, DENY, PASS = "Allow", "Deny", "Pass"
_EVERY_FAMILY = frozenset(netpol.EVERY_ADDRESS)

# One rule: (ALLOW, DENY, PASS or another action, which is passed over; the outside addresses it
# matches on every port of every selected pod, or None when it matches outside traffic netguard
# cannot size: some ports, named hosts, network sets).
Step = tuple[str, "list | None"]


@dataclass(frozen=True, slots=True)
class Walk:
    """`opened` / `passed`: the outside addresses an Allow / a Pass matched on every port before
    the end (collapsed CIDRs); `ends`: the action of the rule that matched every outside address
    and ended the walk, "" when the rules ran out first; `allows`: an Allow matched outside
    traffic netguard cannot size."""

    opened: tuple[str, ...]
    passed: tuple[str, ...]
    ends: str
    allows: bool

    def denies_everything_else(self, denied_at_end: bool) -> bool:
        """Every outside address of both families is denied, bar what `opened` names (no family
        whole): by a Deny of everything, or at the end of the rules where the family denies
        there (`denied_at_end`: a Calico tier). A Pass of a whole family is no deny."""
        if self.ends not in (DENY, "") or (self.ends == "" and not denied_at_end):
            return False
        return not netpol.covered_families(self.opened) and not netpol.covered_families(self.passed)

    @property
    def passes(self) -> bool:
        """It passes every outside address of a family on to the next tier."""
        return self.ends == PASS or bool(netpol.covered_families(self.passed))


def walk(steps: Iterable[Step]) -> Walk:
    opened: list = []
    passed: list = []
    allows = False
    for action, matched in steps:
        if action not in (ALLOW, DENY, PASS):
            continue  # Calico's Log: matched, and the next rule decides
        if matched is None:
            allows = allows or action == ALLOW
            continue
        if action == ALLOW:
            opened.extend(matched)
        elif action == PASS:
            passed.extend(matched)
        if matched and netpol.covered_families(str(n) for n in matched) == _EVERY_FAMILY:
            return Walk(netpol.collapse(opened), netpol.collapse(passed), action, allows)
    return Walk(netpol.collapse(opened), netpol.collapse(passed), "", allows)
