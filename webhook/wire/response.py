"""What netguard answers: the AdmissionReview response and the JSON error bodies.

One place builds every response (controller-runtime's Response.Complete does the same): uid and
apiVersion are copied from the request, patch and patchType appear only with a patch.
https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#response
"""

from __future__ import annotations

import base64
from typing import Any, Mapping

import orjson

from webhook.core.kept import keep
from webhook.core.outcome import Decision
from webhook.core.request import AdmissionRequest
from webhook.wire import jsoncodec
from webhook.wire.types import ErrorBody, Response, ReviewResponse


def json_body(payload: Any) -> bytes:
    return jsoncodec.dumps(payload)


def error_body(status: int, message: str) -> bytes:
    body: ErrorBody = {"error": message, "status": status}
    return json_body(body)


def build_response(request: AdmissionRequest, decision: Decision,
                   audit_annotations: Mapping[str, str] | None = None) -> ReviewResponse:
    """The one place every AdmissionReview response is built (controller-runtime's Complete).

    uid and apiVersion come from the request; patch and patchType appear only with a patch, and
    status only on a denial, so no handler can forget or mis-set them.
    """
    response: Response = {"uid": request.uid, "allowed": decision.allowed}
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


def audit_annotations(decision: Decision, resource_version: str = "") -> dict[str, str]:
    """Stored by the apiserver in its own audit log, under keys prefixed with the webhook's name."""
    annotations = {"decision": decision.verdict}
    if decision.rule:
        annotations["rule"] = decision.rule
    if resource_version:
        # The cluster state the decision rested on, to replay or dispute it later.
        annotations["resourceVersion"] = resource_version
    return annotations


def response_body(request: AdmissionRequest, decision: Decision, resource_version: str = "") -> bytes:
    """The answer to `request`, encoded: `json_body(build_response(request, decision,
    audit_annotations(decision, resource_version)))`, byte for byte.

    A kept decision (webhook/core/rules/loadbalancer.py, decide.mutate) answers many calls, and
    its answer differs from call to call only in the request's uid, which comes first in the
    response. So the bytes before and after the uid are kept, by the decision (held by the
    entry, so its id is never mistaken for a later decision's), the apiVersion and the
    resourceVersion. A decision made for one call only leaves an entry no later call reads; a
    uid orjson cannot encode (a lone surrogate: forged) takes the standard library's path.
    """
    key = (id(decision), request.api_version, resource_version)
    known = _ENCODED.get(key)
    try:
        uid = orjson.dumps(request.uid)
    except orjson.JSONEncodeError:
        uid = None
    if known is not None and uid is not None and known[0] is decision:
        return known[1] + uid + known[2]
    body = json_body(build_response(request, decision, audit_annotations(decision, resource_version)))
    if uid is not None:
        head = b"".join((b'{"apiVersion":', json_body(request.api_version),
                         b',"kind":"AdmissionReview","response":{"uid":'))
        if body.startswith(head + uid):  # the layout build_response writes, encoded by orjson
            keep(_ENCODED, key, (decision, head, body[len(head) + len(uid):]), ENCODED_KEPT)
    return body


ENCODED_KEPT = 256
_ENCODED: dict[tuple, tuple[Decision, bytes, bytes]] = {}
