"""What is already wrong in the cluster, found by each rule's own scan (webhook/core/rule.py).

An admission webhook only sees changes: objects created before it was installed, while it failed
open, or in a namespace that was exempt at the time are never reviewed. The periodic scan
(`scan_views`, behind the netguard_violations metric) and `netguard audit` (`scan_views` plus
`scan_objects`) find them. Exempt namespaces are skipped. Every rule is reported whatever its
configured action: the scan says what is true, the action only says how admission answers.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from webhook.core.outcome import Violation
from webhook.core.registry import RULES
from webhook.core.settings import Settings
from webhook.core.view import NamespaceView


def scan_views(views: Iterable[NamespaceView], settings: Settings) -> list[Violation]:
    """The violations the rules can see in namespace views (every rule with a `scan_view`)."""
    scanners = [(rule.scan_view, settings.context(rule.name)) for rule in RULES if rule.scan_view]
    found = [v for view in views if view.name not in settings.exempt_namespaces
             for scan, ctx in scanners for v in scan(view, ctx)]
    return sorted(found, key=Violation.sort_key)


def scan_objects(kind: str, objects: Iterable[Mapping[str, Any]], settings: Settings) -> list[Violation]:
    """The violations the rules can see in single stored objects (every rule with a
    `scan_object`), for objects of `kind` (Service or NetworkPolicy)."""
    scanners = [(rule.scan_object, settings.context(rule.name)) for rule in RULES if rule.scan_object]
    found = []
    for obj in objects:
        metadata = obj.get("metadata")
        namespace = str((metadata if isinstance(metadata, Mapping) else {}).get("namespace") or "default")
        if namespace in settings.exempt_namespaces:
            continue
        found.extend(v for scan, ctx in scanners for v in scan(kind, obj, ctx))
    return sorted(found, key=Violation.sort_key)
