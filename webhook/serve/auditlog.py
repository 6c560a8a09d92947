"""The audit trail: one JSON object per line on stdout for every admission call (each line is
an AuditRecord's, webhook/serve/auditrecord.py).

A serving worker writes the lines from a thread of its own (`AuditLog.start`): the request
thread renders its record's line (a few hundred bytes: the request's objects are never kept)
and queues it, and every WRITE_SECONDS the writer writes what has queued in a few system
calls. So a line reaches stdout within about 50 ms of the answer, not before it. Nothing is
lost on a graceful stop (SIGTERM drains the queue at exit); a worker killed outright (SIGKILL,
OOM) loses the lines of its last ~50 ms, as it would lose what a log agent had not yet read.
kube-apiserver's own audit log records every decision anyway, through the `auditAnnotations` of
each answer. Why: writing each line on the request thread, with a system call that hands the
GIL to another thread and waits to get it back, cost 20-30 µs of CPU per call under load, a
tenth of netguard's throughput (bench/README.md, Profile). A queue that stdout does not drain
(a log reader that stopped reading) is bounded in bytes: lines past the bound are dropped and
counted (AuditLog.write).
"""

from __future__ import annotations

import collections
import logging
import os
import select
import stat
import sys
import threading
import time
from typing import Callable, Iterable, Iterator, TextIO

from webhook.serve.auditrecord import AuditRecord, encode
from webhook.serve.background import PeriodicFlush, take_queued

log = logging.getLogger("netguard")
# Each wake of the writer costs about as much as writing dozens of lines (the thread takes the GIL
# from a request thread, then the system calls): 20 wakes a second, not 100, keep that share of
# a loaded worker's CPU small, and a line still reaches stdout well within a log agent's own lag.
WRITE_SECONDS = 0.05
# The queue is bounded in bytes (of the rendered lines it holds). When stdout stops taking
# lines (a stalled log agent), lines past the bound are dropped and counted, and admission goes
# on: netguard sits on every write of the cluster with failurePolicy Fail, so blocking here would
# turn a stuck log pipe into the cluster's outage. Every decision is also in kube-apiserver's own
# audit log through the answer's auditAnnotations. (The alternative, blocking the caller until
# the pipe drains, keeps every line and stops every Service and NetworkPolicy write instead.)
MAX_QUEUED_BYTES = 8 * 1024 * 1024
# How long the writer waits for stdout to take a write before it drops what it holds.
WRITE_WAIT_SECONDS = 1.0
# A drop is said on stderr at most this often (and counted in netguard_audit_dropped_total).
DROP_NOTICE_SECONDS = 10.0


class AuditLog:
    """Writes records as JSON lines: queued to a writer thread once `start`ed, else at once.

    To a pipe (stdout in production) lines go out in os.write calls of whole lines, at most
    PIPE_BUF (4096) bytes each, nearly all of them without a lock: POSIX makes such a write to a
    pipe atomic and whole, so lines from other threads (or from the other gunicorn workers,
    which share the descriptor) never cut into them. A longer line is written alone, under the
    lock, in parts if the pipe takes it in parts: it cannot interleave with this process's long
    lines, but (as always with pipes) it can with the other workers'. To a regular file a batch
    is one write: Linux serialises writes to one open file, whatever their size. A write cut
    short by a full disk is cut off the file again, back to its last whole line (`_cut_back`), so
    a file holds whole lines only; through a pipe, where bytes cannot be taken back, the next
    write starts on a new line. Other streams (tests) get an ordinary write and flush.
    """

    def __init__(self, stream: TextIO | None = None, max_queued_bytes: int = MAX_QUEUED_BYTES,
                 write_wait: float = WRITE_WAIT_SECONDS) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._queue: collections.deque[bytes] = collections.deque()  # rendered lines
        self._queued_bytes = 0  # updated under no lock: a bound, not an exact account
        self._max_queued_bytes = max_queued_bytes
        self._write_wait = write_wait
        self._flush_lock = threading.Lock()  # one flush at a time keeps the queue's order
        self._queueing = False  # True while the writer thread runs
        self._torn = False  # a write was cut short: the next one starts on a new line
        self.dropped = 0
        self.on_dropped: Callable[[int], None] = lambda n: None
        self._last_notice = -DROP_NOTICE_SECONDS
        self._writer = PeriodicFlush(self.flush, "netguard-audit-writer",
                                     "could not write audit lines; those queued until now are lost")

    def write(self, record: AuditRecord) -> None:
        line = encode(record)
        if not self._queueing:
            self._write_lines([line])
            return
        if self._queued_bytes + len(line) > self._max_queued_bytes:
            self._drop(1, "the audit queue is full: stdout is not taking lines")
            return
        self._queued_bytes += len(line)
        self._queue.append(line)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        self.on_dropped(count)
        now = time.monotonic()
        if now - self._last_notice >= DROP_NOTICE_SECONDS:
            self._last_notice = now
            log.warning("netguard: audit lines dropped (%d so far): %s", self.dropped, why)

    def start(self, interval: float = WRITE_SECONDS) -> None:
        """Write queued lines every `interval` seconds from a thread, and the rest at exit."""
        self._writer.start(interval)
        self._queueing = True

    def stop(self) -> None:
        """Stop the writer thread and write what is queued; later records are written at once.
        Call it once no more calls come: one racing with it could be queued after the last
        flush."""
        self._queueing = False
        self._writer.stop()
        self.flush()

    def flush(self) -> None:
        """Write every record queued so far, in order."""
        with self._flush_lock:
            queued = take_queued(self._queue)
            if queued:
                self._queued_bytes = max(0, self._queued_bytes - sum(map(len, queued)))
                self._write_lines(queued)

    def _fd(self) -> int | None:
        stream = self._stream or sys.stdout
        try:
            return stream.fileno()
        except (AttributeError, OSError, ValueError):  # StringIO and friends have none
            return None

    def _write_lines(self, lines: list[bytes]) -> None:
        fd = self._fd()
        if fd is None:
            with self._lock:
                stream = self._stream or sys.stdout
                stream.write(b"".join(lines).decode())
                stream.flush()
            return
        # A regular file takes the whole batch in one write (Linux serialises writes to one open
        # file, whatever their size, and a disk is always ready); a pipe takes writes of whole
        # lines of at most PIPE_BUF, each once it has room. Looked up once per batch: per write,
        # the fstat, lseek and select cost more than the write itself.
        regular = _is_regular(fd)
        chunks = [b"".join(lines)] if regular else list(_whole_lines_up_to_pipe_buf(lines))
        for index, data in enumerate(chunks):
            if self._torn:
                data = b"\n" + data  # end the fragment a cut-short write left, so no line is glued to it
            if not regular and not self._writable(fd):
                self._drop(sum(c.count(b"\n") for c in chunks[index:]),
                           f"stdout took no line for {self._write_wait:g} s")
                return
            start = _file_offset(fd) if regular else None
            written, problem = self._write_all(fd, data)
            if written == len(data):
                self._torn = False
                continue
            # Cut short: a full disk, a closed pipe, a long line through a pipe that stalled.
            # In a file, the partial line is cut off again, so the file holds whole lines only;
            # a pipe cannot take bytes back, and the next write starts on a new line instead.
            whole = data.rfind(b"\n", 0, written) + 1
            self._torn = written > whole and not _cut_back(fd, start, written, whole)
            lost = data[whole:].count(b"\n") + sum(c.count(b"\n") for c in chunks[index + 1:])
            self._drop(lost, f"stdout refused a write: {problem}" if problem else "a write to stdout was cut short")
            return

    def _write_all(self, fd: int, data: bytes) -> tuple[int, OSError | None]:
        """Bytes of `data` written, and the error that stopped the writing, if one did."""
        written = 0
        try:
            written = os.write(fd, data)
            if written < len(data):  # a long line through a pipe, or a full disk
                with self._lock:
                    written += self._write_rest(fd, data[written:])
        except OSError as exc:  # a full disk, a closed pipe: say so, keep serving
            return written + getattr(exc, "netguard_written", 0), exc
        return written, None

    def _writable(self, fd: int) -> bool:
        """Whether stdout takes a write now (a pipe with room for PIPE_BUF bytes: a write of that
        much is then whole, POSIX), waiting at most write_wait."""
        try:
            return bool(select.select([], [fd], [], self._write_wait)[1])
        except (OSError, ValueError):
            return True  # not selectable (some special file): write as before

    def _write_rest(self, fd: int, data: bytes) -> int:
        written = 0
        try:
            while written < len(data) and self._writable(fd):
                step = os.write(fd, data[written:])
                if step <= 0:
                    break
                written += step
        except OSError as exc:
            exc.netguard_written = written  # type: ignore[attr-defined]
            raise
        return written


def _is_regular(fd: int) -> bool:
    """A regular file (not a pipe, a terminal or another special file)."""
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _file_offset(fd: int) -> int | None:
    """Where the next write to a regular file lands (None if it cannot be told)."""
    try:
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


def _cut_back(fd: int, start: int | None, written: int, whole: int) -> bool:
    """Truncate a regular file back to the end of the last whole line of a cut-short write,
    unless another writer (another worker on the same file) has written after it."""
    if start is None:
        return False
    try:
        if os.fstat(fd).st_size != start + written:
            return False
        os.ftruncate(fd, start + whole)
        os.lseek(fd, start + whole, os.SEEK_SET)
    except OSError:
        return False
    return True


def _whole_lines_up_to_pipe_buf(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The lines joined into as few writes as possible, each of whole lines and at most PIPE_BUF
    bytes, except a line longer than that, which is a write of its own."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > select.PIPE_BUF:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield b"".join(chunk)
