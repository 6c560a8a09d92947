"""AdmissionReview v1: parse what kube-apiserver sends, build what it accepts.

Pure: no Flask, no kubernetes client, no I/O. A malformed call raises `MalformedReview`, which
the HTTP layer turns into a 4xx; a policy outcome is always a `Decision` answered with HTTP 200
(kopf keeps these two families apart the same way: WebhookError vs AdmissionError).

Contract: https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
"""

from __future__ import annotations

from typing import Any, Mapping

from webhook.core.request import AdmissionRequest
from webhook.wire import shapes

API_VERSIONS = ("admission.k8s.io/v1",)
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class MalformedReview(ValueError):
    """The call is not a usable AdmissionReview; answered with HTTP `status` and a JSON message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _get(mapping: Mapping[str, Any], key: str, kind: type, where: str,
         required: bool = False) -> Any:
    value = mapping.get(key)
    if type(value) is kind:  # decoded JSON holds exact dicts, strs and bools: the usual answer
        return value
    if value is None:
        if required:
            raise MalformedReview(f"{where}.{key} is required")
        return None
    if not isinstance(value, kind):
        raise MalformedReview(f"{where}.{key} has the wrong type ({type(value).__name__})")
    return value


def parse_review(body: Any, decoded: bool = False) -> AdmissionRequest:
    """Validate the shape of a decoded AdmissionReview (webhook/wire/types.py ReviewRequest)
    and return its request.

    Only the fields netguard reads are checked, but each is checked for type, so no rule ever
    sees a list where it expects a map: the request's own fields here, the reviewed objects'
    metadata and spec in `check_object` and webhook/wire/shapes.py. `decoded`: the body is
    decoded JSON (jsoncodec.loads), not objects built from YAML or Python, and small enough for
    its specs to be looked up among those found fine (`shapes.spec_problem`).
    """
    if not isinstance(body, dict):
        raise MalformedReview("body must be a JSON object (an AdmissionReview)")
    api_version = body.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise MalformedReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    if body.get("kind") != "AdmissionReview":
        raise MalformedReview(f"kind must be AdmissionReview, got {body.get('kind')!r}")
    # Each field is read once; `_get` runs only when its type is not the exact one decoded JSON
    # gives (absent, null, or wrong: it raises or says what the field is). One call per field
    # cost a third of this function, on every admission call.
    request = body.get("request")
    if type(request) is not dict:
        request = _get(body, "request", dict, "AdmissionReview", required=True)
    get = request.get
    uid = get("uid")
    if type(uid) is not str:
        uid = _get(request, "uid", str, "request", required=True)
    if not uid:
        raise MalformedReview("request.uid must not be empty")
    kind = get("kind")
    if type(kind) is not dict:
        kind = _get(request, "kind", dict, "request", required=True)
    operation = get("operation")
    if type(operation) is not str:
        operation = _get(request, "operation", str, "request", required=True)
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    obj, old = get("object"), get("oldObject")
    if obj is not None and type(obj) is not dict:
        obj = _get(request, "object", dict, "request")
    if old is not None and type(old) is not dict:
        old = _get(request, "oldObject", dict, "request")
    if obj is None and operation in ("CREATE", "UPDATE"):
        raise MalformedReview(f"request.object is required for {operation}")
    if old is None and operation in ("UPDATE", "DELETE"):
        raise MalformedReview(f"request.oldObject is required for {operation}")
    kind_name = kind.get("kind")
    if type(kind_name) is not str:
        kind_name = _get(kind, "kind", str, "request.kind", required=True)
    group = _optional_str(kind, "group", "request.kind")
    if obj is not None:
        check_object(group, kind_name, obj, "request.object", decoded)
    if old is not None:
        check_object(group, kind_name, old, "request.oldObject", decoded)
    user_info = get("userInfo")
    if type(user_info) is not dict:
        user_info = _get(request, "userInfo", dict, "request") or {}
    options = get("options")
    if type(options) is not dict:
        options = _get(request, "options", dict, "request") or {}
    dry_run = get("dryRun")
    if type(dry_run) is not bool:
        dry_run = _get(request, "dryRun", bool, "request") or False
    return AdmissionRequest(
        uid, api_version, kind_name, group,
        _optional_str(request, "namespace", "request"),
        _optional_str(request, "name", "request"),
        operation,
        _optional_str(user_info, "username", "request.userInfo"),
        dry_run, obj, old,
        _optional_str(options, "fieldManager", "request.options"),
        _optional_str(request, "subResource", "request"),
    )


def _optional_str(mapping: Mapping[str, Any], key: str, where: str) -> str:
    """mapping[key] when it is a string, "" when absent or null, else MalformedReview."""
    value = mapping.get(key)
    if type(value) is str:
        return value
    return _get(mapping, key, str, where) or ""


def check_object(group: str, kind: str, obj: Mapping[str, Any], where: str, decoded: bool = False) -> None:
    """Labels and annotations must be maps of strings (the rules index them directly), and the
    spec of a reviewed kind must have its API shape (webhook/wire/shapes.py)."""
    metadata = obj.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        metadata = _get(obj, "metadata", dict, where)
    if metadata is not None:
        for field in ("labels", "annotations"):
            values = metadata.get(field)
            if values is not None and type(values) is not dict:
                values = _get(metadata, field, dict, f"{where}.metadata")
            for key, value in (values or {}).items():
                if type(value) is not str and not isinstance(value, str):
                    raise MalformedReview(f"{where}.metadata.{field}[{key!r}] must be a string")
    spec = obj.get("spec")
    if spec is not None and type(spec) is not dict:
        spec = _get(obj, "spec", dict, where)
    if spec is not None:
        if type(spec.get("type")) is not str:
            _get(spec, "type", str, f"{where}.spec")
        problem = shapes.spec_problem(group, kind, obj, where, decoded)
        if problem:
            raise MalformedReview(problem)
