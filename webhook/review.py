"""AdmissionReview v1: parse what kube-apiserver sends, build what it accepts.

Pure: no Flask, no kubernetes client, no I/O. A malformed call raises `MalformedReview`, which
the HTTP layer turns into a 4xx; a policy outcome is always a `Decision` answered with HTTP 200
(kopf keeps these two families apart the same way: WebhookError vs AdmissionError).

Contract: https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
"""

from __future__ import annotations

import base64
from typing import Any, Mapping, NamedTuple

from webhook import jsoncodec
from webhook.outcome import Decision

API_VERSIONS = ("admission.k8s.io/v1",)
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class MalformedReview(ValueError):
    """The call is not a usable AdmissionReview; answered with HTTP `status` and a JSON message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AdmissionRequest(NamedTuple):
    """The parts of `request` that decisions read; `object`/`old_object` are the raw dicts.

    Immutable. A NamedTuple rather than a frozen dataclass: one is built on every admission
    call, and a frozen dataclass sets each of its 12 fields through object.__setattr__ (1.8 µs
    against 0.7 µs). Change a field with `_replace`.
    """

    uid: str
    api_version: str
    kind: str  # request.kind.kind, e.g. "Service"
    group: str
    namespace: str
    name: str
    operation: str
    user: str
    dry_run: bool
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    field_manager: str

    @property
    def current(self) -> Mapping[str, Any]:
        """The object as it will be (on DELETE, as it was: `object` is null then)."""
        return self.object if self.object is not None else (self.old_object or {})


def _get(mapping: Mapping[str, Any], key: str, kind: type, where: str,
         required: bool = False) -> Any:
    value = mapping.get(key)
    if value is None:
        if required:
            raise MalformedReview(f"{where}.{key} is required")
        return None
    if not isinstance(value, kind):
        raise MalformedReview(f"{where}.{key} has the wrong type ({type(value).__name__})")
    return value


def parse_review(body: Any) -> AdmissionRequest:
    """Validate the shape of a decoded AdmissionReview and return its request.

    Only the fields netguard reads are checked, but each is checked for type, so no rule ever
    sees a list where it expects a map.
    """
    if not isinstance(body, dict):
        raise MalformedReview("body must be a JSON object (an AdmissionReview)")
    api_version = body.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise MalformedReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    if body.get("kind") != "AdmissionReview":
        raise MalformedReview(f"kind must be AdmissionReview, got {body.get('kind')!r}")
    request = _get(body, "request", dict, "AdmissionReview", required=True)
    uid = _get(request, "uid", str, "request", required=True)
    if not uid:
        raise MalformedReview("request.uid must not be empty")
    kind = _get(request, "kind", dict, "request", required=True)
    operation = _get(request, "operation", str, "request", required=True)
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    obj = _get(request, "object", dict, "request")
    old = _get(request, "oldObject", dict, "request")
    if obj is None and operation in ("CREATE", "UPDATE"):
        raise MalformedReview(f"request.object is required for {operation}")
    if old is None and operation in ("UPDATE", "DELETE"):
        raise MalformedReview(f"request.oldObject is required for {operation}")
    for label, value in (("object", obj), ("oldObject", old)):
        if value is not None:
            _check_metadata(value, f"request.{label}")
    user_info = _get(request, "userInfo", dict, "request") or {}
    options = _get(request, "options", dict, "request") or {}
    dry_run = _get(request, "dryRun", bool, "request") or False
    return AdmissionRequest(
        uid=uid,
        api_version=api_version,
        kind=_get(kind, "kind", str, "request.kind", required=True),
        group=_get(kind, "group", str, "request.kind") or "",
        namespace=_get(request, "namespace", str, "request") or "",
        name=_get(request, "name", str, "request") or "",
        operation=operation,
        user=_get(user_info, "username", str, "request.userInfo") or "",
        dry_run=dry_run,
        object=obj,
        old_object=old,
        field_manager=_get(options, "fieldManager", str, "request.options") or "",
    )


def _check_metadata(obj: Mapping[str, Any], where: str) -> None:
    """Labels and annotations must be maps of strings: the rules index them directly."""
    metadata = _get(obj, "metadata", dict, where)
    if metadata is None:
        return
    for field in ("labels", "annotations"):
        values = _get(metadata, field, dict, f"{where}.metadata")
        for key, value in (values or {}).items():
            if not isinstance(value, str):
                raise MalformedReview(f"{where}.metadata.{field}[{key!r}] must be a string")
    spec = _get(obj, "spec", dict, where)
    if spec is not None:
        _get(spec, "type", str, f"{where}.spec")


def build_response(request: AdmissionRequest, decision: Decision,
                   audit_annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The one place every AdmissionReview response is built (controller-runtime's Complete).

    uid and apiVersion come from the request; patch and patchType appear only with a patch, and
    status only on a denial, so no handler can forget or mis-set them.
    """
    response: dict[str, Any] = {"uid": request.uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": decision.message}
    if decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(jsoncodec.dumps(list(decision.patch))).decode()
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    if audit_annotations:
        response["auditAnnotations"] = dict(audit_annotations)
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response}
