"""The thin Flask face: HTTP in, AdmissionReview out.

Two error families never mix (STYLE.md 4): a malformed call is an HTTP 4xx with a JSON body
(kube-apiserver's failurePolicy then decides); a policy outcome is HTTP 200 with `allowed`.
Malformed calls never reach the rules.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from webhook.admission import STAGES, Admission, Evaluation
from webhook.audit import AuditLog, AuditRecord
from webhook.metrics import CONTENT_TYPE, Metrics
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


def _audit_annotations(evaluation: Evaluation) -> dict[str, str]:
    """Stored by the apiserver in its own audit log, under keys prefixed with the webhook's name."""
    decision = evaluation.decision
    annotations = {"decision": decision.verdict}
    if decision.rule:
        annotations["rule"] = decision.rule
    if evaluation.resource_version:
        # The cluster state the decision rested on, to replay or dispute it later.
        annotations["resourceVersion"] = evaluation.resource_version
    return annotations


def create_app(admission: Admission, audit: AuditLog, metrics: Metrics | None = None) -> Flask:
    metrics = metrics or Metrics()
    admission.on_live_read = metrics.live_read
    app = Flask("netguard")
    app.config["NETGUARD_MAX_BODY_BYTES"] = admission.settings.max_body_bytes

    def review(stage: str) -> Response:
        record = AuditRecord(stage)
        started = time.perf_counter()
        req = decision = None
        status = 200
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
            record.decision(decision, evaluation.state, evaluation.resource_version)
            return _json(build_response(req, decision, _audit_annotations(evaluation)))
        except MalformedReview as exc:
            status = exc.status
            record.failed(status, str(exc))
            return _error(status, str(exc))
        except HTTPException as exc:
            status = exc.code or 400
            record.failed(status, exc.description or exc.name)
            return _error(status, exc.description or exc.name)
        finally:
            audit.write(record)
            metrics.observe(stage, req, decision, time.perf_counter() - started, status)

    for stage in STAGES:
        app.add_url_rule(f"/{stage}", stage, lambda stage=stage: review(stage), methods=["POST"])

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    def ready() -> bool:
        is_ready = admission.inventory.ready()
        metrics.inventory_ready.set(1 if is_ready else 0)
        return is_ready

    ready()  # every worker reports from the start: the gauge aggregates with min over live workers

    @app.get("/readyz")
    def readyz() -> Response:
        if ready():
            return _json({"status": "ready"})
        return _json({"status": "not ready", "reason": "cluster state not synced yet"}, 503)

    @app.get("/metrics")
    def metrics_page() -> Response:
        ready()
        return Response(metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404, 405 and friends answer JSON too: every error body is JSON.
        return _error(exc.code or 500, exc.description or exc.name)

    return app
