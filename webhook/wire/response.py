"""What netguard answers: the AdmissionReview response and the JSON error bodies.

One place builds every response (controller-runtime's Response.Complete does the same): uid and
apiVersion are copied from the request, patch and patchType appear only with a patch.
https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#response
"""

from __future__ import annotations

import base64
from typing import Any, Mapping

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
