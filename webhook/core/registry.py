"""Every validating rule, found once: each module of webhook/core/rules/ declares its `RULE`.

Adding a rule is adding its module there (and its texts to webhook/core/messages.py):
configuration keys and their validation, the configuration reference, the netguard_violations
series, admission, `check` and `audit` all read this registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from webhook.core import rules as _rules_package
from webhook.core.rule import Rule


def _discover() -> tuple[Rule, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules(_rules_package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{_rules_package.__name__}.{info.name}")
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, Rule):
            raise TypeError(f"{module.__name__} declares no RULE")
        found.append(rule)
    names = [r.name for r in found]
    if len(set(names)) != len(names):
        raise ValueError(f"two rules share a name: {names}")
    return tuple(sorted(found, key=lambda r: (r.order, r.name)))


RULES: tuple[Rule, ...] = _discover()
BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
RULE_NAMES: tuple[str, ...] = tuple(BY_NAME)
# The rule each name a scan reports belongs to: a scan may report more than its rule's own name
# (loadbalancer-requires-default-deny's also reports cancelled-default-deny policies).
RULE_OF_FINDING: dict[str, str] = {f: rule.name for rule in RULES for f in rule.findings}
# The rules the periodic scan of namespace views checks: the series of the netguard_violations
# gauge, one per rule name (a rule's findings are counted under its own name).
VIEW_SCANNED: tuple[str, ...] = tuple(rule.name for rule in RULES if rule.scan_view)


def rule(name: str) -> Rule:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown rule {name!r}; expected one of {', '.join(RULE_NAMES)}") from None
