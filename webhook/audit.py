"""The audit trail: one JSON object per line on stdout for every admission call.

Field names are defined once, here. Every record carries `uid` and `dry_run`; the server writes
each call's record exactly once, in a `finally`, so a failing handler is recorded too (with its
HTTP status and error). Gatekeeper's logging.go and deferred stats reporter work the same way.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from typing import Any, TextIO

from webhook import jsoncodec
from webhook.outcome import Decision
from webhook.review import AdmissionRequest

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
                 "_status", "_error")

    def __init__(self, stage: str) -> None:
        self._started = time.perf_counter()
        self._stage = stage
        self._req: AdmissionRequest | None = None
        self._decision: Decision | None = None
        self._state: str | None = None
        self._resource_version: str | None = None
        self._status = 200
        self._error: str | None = None

    def request(self, req: AdmissionRequest) -> None:
        self._req = req

    def decision(self, decision: Decision, state: str, resource_version: str = "") -> None:
        self._decision, self._state = decision, state
        self._resource_version = resource_version or None

    def failed(self, status: int, error: str) -> None:
        self._status, self._error = status, error

    def finish(self) -> dict[str, Any]:
        req, decision = self._req, self._decision
        if decision is None:
            allowed = verdict = rule = reason = None
            warnings: list[str] = []
            labels: dict[str, str] = {}
        else:
            allowed, verdict, rule, reason = decision.allowed, decision.verdict, decision.rule, decision.reason
            warnings, labels = list(decision.warnings), dict(decision.patched_labels)
        return {  # in FIELDS order
            "time": _timestamp(time.time()),
            "uid": req and req.uid,
            "stage": self._stage,
            "operation": req and req.operation,
            "kind": req and req.kind,
            "namespace": req and req.namespace,
            "name": req and req.name,
            "user": req and req.user,
            "field_manager": req and req.field_manager,
            "dry_run": req.dry_run if req else False,
            "allowed": allowed,
            "decision": verdict,
            "rule": rule,
            "reason": reason,
            "warnings": warnings,
            "patched_labels": labels,
            "state": self._state,
            "resource_version": self._resource_version,
            "http_status": self._status,
            "error": self._error,
            "duration_ms": round((time.perf_counter() - self._started) * 1000, 3),
        }


# (whole second, its "YYYY-MM-DDTHH:MM:SS" in UTC): formatted once a second, not once a line.
# One tuple, replaced whole, so threads never see a second paired with another's text.
_second: tuple[int, str] = (-1, "")


def _timestamp(now: float) -> str:
    """RFC 3339 UTC with milliseconds, as datetime.isoformat(timespec="milliseconds") + "Z"."""
    global _second
    whole = int(now)
    micros = round((now - whole) * 1e6)  # rounded to µs first, as datetime.fromtimestamp does
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    second, text = _second
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{micros // 1000:03d}Z"


class AuditLog:
    """Writes records as JSON lines.

    To a real file descriptor (stdout in production) each line goes out in one os.write: one
    syscall, no buffer to flush. A line of at most PIPE_BUF (4096) bytes, nearly all of them,
    needs no lock: POSIX makes such a write to a pipe atomic and whole, and Linux serialises
    writes to one open file, so lines from other threads (or from the other gunicorn workers,
    which share the descriptor) never cut into it. Under load, a lock held across the syscall
    made every other thread queue behind it. A longer line is written under the lock, in parts
    if the pipe takes it in parts: it cannot interleave with this process's long lines, but
    (as always with pipes) it can with the other workers'. Other streams (tests) get an ordinary
    write and flush.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def _fd(self) -> int | None:
        stream = self._stream or sys.stdout
        try:
            return stream.fileno()
        except (AttributeError, OSError, ValueError):  # StringIO and friends have none
            return None

    def write(self, record: AuditRecord) -> None:
        # UTF-8 bytes; a forged request's lone surrogates come out as ASCII escapes (jsoncodec),
        # which any stream can carry.
        data = jsoncodec.dumps(record.finish(), default=str) + b"\n"
        fd = self._fd()
        if fd is not None and len(data) <= select.PIPE_BUF:
            written = os.write(fd, data)
            if written == len(data):
                return
            data = data[written:]  # cut short (a signal, a full disk): finish under the lock
        with self._lock:
            if fd is None:
                stream = self._stream or sys.stdout
                stream.write(data.decode())
                stream.flush()
                return
            while data:  # a pipe may take a long line in parts
                data = data[os.write(fd, data):]
