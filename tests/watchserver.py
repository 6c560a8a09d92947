"""A scriptable stand-in for kube-apiserver's list/watch endpoints, for tests and the benchmark.

It speaks the wire format the kubernetes client and webhook/inventory/watch.py read:
  LIST   -> {"kind": "...List", "apiVersion": ..., "metadata": {"resourceVersion": "N",
             "continue": ...}, "items": [...]}, paged with ?limit= and ?continue=
  WATCH  -> 200, Transfer-Encoding: chunked, one JSON event per line:
             {"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": {...}}
for Namespaces, NetworkPolicies and Services, cluster-wide and per namespace, and a GET of one
Namespace. One revision counter orders every change, as etcd's does.

Tests script it: `put`/`delete` objects (with `silent=True` the change is stored but no watch
event is sent -- a lagging watch), `bookmark`, `compact` (the next watch from an older version
gets 410 Gone, as an ERROR event or as HTTP 410), `error_event` (an ERROR event of another
code), `drop_watches` (cut open streams mid-way), `fail` (answer 500 or any status),
`refuse`/`accept` (close the listening socket and every connection, then listen again).
Every request is recorded in `requests` (path, query, headers, time). `tls=(cert, key)` serves
HTTPS.

`objects` (tests/objectstore.py) serves single Secrets and webhook configurations: GET, POST, PUT
and PATCH with resourceVersion conflicts (409), for the self-managed certificates.

Run as a script (`python tests/watchserver.py --namespaces 10000`) it serves a generated cluster
and prints its URL: the benchmark uses that to keep the server's memory out of its measurement.
"""

from __future__ import annotations

import copy
import itertools
import json
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit

import orjson

try:
    from tests.objectstore import ObjectStore
except ImportError:  # run as a script (bench/): tests/ itself is on the path
    from objectstore import ObjectStore  # type: ignore[no-redef]

NAMESPACES, POLICIES, SERVICES = "namespaces", "networkpolicies", "services"

# resource -> (kind, apiVersion, collection path prefix)
KINDS = {
    NAMESPACES: ("Namespace", "v1", "/api/v1"),
    POLICIES: ("NetworkPolicy", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1"),
    SERVICES: ("Service", "v1", "/api/v1"),
}


# With `cluster_policies=True`: the cluster-wide and CNI policy kinds (webhook/core/clusterpolicy.py),
# each as "GROUP/plural" -> (kind, apiVersion, collection path prefix), namespaced or not, with
# their discovery documents (GET /apis/GROUP and /apis/GROUP/VERSION).
CLUSTER_KINDS = {
    "policy.networking.k8s.io/adminnetworkpolicies":
        ("AdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1", "/apis/policy.networking.k8s.io/v1alpha1"),
    "policy.networking.k8s.io/baselineadminnetworkpolicies":
        ("BaselineAdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1", "/apis/policy.networking.k8s.io/v1alpha1"),
    "projectcalico.org/globalnetworkpolicies":
        ("GlobalNetworkPolicy", "projectcalico.org/v3", "/apis/projectcalico.org/v3"),
    "projectcalico.org/networkpolicies": ("NetworkPolicy", "projectcalico.org/v3", "/apis/projectcalico.org/v3"),
    "cilium.io/ciliumclusterwidenetworkpolicies":
        ("CiliumClusterwideNetworkPolicy", "cilium.io/v2", "/apis/cilium.io/v2"),
    "cilium.io/ciliumnetworkpolicies": ("CiliumNetworkPolicy", "cilium.io/v2", "/apis/cilium.io/v2"),
}
NAMESPACED_CLUSTER_KINDS = {"projectcalico.org/networkpolicies", "cilium.io/ciliumnetworkpolicies"}


def discovery_documents(kinds: dict[str, tuple[str, str, str]]) -> dict[str, dict[str, Any]]:
    """path -> APIGroup or APIResourceList for the served cluster policy kinds."""
    found: dict[str, dict[str, Any]] = {}
    for resource, (kind, api_version, _) in kinds.items():
        if resource not in CLUSTER_KINDS:
            continue
        group, version = api_version.split("/")
        found[f"/apis/{group}"] = {"kind": "APIGroup", "apiVersion": "v1", "name": group,
                                   "versions": [{"groupVersion": api_version, "version": version}],
                                   "preferredVersion": {"groupVersion": api_version, "version": version}}
        listing = found.setdefault(f"/apis/{api_version}", {"kind": "APIResourceList", "apiVersion": "v1",
                                                            "groupVersion": api_version, "resources": []})
        listing["resources"].append({"name": resource.split("/")[1], "kind": kind,
                                     "namespaced": resource in NAMESPACED_CLUSTER_KINDS,
                                     "verbs": ["get", "list", "watch"]})
    return found


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    resource: str  # namespaces | networkpolicies | services | namespace (a GET of one)
    namespace: str  # "" for a cluster-wide request
    watch: bool
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    status: int
    remaining: int | None  # None: until heal()
    resource: str | None
    watch: bool | None


def _encode(payload: Any) -> bytes:
    """Compact JSON. orjson, as kube-apiserver's Go encoder is fast: in the benchmark this server
    shares the machine's CPUs with the inventory it serves, and its encoding is not what is measured."""
    return orjson.dumps(payload)


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class WatchServer:
    """`tls`: (certificate file, key file) to serve HTTPS, as kube-apiserver does."""

    def __init__(self, tls: tuple[str, str] | None = None, cluster_policies: bool = False) -> None:
        self._tls = tls
        self.kinds = {**KINDS, **(CLUSTER_KINDS if cluster_policies else {})}
        self.discovery = discovery_documents(self.kinds)
        self._cond = threading.Condition()
        self.revision = 1
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in self.kinds}
        self._log: dict[str, list[tuple[int, dict[str, Any]]]] = {r: [] for r in self.kinds}
        self._compacted: dict[str, tuple[int, str]] = {}  # resource -> (revision, "event" | "http")
        self._drops = dict.fromkeys(self.kinds, 0)  # bumped by drop_watches(): open streams compare
        self._faults: list[_Fault] = []
        self._snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._snapshot_ids = itertools.count(1)
        self.requests: list[Request] = []
        self.objects = ObjectStore(self._bump)
        self.active_watches = dict.fromkeys(self.kinds, 0)
        self._connections: set[socket.socket] = set()  # open client connections (keep-alive)
        self._stopping = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def serve_cluster_policies(self) -> None:
        """Start serving the cluster-wide and CNI policy kinds, as installing their CRDs would."""
        with self._cond:
            for resource in CLUSTER_KINDS:
                self._objects.setdefault(resource, {})
                self._log.setdefault(resource, [])
                self._drops.setdefault(resource, 0)
                self.active_watches.setdefault(resource, 0)
            self.kinds = {**self.kinds, **CLUSTER_KINDS}
            self.discovery = discovery_documents(self.kinds)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "WatchServer":
        self._listen()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._close_listener()

    def __enter__(self) -> "WatchServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        httpd = _Server(("127.0.0.1", self.port), _Handler)
        if self._tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self._tls)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        httpd.api = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="watchserver", daemon=True)
        self._thread.start()

    def _close_listener(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def refuse(self) -> None:
        """Close the listening socket and every open connection: the server is down."""
        self._close_listener()
        self.drop_watches()
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def accept(self) -> None:
        """Listen again, on the same port."""
        self._listen()

    # ------------------------------------------------------------------ objects

    def _bump(self) -> int:
        with self._cond:
            self.revision += 1
            return self.revision

    def put(self, resource: str, obj: dict[str, Any], silent: bool = False) -> dict[str, Any]:
        """Create or replace an object; `silent` stores it without a watch event."""
        obj = copy.deepcopy(obj)
        kind, api_version, _ = self.kinds[resource]
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", api_version)
        metadata = obj.setdefault("metadata", {})
        key = (metadata.get("namespace", "") if resource != NAMESPACES else "", metadata["name"])
        with self._cond:
            self.revision += 1
            metadata["resourceVersion"] = str(self.revision)
            event = "MODIFIED" if key in self._objects[resource] else "ADDED"
            self._objects[resource][key] = obj
            if not silent:
                self._emit(resource, event, obj)
        return obj

    def put_many(self, resource: str, objects: Iterable[dict[str, Any]]) -> None:
        """Store objects without events and without copying them (the benchmark's bulk load)."""
        kind, api_version, _ = self.kinds[resource]
        with self._cond:
            for obj in objects:
                self.revision += 1
                obj.setdefault("kind", kind)
                obj.setdefault("apiVersion", api_version)
                metadata = obj["metadata"]
                metadata["resourceVersion"] = str(self.revision)
                key = (metadata.get("namespace", "") if resource != NAMESPACES else "", metadata["name"])
                self._objects[resource][key] = obj

    def delete(self, resource: str, name: str, namespace: str = "", silent: bool = False) -> None:
        key = ("" if resource == NAMESPACES else namespace, name)
        with self._cond:
            obj = copy.deepcopy(self._objects[resource].pop(key))
            self.revision += 1
            obj["metadata"]["resourceVersion"] = str(self.revision)
            if not silent:
                self._emit(resource, "DELETED", obj)

    def bookmark(self, resource: str) -> str:
        """Send a BOOKMARK at a new revision (as if other resources changed meanwhile)."""
        kind, api_version, _ = self.kinds[resource]
        with self._cond:
            self.revision += 1
            self._emit(resource, "BOOKMARK", {"kind": kind, "apiVersion": api_version,
                                              "metadata": {"resourceVersion": str(self.revision)}})
            return str(self.revision)

    def _emit(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        self._log[resource].append((self.revision, {"type": kind, "object": obj}))
        self._cond.notify_all()

    # ------------------------------------------------------------------ faults

    def compact(self, resource: str, how: str = "event") -> None:
        """Watches of `resource` from any version up to now get 410 Gone: as an ERROR event in a
        200 stream (`event`, what kube-apiserver does) or as an HTTP 410 (`http`). Open watches
        of it are cut, so the client must come back and meet the 410."""
        assert how in ("event", "http")
        with self._cond:
            self.revision += 1
            self._compacted[resource] = (self.revision, how)
        self.drop_watches(resource)

    def error_event(self, resource: str, code: int = 500, message: str = "etcd is unhappy") -> None:
        """An ERROR event other than 410 in open watches of `resource` (then the server goes on)."""
        with self._cond:
            self._emit(resource, "ERROR", status_body(code, "InternalError", message))

    def drop_watches(self, resource: str | None = None) -> None:
        """Cut open watch streams mid-way: no terminating chunk, the socket is shut."""
        with self._cond:
            for name in [resource] if resource else list(self.kinds):
                self._drops[name] += 1
            self._cond.notify_all()

    def fail(self, status: int = 500, count: int | None = None, resource: str | None = None,
             watch: bool | None = None) -> None:
        """Answer `status` to the next `count` matching requests (None: until heal())."""
        with self._cond:
            self._faults.append(_Fault(status, count, resource, watch))

    def heal(self) -> None:
        with self._cond:
            self._faults.clear()

    # ------------------------------------------------------------------ recorded requests

    def recorded(self, resource: str | None = None, watch: bool | None = None,
                 since: int = 0) -> list[Request]:
        with self._cond:
            return [r for r in self.requests[since:]
                    if (resource is None or r.resource == resource)
                    and (watch is None or r.watch == watch)]

    # ------------------------------------------------------------------ serving (handler side)

    def _fault_for(self, resource: str, watch: bool) -> int | None:
        with self._cond:
            for fault in self._faults:
                if (fault.resource in (None, resource)) and (fault.watch in (None, watch)):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault.status
        return None

    def _list(self, resource: str, namespace: str, query: dict[str, str]) -> dict[str, Any]:
        kind, api_version, _ = self.kinds[resource]
        limit = int(query.get("limit") or 0)
        token = query.get("continue", "")
        with self._cond:
            if token:
                snapshot_id, _, offset_text = token.partition(":")
                revision, items = self._snapshots[snapshot_id]
                offset = int(offset_text)
            else:
                revision = self.revision
                objects = self._objects[resource]
                keys = sorted(k for k in objects if not namespace or k[0] == namespace)
                items = [objects[k] for k in keys]
                offset = 0
                snapshot_id = ""
                if limit and len(items) > limit:
                    snapshot_id = str(next(self._snapshot_ids))
                    self._snapshots[snapshot_id] = (revision, items)
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        page = items[offset:offset + limit] if limit else items[offset:]
        if limit and offset + limit < len(items):
            metadata["continue"] = f"{snapshot_id}:{offset + limit}"
            metadata["remainingItemCount"] = len(items) - offset - limit
        elif snapshot_id:
            with self._cond:
                self._snapshots.pop(snapshot_id, None)
        return {"kind": f"{kind}List", "apiVersion": api_version, "metadata": metadata,
                "items": page}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is no news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked watch bodies

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and every response waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.api._cond:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.api._cond:
            self.api._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:  # the connection was cut under us (drop_watches, refuse)
            pass

    @property
    def api(self) -> WatchServer:
        return self.server.api  # type: ignore[attr-defined]

    def _send_json(self, status: int, payload: Any) -> None:
        body = _encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, path: str) -> tuple[str, str, str] | None:
        """(resource, namespace, name) for a path we serve."""
        parts = path.strip("/").split("/")
        if parts[:1] == ["apis"] and len(parts) >= 4 and parts[1] != "networking.k8s.io":
            resource = f"{parts[1]}/{parts[-1]}"
            if self.api.kinds.get(resource, ("", "", ""))[1] != f"{parts[1]}/{parts[2]}":
                return None
            if len(parts) == 4:
                return resource, "", ""
            if len(parts) == 6 and parts[3] == NAMESPACES and resource in NAMESPACED_CLUSTER_KINDS:
                return resource, parts[4], ""
            return None
        core = parts[:2] == ["api", "v1"]
        net = parts[:3] == ["apis", "networking.k8s.io", "v1"]
        rest = parts[2:] if core else parts[3:] if net else None
        if rest is None:
            return None
        if len(rest) == 1 and rest[0] in ((NAMESPACES, SERVICES) if core else (POLICIES,)):
            return rest[0], "", ""
        if core and len(rest) == 2 and rest[0] == NAMESPACES:
            return "namespace", "", rest[1]
        if len(rest) == 3 and rest[0] == NAMESPACES and rest[2] in ((SERVICES,) if core else (POLICIES,)):
            return rest[2], rest[1], ""
        return None

    def _objects(self, method: str) -> bool:
        """Serve a request of the object store (tests/objectstore.py); False if not one."""
        url = urlsplit(self.path)
        route = self.api.objects.route(url.path)
        if route is None:
            return False
        body: Any = None
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = json.loads(self.rfile.read(length))
        with self.api._cond:
            self.api.requests.append(Request(method, url.path, {}, route[0], route[1], False,
                                             {k.lower(): v for k, v in self.headers.items()}))
        code, payload = self.api.objects.handle(method, route, body, self.headers.get("Content-Type") or "")
        self._send_json(code, payload)
        return True

    def do_POST(self) -> None:
        if not self._objects("POST"):
            self._send_json(405, status_body(405, "MethodNotAllowed", self.path))

    def do_PUT(self) -> None:
        if not self._objects("PUT"):
            self._send_json(405, status_body(405, "MethodNotAllowed", self.path))

    def do_PATCH(self) -> None:
        if not self._objects("PATCH"):
            self._send_json(405, status_body(405, "MethodNotAllowed", self.path))

    def do_GET(self) -> None:
        if self._objects("GET"):
            return
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        route = self._route(url.path)
        watch = query.get("watch") in ("true", "1")
        resource, namespace, name = route or ("", "", "")
        with self.api._cond:
            self.api.requests.append(Request("GET", url.path, query, resource, namespace, watch,
                                             {k.lower(): v for k, v in self.headers.items()}))
        if route is None and url.path in self.api.discovery:
            self._send_json(200, self.api.discovery[url.path])
            return
        if route is None:
            self._send_json(404, status_body(404, "NotFound", f"no route for {url.path}"))
            return
        status = self.api._fault_for(resource, watch)
        if status is not None:
            self._send_json(status, status_body(status, "InternalError" if status >= 500 else "Failure",
                                                f"scripted failure {status}"))
            return
        if resource == "namespace":
            obj = self.api._objects[NAMESPACES].get(("", name))
            if obj is None:
                self._send_json(404, status_body(404, "NotFound", f'namespaces "{name}" not found'))
            else:
                self._send_json(200, obj)
        elif watch:
            self._watch(resource, namespace, query)
        else:
            self._send_json(200, self.api._list(resource, namespace, query))

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _watch(self, resource: str, namespace: str, query: dict[str, str]) -> None:
        api = self.api
        since = int(query.get("resourceVersion") or 0)
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        with api._cond:
            since = since or api.revision
            compacted, how = api._compacted.get(resource, (0, "event"))
            drops = api._drops[resource]
            position = next((i for i, (rev, _) in enumerate(api._log[resource]) if rev > since),
                            len(api._log[resource]))
        gone = since < compacted
        if gone and how == "http":
            self._send_json(410, status_body(410, "Expired", f"too old resource version: {since} ({compacted})"))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if gone:
            error = {"type": "ERROR", "object": status_body(
                410, "Expired", f"too old resource version: {since} ({compacted})")}
            self._chunk(json.dumps(error).encode() + b"\n")
            self._chunk(b"")
            return
        deadline = time.monotonic() + timeout
        with api._cond:
            api.active_watches[resource] += 1
        try:
            while True:
                with api._cond:
                    while (position >= len(api._log[resource]) and api._drops[resource] == drops
                           and not api._stopping and time.monotonic() < deadline):
                        api._cond.wait(max(0.0, deadline - time.monotonic()))
                    events = api._log[resource][position:]
                    position += len(events)
                    dropped = api._drops[resource] != drops or api._stopping
                if dropped:
                    # Mid-stream, without the terminating chunk: the client sees a broken body.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                for _, event in events:
                    obj_ns = (event["object"].get("metadata") or {}).get("namespace", "")
                    if event["type"] == "BOOKMARK" and not bookmarks:
                        continue
                    if namespace and event["type"] != "BOOKMARK" and obj_ns != namespace:
                        continue
                    self._chunk(_encode(event) + b"\n")
                if time.monotonic() >= deadline:
                    self._chunk(b"")  # timeoutSeconds is up: end the stream cleanly
                    return
        except OSError:
            self.close_connection = True
        finally:
            with api._cond:
                api.active_watches[resource] -= 1


# ---------------------------------------------------------------------- a generated cluster


def generated_cluster(server: WatchServer, namespaces: int, prefix: str = "team") -> None:
    """Per namespace: 3 NetworkPolicies (default-deny, allow by pod selector, allow from an
    ipBlock), 1 LoadBalancer and 2 ClusterIP Services, with labels and specs of realistic size."""

    def meta(name: str, ns: str, **labels: str) -> dict[str, Any]:
        return {"name": name, "namespace": ns, "uid": f"{ns}-{name}-0000-0000-000000000000",
                "creationTimestamp": "2024-05-01T10:00:00Z", "generation": 1,
                "labels": {"app.kubernetes.io/managed-by": "Helm", **labels},
                "annotations": {"meta.helm.sh/release-name": ns,
                                "meta.helm.sh/release-namespace": ns}}

    names = [f"{prefix}-{i:05d}" for i in range(namespaces)]
    server.put_many(NAMESPACES, ({"metadata": {
        "name": ns, "uid": f"{ns}-0000", "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"kubernetes.io/metadata.name": ns, "team": ns.split("-")[1], "env": "prod"}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}} for ns in names))
    server.put_many(POLICIES, (p for ns in names for p in (
        {"metadata": meta("default-deny", ns), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"metadata": meta("allow-web", ns), "spec": {
            "podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"protocol": "TCP", "port": 8080}]}]}},
        {"metadata": meta("allow-lb", ns), "spec": {
            "podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                         "ports": [{"protocol": "TCP", "port": 443}]}]}})))

    def service(name: str, ns: str, kind: str, index: int) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": kind, "selector": {"app": name}, "clusterIP": f"10.0.{index % 250}.{index % 200}",
            "clusterIPs": [f"10.0.{index % 250}.{index % 200}"], "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}]}
        status: dict[str, Any] = {"loadBalancer": {}}
        if kind == "LoadBalancer":
            spec["ports"][0]["nodePort"] = 30000 + index % 2000
            spec["externalTrafficPolicy"] = "Cluster"
            status = {"loadBalancer": {"ingress": [{"ip": f"203.0.113.{index % 250}"}]}}
        return {"metadata": meta(name, ns, app=name), "spec": spec, "status": status}

    server.put_many(SERVICES, (s for i, ns in enumerate(names) for s in (
        service("web", ns, "LoadBalancer", i), service("api", ns, "ClusterIP", i),
        service("db", ns, "ClusterIP", i))))


def generated_cluster_policies(server: WatchServer, count: int, namespaces: int, prefix: str = "team") -> None:
    """`count` cluster-wide policies: Calico GlobalNetworkPolicies denying ingress to the namespace
    of one team each (its `team` label), every tenth a CiliumClusterwideNetworkPolicy doing the
    same by the pod's namespace."""
    def policy(i: int) -> tuple[str, dict[str, Any]]:
        team = f"{i % max(namespaces, 1):05d}"
        if i % 10 == 9:
            return "cilium.io/ciliumclusterwidenetworkpolicies", {"metadata": {"name": f"deny-{i}"}, "spec": {
                "endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": f"{prefix}-{team}"}},
                "ingress": [{}]}}
        return "projectcalico.org/globalnetworkpolicies", {"metadata": {"name": f"deny-{i}"}, "spec": {
            "order": 1000, "selector": "all()", "namespaceSelector": f"team == '{team}'", "types": ["Ingress"]}}

    for resource, obj in map(policy, range(count)):
        server.put_many(resource, [obj])


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="serve a generated cluster's list/watch API")
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--cluster-policies", type=int, default=0,
                        help="serve the cluster-wide policy APIs, with this many policies")
    args = parser.parse_args(argv)
    server = WatchServer(cluster_policies=args.cluster_policies > 0)
    generated_cluster(server, args.namespaces)
    generated_cluster_policies(server, args.cluster_policies, args.namespaces)
    server.start()
    print(server.url, flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
