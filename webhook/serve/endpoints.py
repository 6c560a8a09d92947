"""POST /validate and POST /mutate as plain WSGI: the hot path.

Flask's request and response objects cost about 60 µs a call, more than the decision itself
(bench/README.md, Profile), so the two admission endpoints read the WSGI environ directly; every
other route stays with Flask (webhook/serve/app.py).

Error families never mix (docs/design.md, Errors): a malformed call is an HTTP 4xx with a JSON
body; netguard's own failure while deciding is an HTTP 500 with a JSON body, logged and counted
(kube-apiserver's failurePolicy then decides either way); a policy outcome is HTTP 200 with
`allowed`. Malformed calls never reach the rules. Every call is audited exactly once, in a
`finally`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from webhook.serve.admission import STAGES, Admission
from webhook.serve.auditlog import AuditLog
from webhook.serve.auditrecord import AuditRecord
from webhook.serve.metrics import Metrics
from webhook.wire import jsoncodec
from webhook.wire.response import error_body, response_body
from webhook.wire.review import MalformedReview, parse_review

log = logging.getLogger("netguard")
PATHS = {f"/{stage}": stage for stage in STAGES}
INTERNAL_ERROR = 500
INTERNAL_ERROR_MESSAGE = "netguard failed while deciding this request; its log (stderr) has the details"
StartResponse = Callable[..., Any]
# Decoded JSON costs memory per object and array, not per byte: a dict with one key is 184 bytes
# in CPython, so 8 MiB of `{"ab":1},` decodes to ~930,000 dicts and ~200 MiB. A real review holds
# far fewer: a NetworkPolicy at etcd's 1.5 MiB limit (about 15,000 ipBlock peers, its
# managedFields included) has under 100,000 objects and arrays, and an UPDATE carries two. A body
# that could hold more than MAX_CONTAINERS (its count of `{` and `[`, an upper bound since strings
# may hold some) is refused before it is decoded, which bounds a decode at ~50 MiB. Counting costs
# a few ms for the largest body; small bodies, which cannot hold that many, are not counted.
MAX_CONTAINERS = 250_000
COUNT_CONTAINERS_FROM = 2 * MAX_CONTAINERS  # `{}` is two bytes: a shorter body cannot hold more


def read_review(environ: dict[str, Any], limit: int) -> Any:
    """The decoded body, or MalformedReview with the HTTP status that says what is wrong."""
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type != "application/json" and content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise MalformedReview(f"Content-Type must be application/json, got {content_type or 'none'!r}", 415)
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        if not length.isdigit():
            raise MalformedReview(f"Content-Length {length!r} is not a number")
        size = int(length)
        if size > limit:
            raise MalformedReview(f"body of {length} bytes is over the {limit}-byte limit", 413)
    else:
        # A chunked body has no length up front: read one byte more than allowed to tell.
        size = limit + 1
    # Exactly the announced length when there is one: asking gunicorn for more costs it another
    # turn of its read loop to find the end of the body.
    body = environ["wsgi.input"].read(size)
    if len(body) > limit:
        raise MalformedReview(f"body is over the {limit}-byte limit", 413)
    if len(body) >= COUNT_CONTAINERS_FROM:
        _refuse_dense(body)
    try:
        return jsoncodec.loads(body)
    except RecursionError:
        raise MalformedReview("body is nested too deeply to be an AdmissionReview") from None
    except ValueError as exc:  # also UnicodeDecodeError: the body is not UTF-8
        raise MalformedReview(f"body is not valid JSON: {exc}") from None


# Specs of bodies up to this size are looked up among those already found fine (shapes.spec_problem
# encodes the spec for that): a larger body's spec costs more to encode than its walk, and is too
# large to be kept anyway. kube-apiserver always sends a Content-Length.
KNOWN_SPECS_UP_TO = 16 * 1024


def _small(environ: dict[str, Any]) -> bool:
    length = environ.get("CONTENT_LENGTH") or ""
    return length.isdigit() and int(length) <= KNOWN_SPECS_UP_TO


def _refuse_dense(body: bytes) -> None:
    if body[:4096].lstrip()[:1] != b"{":  # a prefix: stripping the whole body would copy it
        raise MalformedReview("body is not a JSON object, so not an AdmissionReview")
    containers = body.count(b"{") + body.count(b"[")
    if containers > MAX_CONTAINERS:
        raise MalformedReview(
            f"body holds up to {containers} JSON objects and arrays, more than any Kubernetes object "
            f"(at most {MAX_CONTAINERS} in a review): refused before decoding")


@functools.cache  # a handful of statuses; the enum lookup costs a µs a call
def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class AdmissionEndpoints:
    """WSGI middleware: answers POST /validate and /mutate, hands everything else on."""

    def __init__(self, fallback: Callable, admission: Admission, audit: AuditLog, metrics: Metrics) -> None:
        self.fallback = fallback
        self.admission = admission
        self.audit = audit
        self.metrics = metrics
        self.limit = admission.settings.max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        stage = PATHS.get(environ.get("PATH_INFO", ""))
        if stage is None or environ.get("REQUEST_METHOD") != "POST":
            return self.fallback(environ, start_response)
        status, body = self.review(stage, environ)
        start_response(_status_line(status),
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def review(self, stage: str, environ: dict[str, Any]) -> tuple[int, bytes]:
        record = AuditRecord(stage)
        started = time.perf_counter()
        req = decision = None
        status = 200
        try:
            req = parse_review(read_review(environ, self.limit), decoded=_small(environ))
            record.request(req)
            evaluation = self.admission.evaluate(stage, req)
            decision = evaluation.decision
            record.decision(decision, evaluation.state, evaluation.resource_version)
            return 200, response_body(req, decision, evaluation.resource_version)
        except MalformedReview as exc:
            status = exc.status
            record.failed(status, str(exc))
            return status, error_body(status, str(exc))
        except Exception:
            # The call was well formed (parse_review checked every shape the rules read), so
            # this is netguard's own bug: not the client's fault, and not a policy answer. The
            # traceback goes to stderr only; the apiserver's failurePolicy decides.
            status = INTERNAL_ERROR
            log.exception("netguard failed on %s %s", stage, req.uid if req else "(unparsed)")
            record.failed(status, INTERNAL_ERROR_MESSAGE, internal=True)
            return status, error_body(status, INTERNAL_ERROR_MESSAGE)
        finally:
            self.audit.write(record)
            self.metrics.observe(stage, req, decision, time.perf_counter() - started, status)
