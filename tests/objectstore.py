"""Single-object REST for tests/watchserver.py: Secrets and admissionregistration.k8s.io/v1
Validating/MutatingWebhookConfigurations, with GET, POST, PUT and PATCH as kube-apiserver answers
them, including optimistic concurrency: a PUT or PATCH whose metadata.resourceVersion is not the
stored one gets 409 Conflict, a POST of an existing name 409 AlreadyExists, a missing object 404.

PATCH takes strategic merge (`webhooks` merged by `name`, as the real type declares) and JSON
merge patches. Tests script it: `put`/`get` objects, `fail` the next requests with a status,
`before` runs a function before a matching request is answered (to interleave two writers).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any, Callable

SECRETS = "secrets"
VALIDATING = "validatingwebhookconfigurations"
MUTATING = "mutatingwebhookconfigurations"
KINDS = {SECRETS: ("Secret", "v1"),
         VALIDATING: ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1"),
         MUTATING: ("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1")}
ADMISSION = ["apis", "admissionregistration.k8s.io", "v1"]
MERGE_KEYS = {"webhooks": "name"}  # patchMergeKey of the lists strategic merge knows here


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@dataclass
class _Hook:
    method: str | None
    resource: str | None
    run: Callable[[str, tuple[str, str, str], Any], Any] | None
    status: int | None
    remaining: int | None


class ObjectStore:
    def __init__(self, next_revision: Callable[[], int]) -> None:
        self._next_revision = next_revision
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._hooks: list[_Hook] = []
        self.writes: list[tuple[str, str, str]] = []  # (method, resource, name) of every accepted write

    # ------------------------------------------------------------------ scripting

    def put(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        kind, api_version = KINDS[resource]
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", api_version)
        meta = obj.setdefault("metadata", {})
        with self._lock:
            meta["resourceVersion"] = str(self._next_revision())
            self._objects[(resource, meta.get("namespace", ""), meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, resource: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((resource, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def fail(self, status_code: int, method: str | None = None, resource: str | None = None,
             count: int | None = 1) -> None:
        """Answer `status_code` to the next `count` matching requests (None: always)."""
        with self._lock:
            self._hooks.append(_Hook(method, resource, None, status_code, count))

    def before(self, run: Callable[[str, tuple[str, str, str], Any], Any], method: str | None = None,
               resource: str | None = None, count: int | None = 1) -> None:
        """Call `run(method, route, body)` (in the server's thread) before answering the next
        `count` matching requests (None: every one)."""
        with self._lock:
            self._hooks.append(_Hook(method, resource, run, None, count))

    # ------------------------------------------------------------------ serving

    @staticmethod
    def route(path: str) -> tuple[str, str, str] | None:
        """(resource, namespace, name) of a path this store serves; name "" for a collection."""
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (5, 6) and parts[4] == SECRETS:
            return SECRETS, parts[3], parts[5] if len(parts) == 6 else ""
        if parts[:3] == ADMISSION and len(parts) in (4, 5) and parts[3] in (VALIDATING, MUTATING):
            return parts[3], "", parts[4] if len(parts) == 5 else ""
        return None

    def _hook_for(self, method: str, resource: str) -> _Hook | None:
        with self._lock:
            for hook in self._hooks:
                if hook.method in (None, method) and hook.resource in (None, resource):
                    if hook.remaining is not None:
                        hook.remaining -= 1
                        if hook.remaining <= 0:
                            self._hooks.remove(hook)
                    return hook
        return None

    def handle(self, method: str, route: tuple[str, str, str], body: Any,
               content_type: str) -> tuple[int, dict[str, Any]]:
        resource, namespace, name = route
        hook = self._hook_for(method, resource)
        if hook is not None and hook.run is not None:
            hook.run(method, route, body)
        if hook is not None and hook.status is not None:
            return hook.status, status(hook.status, "Forbidden" if hook.status == 403 else "InternalError",
                                       f"scripted failure {hook.status}")
        kind, _ = KINDS[resource]
        key = (resource, namespace, name)
        with self._lock:
            current = self._objects.get(key)
            if method == "GET":
                if current is None:
                    return 404, status(404, "NotFound", f'{resource} "{name}" not found')
                return 200, copy.deepcopy(current)
            if method == "POST":
                name = (body.get("metadata") or {}).get("name", "")
                key = (resource, namespace, name)
                if key in self._objects:
                    return 409, status(409, "AlreadyExists", f'{resource} "{name}" already exists')
                return self._store(method, key, body, 201)
            if current is None:
                return 404, status(404, "NotFound", f'{resource} "{name}" not found')
            if method == "PATCH":
                if "merge-patch" not in content_type:
                    return 415, status(415, "UnsupportedMediaType", f"patch type {content_type}")
                strategic = "strategic" in content_type
                body = _merge(copy.deepcopy(current), body, strategic)
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if method == "PUT" and not wanted:
                return 422, status(422, "Invalid", "metadata.resourceVersion: must be specified for an update")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                return 409, status(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the '
                                   "object has been modified; please apply your changes to the latest version "
                                   "and try again")
            return self._store(method, key, body, 200, kind)

    def _store(self, method: str, key: tuple[str, str, str], body: dict[str, Any], code: int,
               kind: str | None = None) -> tuple[int, dict[str, Any]]:
        obj = copy.deepcopy(body)
        resource, namespace, name = key
        obj["kind"], obj["apiVersion"] = KINDS[resource]
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        meta["resourceVersion"] = str(self._next_revision())
        self._objects[key] = obj
        self.writes.append((method, resource, name))
        return code, copy.deepcopy(obj)


def _merge(target: Any, patch: Any, strategic: bool, field: str = "") -> Any:
    """RFC 7386 merge, and strategic merge's merging of keyed lists."""
    if isinstance(patch, list) and strategic and field in MERGE_KEYS and isinstance(target, list):
        key = MERGE_KEYS[field]
        out = list(target)
        for item in patch:
            at = next((i for i, old in enumerate(out) if old.get(key) == item.get(key)), None)
            if at is None:
                out.append(item)
            else:
                out[at] = _merge(out[at], item, strategic)
        return out
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = _merge(out.get(name), value, strategic, name)
    return out
