"""AdmissionReview v1: parse what kube-apiserver sends, build what it accepts.

Pure: no Flask, no kubernetes client, no I/O. A malformed call raises `MalformedReview`, which
the HTTP layer turns into a 4xx; a policy outcome is always a `Decision` answered with HTTP 200
(kopf keeps these two families apart the same way: WebhookError vs AdmissionError).

Contract: https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
"""

from __future__ import annotations

from typing import Any, Mapping

from webhook.core.request import AdmissionRequest

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

    This runs on every admission call, so each field is first read with a plain `get` and an
    exact type test (decoded JSON holds exact dicts, strs and bools); only a value that fails it,
    or is absent, goes through `_get`, which accepts or refuses it exactly as it always did and
    says why. The answer is the same either way, one function call per field cheaper. The
    three-line pattern is written out on purpose: a helper doing the same test costs a call per
    field again (1.9 µs a review inlined, 3.0 through a helper, 3.4 before, timed on the bench's
    three reviews; bench/hotpath.py shows the step). tests/test_review.py gives every field each
    wrong type.
    """
    if type(body) is not dict and not isinstance(body, dict):
        raise MalformedReview("body must be a JSON object (an AdmissionReview)")
    api_version = body.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise MalformedReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    if body.get("kind") != "AdmissionReview":
        raise MalformedReview(f"kind must be AdmissionReview, got {body.get('kind')!r}")
    request = body.get("request")
    if type(request) is not dict:
        request = _get(body, "request", dict, "AdmissionReview", required=True)
    uid = request.get("uid")
    if type(uid) is not str:
        uid = _get(request, "uid", str, "request", required=True)
    if not uid:
        raise MalformedReview("request.uid must not be empty")
    kind = request.get("kind")
    if type(kind) is not dict:
        kind = _get(request, "kind", dict, "request", required=True)
    operation = request.get("operation")
    if type(operation) is not str:
        operation = _get(request, "operation", str, "request", required=True)
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    obj = request.get("object")
    if type(obj) is not dict:
        obj = _get(request, "object", dict, "request")
    old = request.get("oldObject")
    if type(old) is not dict:
        old = _get(request, "oldObject", dict, "request")
    if obj is None and operation in ("CREATE", "UPDATE"):
        raise MalformedReview(f"request.object is required for {operation}")
    if old is None and operation in ("UPDATE", "DELETE"):
        raise MalformedReview(f"request.oldObject is required for {operation}")
    if obj is not None:
        _check_metadata(obj, "request.object")
    if old is not None:
        _check_metadata(old, "request.oldObject")
    user_info = request.get("userInfo")
    if type(user_info) is not dict:
        user_info = _get(request, "userInfo", dict, "request") or {}
    options = request.get("options")
    if type(options) is not dict:
        options = _get(request, "options", dict, "request") or {}
    dry_run = request.get("dryRun")
    if type(dry_run) is not bool:
        dry_run = _get(request, "dryRun", bool, "request") or False
    kind_name = kind.get("kind")
    if type(kind_name) is not str:
        kind_name = _get(kind, "kind", str, "request.kind", required=True)
    return AdmissionRequest(
        uid, api_version, kind_name,
        _optional_str(kind, "group", "request.kind"),
        _optional_str(request, "namespace", "request"),
        _optional_str(request, "name", "request"),
        operation,
        _optional_str(user_info, "username", "request.userInfo"),
        dry_run, obj, old,
        _optional_str(options, "fieldManager", "request.options"),
    )


def _optional_str(mapping: Mapping[str, Any], key: str, where: str) -> str:
    """mapping[key] when it is a string, "" when absent or null, else MalformedReview."""
    value = mapping.get(key)
    if type(value) is str:
        return value
    return _get(mapping, key, str, where) or ""


def _check_metadata(obj: Mapping[str, Any], where: str) -> None:
    """Labels and annotations must be maps of strings: the rules index them directly."""
    metadata = obj.get("metadata")
    if type(metadata) is not dict:
        metadata = _get(obj, "metadata", dict, where)
        if metadata is None:
            return
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if type(values) is not dict:
            values = _get(metadata, field, dict, f"{where}.metadata")
            if values is None:
                continue
        for key, value in values.items():
            if type(value) is not str and not isinstance(value, str):
                raise MalformedReview(f"{where}.metadata.{field}[{key!r}] must be a string")
    spec = obj.get("spec")
    if type(spec) is not dict:
        spec = _get(obj, "spec", dict, where)
    if spec is not None and type(spec.get("type")) is not str:
        _get(spec, "type", str, f"{where}.spec")
