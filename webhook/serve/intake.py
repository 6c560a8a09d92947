"""A connection's TLS handshake and whole request, read without blocking, before it costs a thread.

gunicorn's gthread worker hands a connection to a pool thread as soon as it is accepted (or, when
kept alive, as soon as its next bytes arrive); the thread then does the handshake and reads the
request in blocking calls. A client that connects and sends nothing, sends one byte a second, or
stops half way through a handshake, holds that thread: a few dozen such clients and nobody is
answered. Here the worker's main loop does that part instead (webhook/serve/worker.py): each
connection is an `Intake` that advances a little every time its socket is ready, under one
deadline for the handshake, the head and the body together (not per blocking call), and only a
connection whose request is complete in memory reaches a thread. An idle or slow client then
costs a socket and a few KiB, never a thread, and is dropped when its deadline passes.

Where a request ends follows RFC 9112 section 6 (https://www.rfc-editor.org/rfc/rfc9112#section-6):
Content-Length, or the chunked transfer coding up to its last chunk and trailer section. A head
that is malformed or too long is handed over as it is, for gunicorn's parser to refuse with its
usual 400, 414 or 431; a body over the limit is handed over at its head, for the app to answer 413
from the announced length, and the connection is closed after that answer instead of drained.
"""

from __future__ import annotations

import enum
import ssl
import time
from dataclasses import dataclass
from typing import Any

HEAD_END = b"\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RECV_BYTES = 64 * 1024
# A chunk-size line longer than this is not one (RFC 9112 section 7.1): let gunicorn refuse it.
MAX_CHUNK_LINE = 1024


@dataclass(frozen=True)
class Limits:
    """How much a worker reads and holds for requests that have not reached a thread yet."""

    body_bytes: int
    # gunicorn refuses heads over its own limits (about 8 KiB per field, 100 fields): past this
    # size a head is handed over incomplete, and gunicorn's answer is the refusal.
    head_bytes: int = 64 * 1024
    # Request bytes held at once by a worker, in intake and in its threads: three bodies of the
    # maximum size. A connection over its share waits (it is not read) until room is free.
    budget_bytes: int = 0
    # Every connection may hold this much whatever the budget: a real AdmissionReview is a few KiB,
    # so hostile large bodies never keep an ordinary request from being read.
    small_bytes: int = 16 * 1024
    # Requests larger than this reach a thread one at a time per worker: decoding a body costs up
    # to ~10x its size in Python objects (webhook/serve/endpoints.py bounds the rest).
    large_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not self.budget_bytes:
            object.__setattr__(self, "budget_bytes", 3 * self.body_bytes)


class Progress(enum.Enum):
    WAIT = "wait"  # for the socket to be ready as `Intake.wants` says
    PAUSED = "paused"  # the worker's byte budget is spent: read again when room is free
    READY = "ready"  # the whole request is in `Intake.buffer`
    CLOSE = "close"  # the client went away or broke the handshake


class RequestFrame:
    """Where one HTTP/1.1 request ends in the bytes read so far, found without parsing it all."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.head_end = -1
        self.body_end = -1
        self.chunked = False
        self.chunk_at = 0
        self.chunk_total = 0
        self.expects_continue = False
        self.oversized = False
        self.done = False
        # The request's real end is in the buffer (not a head or chunk handed over unfinished
        # for gunicorn to refuse): what the app leaves of the body can be drained from memory.
        self.whole = False
        self._searched = 0

    @property
    def head_done(self) -> bool:
        return self.head_end >= 0

    def scan(self, buf: bytearray) -> bool:
        """True once `buf` holds the whole request (or as much as netguard will read of it)."""
        if self.done:
            return True
        if self.head_end < 0:
            at = buf.find(HEAD_END, max(0, self._searched - 3))
            if at < 0:
                self._searched = len(buf)
                self.done = len(buf) > self.limits.head_bytes
                return self.done
            self.head_end = at + len(HEAD_END)
            self._read_head(bytes(buf[:at]))
            if self.done:
                return True
        if self.chunked:
            return self._scan_chunks(buf)
        self.done = self.whole = len(buf) >= self.body_end
        return self.done

    def _read_head(self, head: bytes) -> None:
        lengths: set[bytes] = set()
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                lengths.add(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.chunked = True
            elif name == b"expect" and value == b"100-continue":
                self.expects_continue = True
        if len(lengths) > 1 or (lengths and self.chunked) or any(not v.isdigit() for v in lengths):
            self.done = True  # malformed framing: gunicorn answers 400 from the head alone
            return
        if self.chunked:
            self.chunk_at = self.head_end
            return
        length = int(lengths.pop()) if lengths else 0
        if length > self.limits.body_bytes:
            self.oversized = self.done = True
            return
        self.body_end = self.head_end + length

    def _scan_chunks(self, buf: bytearray) -> bool:
        # Each turn steps over one whole chunk: the loop ends within len(buf) / 3 turns.
        while not self.done:
            line_end = buf.find(b"\r\n", self.chunk_at)
            if line_end < 0:
                self.done = len(buf) - self.chunk_at > MAX_CHUNK_LINE
                return self.done
            size_field = bytes(buf[self.chunk_at:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                self.done = True  # gunicorn answers 400
                return True
            if size == 0:
                # The trailer section: field lines, then an empty line (RFC 9112 section 7.1.2).
                after = line_end + 2
                if buf[after:after + 2] == b"\r\n" or buf.find(HEAD_END, line_end) >= 0:
                    self.done = self.whole = True
                elif len(buf) - after > self.limits.head_bytes:
                    self.done = True  # a trailer section too long: gunicorn refuses it
                return self.done
            self.chunk_total += size
            if self.chunk_total > self.limits.body_bytes:
                self.oversized = self.done = True  # the app reads one byte past the limit: 413
                return True
            end = line_end + 2 + size + 2
            if len(buf) < end:
                return False
            self.chunk_at = end
        return True


class Intake:
    """One connection on its way to a thread: handshake (if TLS), then the request, bytes as they come."""

    READ = "read"
    WRITE = "write"

    def __init__(self, conn: Any, deadline: float, limits: Limits, handshake: bool, leftover: bytes = b"") -> None:
        self.conn = conn
        self.deadline = deadline
        self.started = time.monotonic()
        self.buffer = bytearray(leftover)
        self.frame = RequestFrame(limits)
        self.handshaking = handshake
        self.wants = self.READ
        self.read_bytes = 0  # read by the last advance(): the worker charges them to its budget
        self._continued = False

    @property
    def idle(self) -> bool:
        """Nothing of a request has arrived (a handshake in progress counts as nothing)."""
        return not self.buffer

    def advance(self, room: int) -> Progress:
        """Do what the socket allows now, reading at most `room` bytes."""
        self.read_bytes = 0
        sock = self.conn.sock
        try:
            if self.handshaking:
                sock.do_handshake()
                self.handshaking = False
            if self.frame.scan(self.buffer):
                return Progress.READY
            # Bounded: each turn reads at least one byte of `room`, or returns.
            while True:
                if room - self.read_bytes <= 0:
                    return Progress.PAUSED
                data = sock.recv(min(RECV_BYTES, room - self.read_bytes))
                if not data:
                    return Progress.CLOSE
                self.read_bytes += len(data)
                self.buffer += data
                if self.frame.scan(self.buffer):
                    return Progress.READY
                self._continue_if_expected(sock)
        except ssl.SSLWantReadError:
            self.wants = self.READ
        except ssl.SSLWantWriteError:
            self.wants = self.WRITE
        except BlockingIOError:
            self.wants = self.READ
        except (ssl.SSLError, OSError):
            return Progress.CLOSE  # a failed handshake (no client certificate, ...), a reset
        return Progress.WAIT

    def _continue_if_expected(self, sock: Any) -> None:
        """A client that sent `Expect: 100-continue` waits for this before its body (RFC 9110
        section 10.1.1). gunicorn sends its own once the request reaches a thread; a second
        interim answer is allowed (RFC 9110 section 15.2) and ends the client's wait now."""
        if self.frame.expects_continue and self.frame.head_done and not self._continued:
            self._continued = True
            try:
                sock.send(CONTINUE)
            except (ssl.SSLError, OSError):
                pass  # the client sends its body after its own short wait anyway
