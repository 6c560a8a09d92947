"""The live inventory: Namespaces, NetworkPolicies and Services listed and watched from the API.

Three reflectors (webhook/inventory/watch.py), one per collection, in daemon threads started by
`start()` (never at import: gunicorn forks after building the app, and threads do not survive a
fork), and those of the served cluster-wide and CNI policies (webhook/inventory/clusterwatch.py).
One slim index: namespace -> immutable `NamespaceView`, swapped whole under a lock on each event;
readers take no lock. Kept is what the rules read: labels, each policy as a `PolicySummary`, the
LoadBalancers' names; names interned, equal summaries shared (bench/inventory_memory.py).

`view()` answers from the index, which lags the API by the watch delay. `confirm()` is a live,
consistent read used before a denial. It does not write into the index: the watch delivers the
same change moments later, and a live read merged in could be overwritten by an older event
still in flight. A namespace the index has not seen yet (created a moment ago) is read live.

Requests: plain GETs through the client's ApiClient (kube.py); views built as views.py builds them.
RBAC: list and watch namespaces, services and networkpolicies.networking.k8s.io cluster-wide,
get namespaces; list and watch the cluster-wide and CNI policy kinds (manifests/base/rbac.yaml).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

from kubernetes.client.api_client import ApiClient
from kubernetes.client.exceptions import ApiException

from webhook.core.labels import is_load_balancer, missing_labels
from webhook.core.request import AdmissionRequest
from webhook.core.view import NamespaceView, PolicySummary
from webhook.inventory import kube
from webhook.inventory import views as build
from webhook.inventory.clusterwatch import ClusterPolicies
from webhook.inventory.interning import PolicySummaries, Shared
from webhook.inventory.kube import COLLECTIONS as PATHS
from webhook.inventory.kube import NAMESPACED as NAMESPACED_PATHS
from webhook.inventory.kube import LIVE_READ_TIMEOUT, RawApi
from webhook.inventory.protocol import InventoryUnavailable
from webhook.inventory.watch import Reflector, Timing, describe

log = logging.getLogger("netguard.cluster")

NAMESPACES, POLICIES, SERVICES = "namespaces", "networkpolicies", "services"
RESOURCES = (NAMESPACES, POLICIES, SERVICES)
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_NAMES: frozenset[str] = frozenset()


def _newer(a: str, b: str) -> str:
    """The newer of two resourceVersions, `b` when they cannot be compared.

    resourceVersions are opaque to clients, though etcd revisions in practice:
    https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
    The result only feeds NamespaceView.resource_version (the audit log), never a decision.
    """
    if a.isdigit() and b.isdigit():
        return a if (len(a), a) > (len(b), b) else b
    return b or a


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


class ClusterInventory:
    """Inventory (webhook/inventory/protocol.py) kept current by list + watch against the Kubernetes API.

    `api_client` is a configured kubernetes.client.ApiClient (requests go through it, so its
    authentication, TLS and proxy settings apply); `from_kubeconfig()` and `in_cluster()` build
    one. `timing` sets page size, watch timeout and backoff;
    `confirm_timeout` the (connect, read) timeout of each live read; a watch failing for longer
    than `unhealthy_after` seconds makes `healthy()` False. `namespace_labels` names the only
    namespace label keys worth keeping (the rules read just `labels.fromNamespace`); None keeps
    them all, and so does a cluster serving cluster-wide policy kinds (`_keep_labels`). `required_labels` (`labels.required`) makes views record which Services and
    NetworkPolicies lack any of them, for the periodic scan.
    """

    lags = True  # a watch cache: answers that rest on it are confirmed live

    def __init__(self, api_client: ApiClient, *, timing: Timing = Timing(),
                 confirm_timeout: tuple[float, float] = LIVE_READ_TIMEOUT,
                 unhealthy_after: float = 60.0, namespace_labels: Iterable[str] | None = None,
                 required_labels: Iterable[str] = (), owns_client: bool = False) -> None:
        self._api_client = api_client
        self._owns_client = owns_client
        self._api = RawApi(api_client)
        self.confirm_timeout = confirm_timeout
        self.unhealthy_after = unhealthy_after
        self._configured_labels = frozenset(namespace_labels) if namespace_labels is not None else None
        self._required = tuple(required_labels)
        self._lock = threading.Lock()  # writers only: readers take a view without it
        self._views: dict[str, NamespaceView] = {}
        self._policy = PolicySummaries()  # a policy's summary, shared with its equals
        self._names = Shared(16_384)
        self._policy_maps = Shared(16_384)
        # One list at a time: the three threads parsing pages at once would triple the transient
        # memory (and the parsing holds the GIL anyway). Also spares the apiserver a burst.
        self._list_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self.watch_restarts = 0
        self.last_error: str | None = None
        handlers = {
            NAMESPACES: (self._relist_namespaces, self._namespace_event),
            POLICIES: (self._relist_policies, self._policy_event),
            SERVICES: (self._relist_services, self._service_event),
        }
        self.reflectors: dict[str, Reflector] = {
            name: Reflector(name, self._api.collection(PATHS[name]), *handlers[name], self._stop,
                            timing, on_restart=self._restarted, list_lock=self._list_lock)
            for name in RESOURCES}
        self.cluster_policies = ClusterPolicies(self._api, self._stop, timing, list_lock=self._list_lock,
                                                on_restart=self._restarted,  # clusterwatch.py
                                                on_new_kinds=self._cluster_kinds_added)

    @property
    def _keep_labels(self) -> frozenset[str] | None:
        """The namespace label keys worth keeping: those asked for, or every one once the cluster
        serves a cluster-wide or CNI policy kind, whose namespace selectors may read any label
        (a Calico `namespaceSelector: team == 'payments'`, an AdminNetworkPolicy's
        `subject.namespaces`). The Namespace list waits for discovery (`_run_namespaces`); a kind
        served later has the Namespaces listed again (`_cluster_kinds_added`)."""
        return None if self.cluster_policies.reflectors else self._configured_labels

    def _cluster_kinds_added(self) -> None:
        """A policy API installed since the start: keep every label, list the Namespaces again."""
        if self._configured_labels is not None:
            self.reflectors[NAMESPACES].relist()

    def _run_namespaces(self) -> None:
        discovered = self.cluster_policies.discovered_event
        while not self._stop.is_set():  # ends with stop(); discovery is retried until then
            if discovered.wait(0.2):
                self.reflectors[NAMESPACES].run()
                return

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        **kwargs: Any) -> "ClusterInventory":
        return cls(kube.api_client(kube.kubeconfig_configuration(path, context)), owns_client=True, **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> "ClusterInventory":
        return cls(kube.api_client(kube.in_cluster_configuration()), owns_client=True, **kwargs)

    # ------------------------------------------------------------------ Inventory

    def ready(self) -> bool:
        return all(r.synced for r in self.reflectors.values()) and self.cluster_policies.ready()

    def view(self, namespace: str) -> NamespaceView:
        if not self.ready():
            waiting = [n for n, r in self.reflectors.items() if not r.synced] + self.cluster_policies.waiting()
            raise InventoryUnavailable(f"netguard has not finished listing {', '.join(waiting)}")
        if not namespace:  # a cluster-scoped request: decided on the namespaces with LoadBalancers
            return build.dependents_view(list(self._views.values()), self.cluster_policies.summaries)
        view = self._views.get(namespace)
        if view is not None and view.known:
            return self.cluster_policies.attach(view)
        # Not seen by the Namespace watch yet (perhaps created in the same apply): ask the API.
        return self.confirm(namespace)

    def confirm(self, namespace: str) -> NamespaceView:
        if not namespace:  # decided on every namespace with LoadBalancers: the watched state
            return self.view(namespace)  # stands (docs/clusterpolicies.md, the guard)
        try:
            policies, policies_rv = self._live_list(POLICIES, namespace)
            services, services_rv = self._live_list(SERVICES, namespace)
            ns = self._live_namespace(namespace)
        except Exception as exc:
            raise InventoryUnavailable(
                f"cannot read namespace {namespace!r} from the Kubernetes API: {describe(exc)}") from exc
        summaries = (PolicySummary.of(p) for p in policies)
        # The cluster-wide policies as last watched: read live, only the namespace's own objects.
        return self.cluster_policies.attach(NamespaceView(
            name=namespace,
            labels=build.namespace_labels(ns, self._keep_labels) if ns is not None else _EMPTY,
            policies=MappingProxyType({s.name: s for s in summaries}),
            load_balancers=frozenset(str(_metadata(s).get("name", "")) for s in services
                                     if is_load_balancer(s)),
            known=ns is not None,
            resource_version=_newer(policies_rv, services_rv),
            source="live"))

    def views(self) -> list[NamespaceView]:
        return [self.cluster_policies.attach(v) for v in self._views.values()]

    def observe(self, req: AdmissionRequest) -> None:
        # The watch reports what the API stored, which is what counts (a later webhook or a
        # failed write may still have stopped what we allowed).
        pass

    def start(self) -> None:
        if self._stopped:
            raise RuntimeError("a stopped ClusterInventory cannot be started again")
        if self._threads:
            return
        runs = {name: r.run for name, r in self.reflectors.items()} | {
            NAMESPACES: self._run_namespaces, "clusterpolicies": self.cluster_policies.run}
        for name, run in runs.items():
            thread = threading.Thread(target=run, name=f"netguard-watch-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped = True
        self._stop.set()
        for reflector in self.reflectors.values():
            reflector.close()
        self.cluster_policies.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads + self.cluster_policies.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1fs", thread.name, timeout)
        if self._owns_client:
            self._api_client.close()

    # ------------------------------------------------------------------ health

    def healthy(self) -> bool:
        """Ready, and no watch has been failing for longer than `unhealthy_after` seconds."""
        now = time.monotonic()
        return self.ready() and all(
            r.failing_since is None or now - r.failing_since < self.unhealthy_after
            for r in self.reflectors.values())

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    @property
    def state(self) -> dict[str, Any]:
        """For /readyz and metrics: plain values only."""
        with self._lock:
            views = list(self._views.values())
        return {
            "ready": self.ready(),
            "healthy": self.healthy(),
            "synced": {n: r.synced for n, r in self.reflectors.items()},
            "connected": {n: r.connected for n, r in self.reflectors.items()},
            "resource_version": {n: r.resource_version for n, r in self.reflectors.items()},
            "restarts": {n: r.restarts for n, r in self.reflectors.items()},
            "watch_restarts": self.watch_restarts,
            "last_error": self.last_error,
            "namespaces": sum(1 for v in views if v.known),
            "policies": sum(len(v.policies) for v in views),
            "load_balancers": sum(len(v.load_balancers) for v in views),
            "cluster_policies": len(self.cluster_policies.summaries),
        }

    def _restarted(self, reflector: Reflector, why: str) -> None:
        with self._lock:
            self.watch_restarts += 1
            self.last_error = f"{reflector.name}: {why}"

    # ------------------------------------------------------------------ live reads

    def _live_list(self, resource: str, namespace: str) -> tuple[list[Mapping[str, Any]], str]:
        """Every item of a namespaced collection, read without resourceVersion: a consistent read."""
        return self._api.list_all(NAMESPACED_PATHS[resource].format(quote(namespace, safe="")),
                                  self.confirm_timeout)

    def _live_namespace(self, namespace: str) -> Mapping[str, Any] | None:
        try:
            return self._api.get_json(f"{PATHS[NAMESPACES]}/{quote(namespace, safe='')}",
                                      timeout=self.confirm_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ index updates

    def _key(self, obj: Mapping[str, Any]) -> tuple[str, str] | None:
        metadata = _metadata(obj)
        namespace, name = metadata.get("namespace"), metadata.get("name")
        if not namespace or not name:
            log.warning("ignoring an object without namespace or name: %.200r", metadata)
            return None
        return sys.intern(str(namespace)), sys.intern(str(name))

    def _policy_map(self, policies: dict[str, PolicySummary]) -> Mapping[str, PolicySummary]:
        if not policies:
            return _EMPTY
        # Summaries are shared already, so the tuple of them (by name) identifies the map.
        return self._policy_maps(MappingProxyType(policies),
                                 key=tuple(policies[name] for name in sorted(policies)))

    def _put(self, namespace: str, update: Callable[[NamespaceView], NamespaceView]) -> None:
        """Swap in update(current view). Call with the lock held."""
        current = self._views.get(namespace) or NamespaceView(name=namespace)
        view = update(current)
        if view.known or view.policies or view.load_balancers or view.unlabelled:
            self._views[namespace] = view
        else:  # nothing left to say about it: an unknown namespace reads the same
            self._views.pop(namespace, None)

    def _replace_all(self, fresh: Mapping[str, Any], version: str,
                     changes: Callable[[NamespaceView, Any], dict[str, Any]]) -> None:
        """After a list: every namespace's view gets changes(view, fresh.get(ns)), even those
        not listed, and the list's resourceVersion; one copy per view (views are 100,000 in a
        large cluster, and each copy works out the view's derived fields again)."""
        with self._lock:
            for namespace in set(self._views) | set(fresh):
                self._put(namespace, lambda v: replace(
                    v, resource_version=_newer(v.resource_version, version),
                    **changes(v, fresh.get(namespace))))

    def _relist_namespaces(self, items: Iterable[Mapping[str, Any]], version: str) -> None:
        fresh = build.labels_by_namespace(items, self._keep_labels)
        self._replace_all(fresh, version, lambda v, labels: dict(
            labels=labels if labels is not None else _EMPTY, known=labels is not None))

    # The lists stream in page by page: each is read once and summarised as it comes, never
    # held whole (bench/inventory_memory.py measures the peak).

    def _relist_policies(self, items: Iterable[Mapping[str, Any]], version: str) -> None:
        tally = build.UnlabelledTally("NetworkPolicy", self._required)
        fresh = build.policies_by_namespace(tally.passing(o for o in items if self._key(o)), self._policy)
        maps = {ns: self._policy_map(p) for ns, p in fresh.items()}
        self._replace_all(maps, version, lambda v, p: dict(policies=p or _EMPTY))
        self._relist_unlabelled("NetworkPolicy", tally.found, version)

    def _relist_services(self, items: Iterable[Mapping[str, Any]], version: str) -> None:
        tally = build.UnlabelledTally("Service", self._required)
        fresh = build.load_balancers_by_namespace(tally.passing(o for o in items if self._key(o)))
        shared = {ns: self._names(frozenset(names)) for ns, names in fresh.items()}
        self._replace_all(shared, version, lambda v, names: dict(load_balancers=names or _NO_NAMES))
        self._relist_unlabelled("Service", tally.found, version)

    def _relist_unlabelled(self, kind: str, fresh: dict[str, build.Unlabelled], version: str) -> None:
        """After a list of `kind`: each view's objects of that kind lacking required labels are
        the listed ones (nothing to do when no label is required)."""
        if not self._required:
            return

        def changes(v: NamespaceView, found: dict | None) -> dict[str, Any]:
            kept = {key: keys for key, keys in v.unlabelled.items() if key[0] != kind}
            kept.update(found or {})
            return dict(unlabelled=MappingProxyType(kept) if kept else _EMPTY)

        self._replace_all(fresh, version, changes)

    def _namespace_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        name = _metadata(obj).get("name")
        if not name:
            return
        version = str(_metadata(obj).get("resourceVersion") or "")
        deleted = kind == "DELETED"
        labels = _EMPTY if deleted else build.namespace_labels(obj, self._keep_labels)
        with self._lock:
            self._put(sys.intern(str(name)), lambda v: replace(
                v, labels=labels, known=not deleted,
                resource_version=_newer(v.resource_version, version)))

    def _policy_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        key = self._key(obj)
        if not key:
            return
        namespace, name = key
        version = str(_metadata(obj).get("resourceVersion") or "")
        summary = None if kind == "DELETED" else self._policy(obj)
        missing = () if kind == "DELETED" else missing_labels(obj, self._required)

        def update(v: NamespaceView) -> NamespaceView:
            policies = {k: p for k, p in v.policies.items() if k != name}
            if summary is not None:
                policies[name] = summary
            return replace(v.with_unlabelled("NetworkPolicy", name, missing),
                           policies=self._policy_map(policies),
                           resource_version=_newer(v.resource_version, version))

        with self._lock:
            self._put(namespace, update)

    def _service_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        key = self._key(obj)
        if not key:
            return
        namespace, name = key
        version = str(_metadata(obj).get("resourceVersion") or "")
        balancer = kind != "DELETED" and is_load_balancer(obj)
        missing = () if kind == "DELETED" else missing_labels(obj, self._required)

        def update(v: NamespaceView) -> NamespaceView:
            names = v.load_balancers | {name} if balancer else v.load_balancers - {name}
            return replace(v.with_unlabelled("Service", name, missing),
                           load_balancers=self._names(frozenset(names)) if names else _NO_NAMES,
                           resource_version=_newer(v.resource_version, version))

        with self._lock:
            self._put(namespace, update)
