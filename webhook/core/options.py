"""The value types of netguard's configuration that rules read: actions, a rule's options and
its settings, the label settings. No rule is named here; each rule declares its own options
(webhook/core/rule.py) and webhook/core/settings.py assembles the whole tree.
"""

from __future__ import annotations

import enum
from dataclasses import FrozenInstanceError, dataclass
from types import MappingProxyType
from typing import Any, Mapping


class Action(enum.StrEnum):
    """What a rule does with a violation."""

    DENY = "deny"
    WARN = "warn"
    AUDIT = "audit"  # allow and record only


class FailureMode(enum.StrEnum):
    """What the live inventory does when the cluster state is unknown."""

    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True)
class Option:
    """One configuration key of a rule: `rules.<rule>.<key>` in the YAML file.

    `attribute` is the name rules read it by (`settings.dry_run`); `choices` its Enum; `doc` one
    sentence for the configuration reference, which is generated from these declarations.
    """

    key: str
    attribute: str
    choices: type[enum.Enum]
    default: enum.Enum
    doc: str


ACTION = Option("action", "action", Action, Action.DENY,
                "deny rejects the request; warn admits it with a warning; "
                "audit admits it silently and only records the violation")


class RuleSettings:
    """One rule's option values, read as attributes (`settings.action`, `settings.dry_run`).

    Immutable and compared by value. Build one with the rule's own `Rule.settings(...)`, which
    fills in the defaults of every option the rule declares.
    """

    # The values are the instance's own attributes, so `settings.action` is a plain lookup: rules
    # read them on every admission call, and a lookup that falls back to __getattr__ first
    # raises and catches an AttributeError inside CPython, which costs more than the rule's
    # own work around it.

    def __init__(self, values: Mapping[str, enum.Enum]) -> None:
        taken = sorted(name for name in values if name.startswith("_") or hasattr(RuleSettings, name))
        if taken:
            raise ValueError(f"option attribute(s) {', '.join(taken)} would hide RuleSettings' own")
        own = self.__dict__
        own.update(values)
        own["_values"] = MappingProxyType(dict(values))

    def __getattr__(self, name: str) -> Any:  # only for names that are not options
        raise AttributeError(f"this rule has no option {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: RuleSettings are immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: RuleSettings are immutable")

    def replace(self, **changes: enum.Enum) -> "RuleSettings":
        unknown = sorted(set(changes) - set(self._values))
        if unknown:
            raise TypeError(f"this rule has no option(s) {', '.join(unknown)}")
        return RuleSettings({**self._values, **changes})

    @property
    def values(self) -> Mapping[str, enum.Enum]:
        return self._values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleSettings) and dict(self._values) == dict(other._values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v.value!r}" for k, v in self._values.items())
        return f"RuleSettings({inner})"


@dataclass(frozen=True)
class LabelSettings:
    prefix: str = "netguard"
    from_namespace: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "from_namespace", tuple(self.from_namespace))
        object.__setattr__(self, "required", tuple(self.required))
