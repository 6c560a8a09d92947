"""The one small interface through which decisions read cluster state.

Two implementations: `offline.OfflineInventory` (YAML files, the embedded default) and the live
cluster inventory (list + watch through the kubernetes client). Both hand out immutable
`NamespaceView`s, so a decision never sees a half-applied update.
"""

from __future__ import annotations

from typing import Protocol

from webhook.core.request import AdmissionRequest
from webhook.core.view import NamespaceView


class InventoryUnavailable(RuntimeError):
    """Cluster state cannot be known right now (API unreachable, not yet synced)."""


class Inventory(Protocol):
    # False when views are always current (nothing to confirm with a live read); the live
    # inventory's cache lags the API by the watch delay.
    lags: bool

    def ready(self) -> bool:
        """True once the first lists are in; /readyz answers 503 until then."""

    def view(self, namespace: str) -> NamespaceView:
        """The namespace as last seen (possibly lagging). Raises InventoryUnavailable."""

    def confirm(self, namespace: str) -> NamespaceView:
        """A fresh, consistent read of the namespace, used before denying on cached state.
        Raises InventoryUnavailable."""

    def views(self) -> list[NamespaceView]:
        """Every namespace as last seen, for the periodic violation scan."""

    def observe(self, req: AdmissionRequest) -> None:
        """Told of every request netguard allowed at the validating stage (never dry-run)."""

    def start(self) -> None:
        """Begin keeping current; called in each server worker after fork."""

    def stop(self) -> None: ...
