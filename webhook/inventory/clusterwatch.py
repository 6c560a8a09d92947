"""The live inventory's cluster-wide and CNI policies: the kinds of webhook/core/clusterpolicy.py
that the cluster serves (API discovery through webhook/inventory/kube.py; a group it does not
serve is no error), listed and watched by one reflector each (webhook/inventory/watch.py).

What is kept is only the summaries the rules read (webhook/core/clusterscope.py): for 1,000
cluster-wide policies, kilobytes. Views are not stored with them: the live inventory attaches
the ones that apply as it hands a view out (`attach`, webhook/inventory/views.py `ClusterAttacher`).
Discovery happens when the inventory starts, and again every `Timing.rediscover_seconds`: a
policy API installed later (Calico or Cilium added to a running cluster) is listed and watched
from then on, without a restart. Readiness waits only for the kinds the first discovery found; a
later kind counts once its list is in. A kind that stops being served keeps its reflector, which
backs off on the API's 404s; its objects were deleted with their CRD, and their watch said so.
RBAC: get on the discovery paths (every authenticated user may), list and watch each kind.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Mapping

from webhook.core import clusterpolicy
from webhook.core.clusterscope import ClusterSummary
from webhook.inventory import kube
from webhook.core.view import NamespaceView
from webhook.inventory.kube import RawApi
from webhook.inventory.views import ClusterAttacher
from webhook.inventory.watch import Reflector, Timing, describe

log = logging.getLogger("netguard.cluster")

Key = tuple[str, str, str]  # (kind, namespace, name)


class ClusterPolicies:
    """Summaries of the served cluster-wide and CNI policies, kept current. `summaries` is an
    immutable tuple swapped whole on each change, so readers take no lock."""

    def __init__(self, api: RawApi, stop: threading.Event, timing: Timing = Timing(), *,
                 list_lock: threading.Lock | None = None,
                 on_restart: Callable[[Reflector, str], None] | None = None,
                 on_new_kinds: Callable[[], None] | None = None) -> None:
        self._api = api
        self._on_new_kinds = on_new_kinds  # a later discovery found kinds served since
        self._stop = stop
        self._timing = timing
        self._list_lock = list_lock
        self._on_restart = on_restart
        self._lock = threading.Lock()
        self._objects: dict[Key, tuple[ClusterSummary, ...]] = {}
        self.summaries: tuple[ClusterSummary, ...] = ()
        self.reflectors: dict[str, Reflector] = {}  # swapped whole when kinds are added: read without a lock
        self._first: frozenset[str] = frozenset()  # the kinds of the first discovery: ready() waits for them
        self.discovered = False
        self.discovered_event = threading.Event()  # set with `discovered`: something to wait on
        self.last_error: str | None = None
        self._threads: list[threading.Thread] = []
        self._attach = ClusterAttacher()

    def attach(self, view: NamespaceView) -> NamespaceView:
        """`view` with the policies as last watched that apply to its namespace."""
        return self._attach(view, self.summaries)

    def ready(self) -> bool:
        reflectors = self.reflectors
        return self.discovered and all(reflectors[kind].synced for kind in self._first)

    def waiting(self) -> list[str]:
        if not self.discovered:
            return ["the cluster-wide policy APIs (discovery)"]
        return [kind for kind in sorted(self._first) if not self.reflectors[kind].synced]

    def discover(self) -> bool:
        """Find the served kinds and make reflectors for those not read yet; False (and
        last_error) on failure."""
        return self._discover() is not None

    def _discover(self) -> dict[str, Reflector] | None:
        """The reflectors made for newly served kinds ({} when none), or None on failure."""
        timeout = (self._timing.connect_timeout, self._timing.list_read_timeout)
        try:
            served = kube.discover_cluster_policies(self._api, timeout)
        except Exception as exc:  # unreachable, or an answer of another shape: retried
            self.last_error = f"discovery: {describe(exc)}"
            return None
        fresh = {kind: Reflector(kind, self._api.collection(path), self._on_list(kind, api_version),
                                 self._on_event(kind, api_version), self._stop, self._timing,
                                 on_restart=self._on_restart, list_lock=self._list_lock)
                 for kind, (path, api_version) in sorted(served.items()) if kind not in self.reflectors}
        if fresh:
            self.reflectors = {**self.reflectors, **fresh}
        if not self.discovered:
            self._first = frozenset(self.reflectors)
            self.discovered = True
            self.discovered_event.set()
            log.info("cluster-wide and CNI policy kinds served: %s", ", ".join(sorted(served)) or "none")
        elif fresh:
            log.info("cluster-wide and CNI policy kinds served since the last look: %s", ", ".join(fresh))
        return fresh

    def run(self) -> None:
        """Thread body: discover (retrying, bounded by the stop event), run each reflector in a
        thread of its own, then look again every rediscover_seconds until stopped."""
        failures = 0
        fresh = None
        while not self._stop.is_set() and fresh is None:
            fresh = self._discover()
            if fresh is None:
                failures += 1
                self._stop.wait(self._timing.backoff(failures))
        while fresh is not None and not self._stop.is_set():
            for name, reflector in fresh.items():
                thread = threading.Thread(target=reflector.run, name=f"netguard-watch-{name}", daemon=True)
                self._threads.append(thread)
                thread.start()
            if self._stop.wait(self._timing.rediscover_seconds):
                return
            fresh = self._discover() or {}  # a failed look is tried again next time
            if fresh and self._on_new_kinds is not None:
                self._on_new_kinds()

    def close(self) -> None:
        for reflector in self.reflectors.values():
            reflector.close()

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    # ------------------------------------------------------------------ index updates

    @staticmethod
    def _typed(obj: Mapping[str, Any], kind: str, api_version: str) -> dict[str, Any]:
        return {**obj, "kind": obj.get("kind") or kind, "apiVersion": obj.get("apiVersion") or api_version}

    @staticmethod
    def _key(kind: str, obj: Mapping[str, Any]) -> Key:
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        return kind, str(metadata.get("namespace") or ""), str(metadata.get("name") or "")

    def _swap(self) -> None:
        self.summaries = tuple(s for key in sorted(self._objects) for s in self._objects[key])

    def _on_list(self, kind: str, api_version: str) -> Callable[[Iterable[Mapping[str, Any]], str], None]:
        def relist(items: Iterable[Mapping[str, Any]], version: str) -> None:
            fresh = {self._key(kind, o): clusterpolicy.summarize(self._typed(o, kind, api_version)) for o in items}
            with self._lock:
                self._objects = {k: v for k, v in self._objects.items() if k[0] != kind}
                self._objects.update(fresh)
                self._swap()
        return relist

    def _on_event(self, kind: str, api_version: str) -> Callable[[str, Mapping[str, Any]], None]:
        def event(change: str, obj: Mapping[str, Any]) -> None:
            key = self._key(kind, obj)
            with self._lock:
                if change == "DELETED":
                    self._objects.pop(key, None)
                else:
                    self._objects[key] = clusterpolicy.summarize(self._typed(obj, kind, api_version))
                self._swap()
        return event
