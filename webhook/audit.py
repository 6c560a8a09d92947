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
from datetime import datetime, timezone
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
    """Collects one call's facts as the handler learns them."""

    def __init__(self, stage: str) -> None:
        self._started = time.perf_counter()
        self.fields: dict[str, Any] = dict.fromkeys(FIELDS)
        self.fields.update(stage=stage, dry_run=False, warnings=[], patched_labels={})

    def request(self, req: AdmissionRequest) -> None:
        self.fields.update(uid=req.uid, operation=req.operation, kind=req.kind,
                           namespace=req.namespace, name=req.name, user=req.user,
                           field_manager=req.field_manager, dry_run=req.dry_run)

    def decision(self, decision: Decision, state: str, resource_version: str = "") -> None:
        self.fields.update(allowed=decision.allowed, decision=decision.verdict, rule=decision.rule,
                           reason=decision.reason, warnings=list(decision.warnings),
                           patched_labels=dict(decision.patched_labels), state=state,
                           resource_version=resource_version or None)

    def failed(self, status: int, error: str) -> None:
        self.fields.update(http_status=status, error=error)

    def finish(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        self.fields["time"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.fields["duration_ms"] = round((time.perf_counter() - self._started) * 1000, 3)
        if self.fields["http_status"] is None:
            self.fields["http_status"] = 200
        return self.fields


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
