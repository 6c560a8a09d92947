"""What `netguard fix` writes: the NetworkPolicies that get each LoadBalancer Service admitted by
netguard's own rules without warnings (docs/fix.md).

This module gathers, from the objects given, each namespace's LoadBalancer Services, policies,
labels and workloads (exempt namespaces left out: netguard does not review them) and hands them
to webhook/core/fixpolicies.py, which decides what to write -- the one generator behind the
files and behind the allow policy a denial offers.

Policies that an earlier run of `netguard fix` wrote (`is_fix_output`) are left out of what the
namespace already has: the plan is always the whole output, so a second run over the manifests
plus the first run's output writes the same files.

Pure: object dicts in, a Plan of policy dicts and notes out (webhook/cli/fix.py writes the files).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable

from webhook.core import podports
from webhook.core.fixpolicies import (  # noqa: F401  (ALLOW_PREFIX, MAX_NAME, WARNING, allow_name: fix's vocabulary)
    ALLOW_PREFIX, FIX_FOR, MANAGED_BY, MANAGER, MAX_NAME, NOTE, WARNING, FixSettings, NamespaceFix, Note,
    allow_name, namespace_fix)
from webhook.core.labels import is_load_balancer
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.core.rules.loadbalancer import SourceRangesMode
from webhook.core.settings import Settings
from webhook.core.view import NamespaceView, PolicySummary


@dataclass(frozen=True)
class Plan:
    namespaces: tuple[NamespaceFix, ...]  # sorted by namespace; also those with nothing to write

    @property
    def notes(self) -> tuple[Note, ...]:
        return tuple(n for ns in self.namespaces for n in ns.notes)

    @property
    def policies(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(p for ns in self.namespaces for p in ns.policies)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def _namespace_of(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("namespace") or "default")


def is_fix_output(obj: Mapping[str, Any], prefix: str) -> bool:
    """Whether `obj` is a NetworkPolicy that `netguard fix` wrote (its label and annotation)."""
    metadata = _metadata(obj)
    return (obj.get("kind") == "NetworkPolicy"
            and _mapping(metadata.get("labels")).get(MANAGED_BY) == MANAGER
            and f"{prefix}/{FIX_FOR}" in _mapping(metadata.get("annotations")))


def plan(objects: Iterable[Mapping[str, Any]], settings: Settings) -> Plan:
    """The policies to write for every LoadBalancer Service among `objects` (which also give the
    namespaces' policies, labels and workloads)."""
    prefix = settings.labels.prefix
    services: dict[str, list[Mapping[str, Any]]] = {}
    policies: dict[str, list[Mapping[str, Any]]] = {}
    namespace_labels: dict[str, Mapping[str, str]] = {}
    workloads: list[podports.Workload] = []
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Service" and is_load_balancer(obj):
            services.setdefault(_namespace_of(obj), []).append(obj)
        elif kind == "NetworkPolicy" and not is_fix_output(obj, prefix):
            policies.setdefault(_namespace_of(obj), []).append(obj)
        elif kind == "Namespace":
            namespace_labels[str(_metadata(obj).get("name") or "")] = _mapping(_metadata(obj).get("labels"))
        else:
            found = podports.workload(obj)
            if found is not None:
                workloads.append(found)
    fixes = []
    for ns in sorted(services):
        ordered = sorted(services[ns], key=lambda s: str(_metadata(s).get("name") or ""))
        if ns in settings.exempt_namespaces:
            fixes.append(NamespaceFix(ns, tuple(str(_metadata(s).get("name")) for s in ordered), (), (
                Note(NOTE, ns, f"namespace {ns}: exempt from netguard's rules (exemptNamespaces): "
                               "nothing written"),)))
            continue
        known = namespace_labels.get(ns)
        view = NamespaceView(name=ns, policies={p.name: p for p in map(PolicySummary.of, policies.get(ns, []))},
                             labels=known or {}, known=known is not None)
        fixes.append(namespace_fix(view, ordered, workloads, fix_settings(settings)))
    return Plan(tuple(fixes))


def fix_settings(settings: Settings) -> FixSettings:
    """What the fix reads of the whole configuration."""
    return FixSettings(settings.labels, settings.egress,
                       settings.rule(LOADBALANCER_RULE).source_ranges == SourceRangesMode.WARN)
