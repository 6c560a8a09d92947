"""The Flask app: health, readiness, metrics, JSON errors; the admission endpoints in front.

POST /validate and /mutate are answered by webhook/serve/endpoints.py as plain WSGI (the hot path);
Flask serves everything else, and answers 405 for other methods on the admission paths.
"""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from webhook.serve.admission import STAGES, Admission
from webhook.serve.auditlog import AuditLog
from webhook.serve.endpoints import AdmissionEndpoints
from webhook.serve.metrics import CONTENT_TYPE, Metrics
from webhook.wire.response import error_body, json_body


def _json(payload: object, status: int = 200) -> Response:
    return Response(json_body(payload), status=status, mimetype="application/json")


PLAIN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def create_app(admission: Admission, audit: AuditLog, metrics: Metrics | None = None,
               plain_port: int | None = None) -> Flask:
    """`plain_port` is the --metrics-bind listener (plain HTTP): it serves PLAIN_PATHS only, so
    nothing can reach the admission endpoints without TLS."""
    metrics = metrics or Metrics()
    admission.on_live_read = metrics.live_read

    def ready() -> bool:
        is_ready = admission.inventory.ready()
        metrics.inventory_ready.set(1 if is_ready else 0)
        return is_ready

    # Every worker reports at once (the gauge aggregates with min over live workers, and a
    # worker's gauge reads 0 from its creation until this first report).
    ready()
    app = Flask("netguard")
    # No route answers OPTIONS on its own (Flask would answer it 200 with an HTML-less body and an
    # Allow header): every method a route does not serve is a 405 with a JSON body.

    def admission_path() -> Response:
        # Reached only by methods other than POST: the middleware answers POST itself.
        raise MethodNotAllowed(valid_methods=["POST"])

    for stage in STAGES:
        app.add_url_rule(f"/{stage}", stage, admission_path, methods=["GET", "PUT", "PATCH", "DELETE", "OPTIONS"],
                         provide_automatic_options=False)

    @app.get("/healthz", provide_automatic_options=False)
    def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz", provide_automatic_options=False)
    def readyz() -> Response:
        if ready():
            return _json({"status": "ready"})
        return _json({"status": "not ready", "reason": "cluster state not synced yet"}, 503)

    @app.get("/metrics", provide_automatic_options=False)
    def metrics_page() -> Response:
        ready()
        return Response(metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404, 405 and friends answer JSON too: every error body is JSON.
        status = exc.code or 500
        response = Response(error_body(status, exc.description or exc.name), status=status,
                            mimetype="application/json")
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    app.wsgi_app = AdmissionEndpoints(app.wsgi_app, admission, audit, metrics)  # type: ignore[method-assign]
    if plain_port is not None:
        app.wsgi_app = _PlainPortGuard(app.wsgi_app, str(plain_port))  # type: ignore[method-assign]
    return app


class _PlainPortGuard:
    """WSGI middleware: on the plain-HTTP port, anything but the health and metrics pages is a
    404 with a JSON body (gunicorn names the listener's port in SERVER_PORT)."""

    def __init__(self, inner, port: str) -> None:
        self.inner = inner
        self.port = port

    def __call__(self, environ, start_response):
        if environ.get("SERVER_PORT") == self.port and environ.get("PATH_INFO") not in PLAIN_PATHS:
            body = error_body(404, "this port serves /healthz, /readyz and /metrics only")
            start_response("404 Not Found", [("Content-Type", "application/json"),
                                             ("Content-Length", str(len(body)))])
            return [body]
        return self.inner(environ, start_response)
