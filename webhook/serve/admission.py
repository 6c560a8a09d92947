"""Joins the pure decision core to an inventory: which view to decide on, when to confirm a
denial with a live read, what failureMode answers, and what the inventory is told afterwards.

No Flask here either, so the whole admission path can be tested without HTTP.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from webhook.core import decide
from webhook.core.outcome import Decision
from webhook.core.request import AdmissionRequest
from webhook.core.settings import Settings
from webhook.core.view import NamespaceView
from webhook.inventory.protocol import Inventory, InventoryUnavailable

STAGES = ("validate", "mutate")


@dataclass
class Counters:
    """How often a live read overturned a denial the cache would have made."""

    overturned: int = 0
    confirmed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, overturned: bool) -> None:
        with self._lock:
            if overturned:
                self.overturned += 1
            else:
                self.confirmed += 1


class Evaluation(NamedTuple):  # one per call: a NamedTuple is built faster than a frozen dataclass
    decision: Decision
    state: str  # where the namespace view came from: cache, live or unknown
    resource_version: str = ""  # of the newest object the namespace view was built from


class Admission:
    def __init__(self, settings: Settings, inventory: Inventory) -> None:
        self.settings = settings
        self.inventory = inventory
        self.counters = Counters()
        self.on_live_read: Callable[[bool], None] = lambda overturned: None
        # An inventory whose views never lag (the offline one: its files and the requests it was
        # told of are the whole truth) has nothing to confirm.
        self._lags = getattr(inventory, "lags", True)

    def evaluate(self, stage: str, req: AdmissionRequest) -> Evaluation:
        core = decide.validate if stage == "validate" else decide.mutate
        try:
            if not self.inventory.ready():
                raise InventoryUnavailable("netguard has not finished reading cluster state")
            # Labelling a cluster-scoped policy reads no namespace: no view of every namespace
            # with LoadBalancers (the guard's, built per call) for it.
            view = (NamespaceView(name="") if stage == "mutate" and not req.namespace
                    else self.inventory.view(req.namespace))
        except InventoryUnavailable as exc:
            return self._unknown(stage, req, str(exc))
        decision = core(req, view, self.settings)
        # Resting on cached state: read it live first. A cluster-scoped decision rests on every
        # namespace with LoadBalancers, and stands on the watched state (docs/clusterpolicies.md).
        if decision.confirm_live and self._lags and req.namespace:
            try:
                live = self.inventory.confirm(req.namespace)
            except InventoryUnavailable as exc:
                return self._unknown(stage, req, str(exc))
            # Deciding is a pure function of what the view holds: the same state (the offline
            # inventory's, or a cache that did not lag) gives the same answer, so skip deciding
            # again. Compared by content: the live read's resourceVersion is always newer.
            same = live is view or live.fingerprint == view.fingerprint
            confirmed = decision if same else core(req, live, self.settings)
            overturned = confirmed.allowed != decision.allowed
            self.counters.count(overturned=overturned)
            self.on_live_read(overturned)
            decision, view = confirmed, live
        if stage == "validate" and decision.allowed and not req.dry_run:
            self.inventory.observe(req)
        return Evaluation(decision, view.source, view.resource_version)

    def _unknown(self, stage: str, req: AdmissionRequest, why: str) -> Evaluation:
        if stage == "validate":
            answer = decide.state_unknown(req, self.settings, why)
            if answer is not None:
                return Evaluation(answer, "unknown")
        # Nothing here needs cluster state: decide on what the request itself says.
        empty = NamespaceView(name=req.namespace)
        core = decide.validate if stage == "validate" else decide.mutate
        return Evaluation(core(req, empty, self.settings), "unknown")
