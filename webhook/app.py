"""The thin Flask face: HTTP in, AdmissionReview out.

Two error families never mix (STYLE.md 4): a malformed call is an HTTP 4xx with a JSON body
(kube-apiserver's failurePolicy then decides); a policy outcome is HTTP 200 with `allowed`.
Malformed calls never reach the rules.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from webhook.admission import STAGES, Admission
from webhook.audit import AuditLog, AuditRecord
from webhook.review import MalformedReview, build_response, parse_review

log = logging.getLogger("netguard")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status=status,
                    mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message, "status": status}, status)


def _read_review() -> Any:
    """The decoded body, or MalformedReview with the HTTP status that says what is wrong."""
    if request.mimetype != "application/json":
        raise MalformedReview(
            f"Content-Type must be application/json, got {request.content_type or 'none'!r}", 415)
    limit = current_app.config["NETGUARD_MAX_BODY_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise MalformedReview(f"body of {request.content_length} bytes is over the {limit}-byte limit", 413)
    # Read the raw input: a chunked body has no length up front, and werkzeug's limited stream
    # cuts it at the limit silently instead of refusing it. One byte more tells it was too long.
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise MalformedReview(f"body is over the {limit}-byte limit", 413)
    try:
        return json.loads(body)
    except RecursionError:
        raise MalformedReview("body is nested too deeply to be an AdmissionReview") from None
    except ValueError as exc:  # also UnicodeDecodeError: the body is not UTF-8
        raise MalformedReview(f"body is not valid JSON: {exc}") from None


def create_app(admission: Admission, audit: AuditLog) -> Flask:
    app = Flask("netguard")
    app.config["NETGUARD_MAX_BODY_BYTES"] = admission.settings.max_body_bytes

    def review(stage: str) -> Response:
        record = AuditRecord(stage)
        try:
            req = parse_review(_read_review())
            record.request(req)
            try:
                evaluation = admission.evaluate(stage, req)
            except Exception as exc:  # a rule tripped on an object of an impossible shape
                log.exception("could not evaluate %s %s", stage, req.uid)
                raise MalformedReview(f"request.object could not be evaluated: {type(exc).__name__}: {exc}",
                                      422) from None
            decision = evaluation.decision
            record.decision(decision, evaluation.state)
            annotations = {"decision": decision.verdict, "rule": decision.rule} if decision.rule else \
                {"decision": decision.verdict}
            return _json(build_response(req, decision, annotations))
        except MalformedReview as exc:
            record.failed(exc.status, str(exc))
            return _error(exc.status, str(exc))
        except HTTPException as exc:
            record.failed(exc.code or 400, exc.description or exc.name)
            return _error(exc.code or 400, exc.description or exc.name)
        finally:
            audit.write(record)

    for stage in STAGES:
        app.add_url_rule(f"/{stage}", stage, lambda stage=stage: review(stage), methods=["POST"])

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        if admission.inventory.ready():
            return _json({"status": "ready"})
        return _json({"status": "not ready", "reason": "cluster state not synced yet"}, 503)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404, 405 and friends answer JSON too: every error body is JSON.
        return _error(exc.code or 500, exc.description or exc.name)

    return app
