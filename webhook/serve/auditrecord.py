"""One admission call's audit record, and the JSON line it becomes (webhook/serve/auditlog.py
writes the lines).

Field names are defined once, here, in the order a line holds them. Every record carries `uid`
and `dry_run`; the server writes each call's record exactly once, in a `finally`, so a failing
handler is recorded too (with its HTTP status and error). Gatekeeper's logging.go and deferred
stats reporter work the same way.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import orjson

from webhook.core.kept import keep
from webhook.core.outcome import Decision, Verdict
from webhook.core.request import AdmissionRequest
from webhook.wire import jsoncodec

FIELDS = (
    "time", "uid", "stage", "operation", "kind", "namespace", "name", "user", "field_manager",
    "dry_run", "allowed", "decision", "rule", "reason", "warnings", "patched_labels",
    "state", "resource_version", "http_status", "error", "duration_ms",
)


class AuditRecord:
    """Collects one call's facts as the handler learns them; `finish` lays them out as FIELDS.

    Plain attributes, one dict built at the end: this runs on every admission call, and filling
    a dict of 21 keys step by step cost more than the decision it records."""

    __slots__ = ("_started", "_stage", "_req", "_decision", "_state", "_resource_version",
                 "_status", "_error", "_internal", "_time", "_duration")

    def __init__(self, stage: str) -> None:
        self._started = time.perf_counter()
        self._stage = stage
        self._req: AdmissionRequest | None = None
        self._decision: Decision | None = None
        self._state: str | None = None
        self._resource_version: str | None = None
        self._status = 200
        self._error: str | None = None
        self._internal = False
        self._time: float | None = None
        self._duration = 0.0

    def close(self) -> None:
        """The call is answered: its time and duration are taken now, however late the line is
        written."""
        if self._time is None:
            self._time = time.time()
            self._duration = time.perf_counter() - self._started

    def request(self, req: AdmissionRequest) -> None:
        # The request itself, objects included, until the line is rendered (AuditLog.write):
        # what waits for stdout is the line, never the objects (an UPDATE carries two, up to
        # megabytes).
        self._req = req

    def decision(self, decision: Decision, state: str, resource_version: str = "") -> None:
        """The decision on the request given to `request` (called after it)."""
        self._decision, self._state = decision, state
        self._resource_version = resource_version or None

    def failed(self, status: int, error: str, internal: bool = False) -> None:
        """Answered with an error: the client's (a malformed call) or, `internal`, netguard's own."""
        self._status, self._error, self._internal = status, error, internal

    def finish(self) -> dict[str, Any]:
        """The record as a dict in FIELDS order. A call refused before it had a decision has the
        decision's fields null (and the request's too when it had none); one that netguard itself
        failed on has decision `error`."""
        self.close()
        # Stand-ins for what a refused call never had, so the one layout below reads every
        # field without a test per field.
        req = self._req or _NO_REQUEST
        decision = self._decision or (_FAILED_INTERNALLY if self._internal else _NO_DECISION)
        labels = decision.patched_labels
        return {
            "time": _timestamp(self._time),
            "uid": req.uid,
            "stage": self._stage,
            "operation": req.operation,
            "kind": req.kind,
            "namespace": req.namespace,
            "name": req.name,
            "user": req.user,
            "field_manager": req.field_manager,
            "dry_run": req.dry_run,
            "allowed": decision.allowed,
            "decision": decision.verdict,
            "rule": decision.rule,
            "reason": decision.reason,
            "warnings": decision.warnings,  # a tuple: orjson writes it as an array
            "patched_labels": dict(labels) if labels else {},
            "state": self._state,
            "resource_version": self._resource_version,
            "http_status": self._status,
            "error": self._error,
            "duration_ms": _milliseconds(self._duration),
        }


# What `finish` reads for a call refused before it was parsed or decided: nulls, dry_run false,
# no warnings and no labels.
_NO_REQUEST = AdmissionRequest(*([None] * len(AdmissionRequest._fields)))._replace(dry_run=False)
_NO_DECISION = Decision(*([None] * len(Decision._fields)))._replace(warnings=(), patched_labels=None)
_FAILED_INTERNALLY = _NO_DECISION._replace(verdict=Verdict.ERROR)


def _milliseconds(seconds: float) -> float:
    # Whole microseconds, in milliseconds: the float round(seconds * 1000, 3) gives, without its
    # decimal rounding (3x slower; every audit line has one).
    return round(seconds * 1_000_000) / 1000


def _timestamp(now: float) -> str:
    """RFC 3339 UTC with milliseconds, as datetime's isoformat(timespec="milliseconds") writes
    it: the time rounded to microseconds, then cut to milliseconds. The date and time of day are
    formatted once a second, and the milliseconds taken from a table: every admission call
    writes one, and datetime cost more than the rest of the line."""
    second = int(now)  # a time after 1970: its whole seconds, and `now - second` is exact
    micros = round((now - second) * 1e6)  # as CPython's datetime rounds: half to even
    if micros >= 1_000_000:
        micros, second = micros - 1_000_000, second + 1
    known, text = _second
    if known != second:
        text = datetime.datetime.fromtimestamp(second, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        globals()["_second"] = (second, text)  # one tuple: threads read it whole
    return text + _MILLISECONDS[micros // 1000]


_MILLISECONDS = tuple(f".{n:03d}Z" for n in range(1000))
_second: tuple[int, str] = (-1, "")


def encode(record: AuditRecord) -> bytes:
    """The record's line: `finish()` as JSON, byte for byte, and a newline.

    A GitOps controller applies the same objects again and again, and a kept decision
    (webhook/core/rules/loadbalancer.py, decide.mutate) answers each apply: between a call's
    time and uid and its duration, every field of its line (stage through error) is one an
    earlier call of the same object wrote. So that middle, cut from the first such line, is
    kept by the decision, state, resourceVersion and request fields (the entry holds the
    decision, so its id is never mistaken for a later one's), and later lines are laid out
    around it. A line orjson cannot encode (a forged request's lone surrogate) is the standard
    library's, as `_encode_record` writes it, and keeps nothing.
    """
    decision = record._decision
    req = record._req
    if decision is None or req is None or record._status != 200 or record._error is not None:
        return _encode_record(record)
    record.close()
    try:
        uid = orjson.dumps(req.uid)
    except orjson.JSONEncodeError:
        return _encode_record(record)
    time_text = _timestamp(record._time).encode()
    duration = orjson.dumps(_milliseconds(record._duration))
    key = (id(decision), record._state, record._resource_version, record._stage, req.operation, req.kind,
           req.namespace, req.name, req.user, req.field_manager, req.dry_run)
    known = _MIDDLES.get(key)
    if known is not None and known[0] is decision:
        return b"".join((b'{"time":"', time_text, b'","uid":', uid, b",", known[1],
                         b',"duration_ms":', duration, b"}\n"))
    line = _encode_record(record)
    head = b"".join((b'{"time":"', time_text, b'","uid":', uid, b","))
    tail = b"".join((b',"duration_ms":', duration, b"}\n"))
    if line.startswith(head) and line.endswith(tail):  # finish()'s layout, encoded by orjson
        keep(_MIDDLES, key, (decision, line[len(head):-len(tail)]), MIDDLES_KEPT)
    return line


def _encode_record(record: AuditRecord) -> bytes:
    # UTF-8 bytes; a forged request's lone surrogates come out as ASCII escapes (jsoncodec),
    # which any stream can carry.
    return jsoncodec.dumps(record.finish(), default=str) + b"\n"


MIDDLES_KEPT = 256
_MIDDLES: dict[tuple, tuple[Decision, bytes]] = {}
