"""netguard's gunicorn worker: gthread, with connections that cost a thread only once their request is in.

gunicorn's gthread worker (one main loop around a selector, a pool of threads for requests) stays
the model, and its plain-WSGI path is unchanged: this subclass only decides *when* a connection
reaches a thread. Until then it is an `Intake` (webhook/serve/intake.py) advanced by the main
loop without blocking: the TLS handshake, the head and the body, under one deadline
(`--io-timeout`). So:

- idle, slow (slowloris) and half-open clients hold a socket and a few KiB, not a thread, and are
  dropped at their deadline; kept-alive connections wait in gunicorn's poller as before, and their
  next request goes through the same intake;
- at the connection cap the oldest connection that has not delivered a request is shed to make
  room, so a flood of idle sockets delays nobody (and kubelet probes keep answering);
- request bytes held per worker are bounded (`Limits.budget_bytes`); requests over
  `Limits.large_bytes` reach a thread one at a time, and memory is given back after each;
- closing a connection never blocks the main loop (gunicorn lingers on the main thread for up to
  2 s per close); on SIGTERM, idle kept-alive and idle intake connections close at once and
  requests in flight are answered.

Listeners on `plain_ports` (`--metrics-bind`) are served without TLS.
docs/serving.md explains the choice against gevent and per-call timeouts, with measurements in
bench/README.md. This subclass uses gthread's internals, which is why pyproject.toml pins
gunicorn's major version; tests/serve/test_connection_flood.py exercises every override.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import time
from functools import partial
from typing import Any, ClassVar

from gunicorn import http
from gunicorn import sock as gsock
from gunicorn.workers.gthread import TConn, ThreadWorker

from webhook.serve import onewrite
from webhook.serve.dropcount import dropped_counter
from webhook.serve.intake import Intake, Limits, Progress
from webhook.serve.resources import connection_cap, give_memory_back, pin_mmap_threshold

log = logging.getLogger("netguard")
# How long a closed connection may take to read our last answer and close its side.
LINGER_SECONDS = 2.0
# What a partial request may still take once SIGTERM arrived: the worker must exit in about 2 s.
STOP_GRACE_SECONDS = 1.0
MAX_LINGERING = 256
# gthread's loop does its housekeeping on every turn, and under load a turn is one or two
# requests: the heartbeat (a utime system call), the parent check (getppid) and the deadline
# scans ran about once per request. The deadlines are seconds and the arbiter's timeout 30 s.
HOUSEKEEPING_SECONDS = 0.1


class BoundedBlocking:
    """Sockets on which gunicorn's "blocking" means "blocking for at most `io_timeout`": the
    plain ones here (_BoundedSocket) and the TLS ones (server._BoundedSSLSocket). A thread gets a
    connection only once its request is in, so what it still does on the socket is write the
    answer: a client that stops reading cannot hold the thread longer than `io_timeout`."""

    __slots__ = ()  # adds nothing to a socket's layout
    io_timeout: ClassVar[float] = 10.0

    def settimeout(self, value: float | None) -> None:
        _switch(self, self.io_timeout if value is None else value)

    def setblocking(self, flag: bool) -> None:
        _switch(self, self.io_timeout if flag else 0.0)


_get_timeout, _set_timeout = socket.socket.gettimeout, socket.socket.settimeout


def _switch(sock: socket.socket, timeout: float) -> None:
    """Set the socket's timeout, unless it is set already. gunicorn switches a kept-alive
    connection between blocking and non-blocking several times per request, and each switch is
    an ioctl(FIONBIO) around which CPython lets go of the GIL: with a pool of busy threads, one
    more hand-over of the GIL each time. A timeout of 0 and one of `io_timeout` both keep the
    descriptor non-blocking (CPython waits in poll() for the timeout), so only the value
    changes, and an unchanged value needs no call."""
    if _get_timeout(sock) != timeout:
        _set_timeout(sock, timeout)


class _BoundedSocket(BoundedBlocking, socket.socket):
    __slots__ = ()  # same layout as socket.socket: accepted sockets switch to this class in place


class _Conn(TConn):
    """gunicorn's connection; a graceful close hands the socket to the worker's lingering set
    instead of draining it on the main thread."""

    worker: Any = None
    intake_bytes = 0  # request bytes charged to the worker's budget until the thread is done
    large = False
    close_after = False  # the body was over the limit: answer, then close without draining
    whole = False  # the intake read the request to its end: a drain reads memory only
    answered_at = 0.0  # monotonic time its last request was answered (it is idle since)

    def close(self, graceful: bool = False) -> None:
        if graceful and self.worker is not None:
            self.worker.linger(self.sock)
        else:
            super().close()


class NetguardWorker(ThreadWorker):
    limits: ClassVar[Limits] = Limits(body_bytes=8 * 1024 * 1024)
    io_timeout: ClassVar[float] = 10.0
    plain_ports: ClassVar[frozenset[int]] = frozenset()
    large_at_once: ClassVar[int] = 1

    def init_process(self) -> None:
        self.worker_connections = connection_cap(self.cfg.worker_connections)
        self.max_keepalived = self.worker_connections - self.cfg.threads
        self.intakes: collections.OrderedDict[Any, Intake] = collections.OrderedDict()
        self.paused: collections.OrderedDict[Any, Intake] = collections.OrderedDict()
        self.large_waiting: collections.deque[_Conn] = collections.deque()
        self.lingering: collections.OrderedDict[Any, float] = collections.OrderedDict()
        self.large_running = 0
        self.held_bytes = 0
        self.dropped = dropped_counter()
        pin_mmap_threshold()
        onewrite.install()
        self._plain_socket_class = type("BoundedSocket", (_BoundedSocket,), {"__slots__": (), "io_timeout": self.io_timeout})
        super().init_process()

    # -- accepting --------------------------------------------------------------------------

    def accept(self, listener: Any) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self._shed_one()  # out of descriptors: make room for the next try
            return  # else EAGAIN (another worker took it), ECONNABORTED: nothing to do
        self.nr_conns += 1
        # gthread stops accepting at the cap; shedding first keeps a slot for the next client.
        if self.nr_conns >= self.worker_connections:
            self._shed_one()
        client.setblocking(False)
        server = listener.getsockname()
        plain = server[1] in self.plain_ports if isinstance(server, tuple) else False
        if plain:
            client.__class__ = self._plain_socket_class
        conn = _Conn(self.cfg, client, address, server)
        conn.worker = self
        handshake = False
        if not plain and self.cfg.is_ssl:
            try:
                conn.sock = gsock.ssl_context(self.cfg).wrap_socket(
                    client, server_side=True, do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
            except (OSError, ValueError):
                self._drop(conn)
                return
            handshake = True
        else:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        self._begin(conn, Intake(conn, time.monotonic() + self.io_timeout, self.limits, handshake))

    def enqueue_req(self, conn: Any) -> None:
        """Every way to a thread passes here (a kept-alive connection readable again, bytes
        read ahead behind a request): its next request is read by an intake first."""
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        self._begin(conn, Intake(conn, time.monotonic() + self.io_timeout, self.limits, False, leftover))

    # -- intake -----------------------------------------------------------------------------

    def _begin(self, conn: Any, intake: Intake) -> None:
        self.intakes[conn] = intake
        self.held_bytes += len(intake.buffer)
        self._advance(intake, registered=False)

    def _advance(self, intake: Intake, registered: bool = True) -> None:
        conn = intake.conn
        own = len(intake.buffer)
        room = max(self.limits.small_bytes - own, self.limits.budget_bytes - self.held_bytes)
        progress = intake.advance(room)
        self.held_bytes += intake.read_bytes
        if progress is Progress.WAIT:
            events = selectors.EVENT_READ if intake.wants == Intake.READ else selectors.EVENT_WRITE
            callback = partial(self._on_ready, intake)
            if registered:
                self.poller.modify(conn.sock, events, callback)
            else:
                self.poller.register(conn.sock, events, callback)
            return
        if registered:
            self.poller.unregister(conn.sock)
        if progress is Progress.PAUSED:
            self.paused[conn] = intake
        elif progress is Progress.CLOSE:
            self._end_intake(intake)
            self._drop(conn)
        else:
            self._ready(intake)

    def _on_ready(self, intake: Intake, _fileobj: Any) -> None:
        self._advance(intake)

    def _ready(self, intake: Intake) -> None:
        conn = intake.conn
        del self.intakes[conn]
        if conn.parser is None:  # the handshake just finished
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        conn.data_ready = True
        conn.intake_bytes = len(intake.buffer)
        conn.close_after = intake.frame.oversized
        conn.whole = intake.frame.whole
        conn.large = len(intake.buffer) > self.limits.large_bytes
        conn.parser.unreader.unread(bytes(intake.buffer))
        intake.buffer = bytearray()
        if conn.large and self.large_running >= self.large_at_once:
            self.large_waiting.append(conn)
            return
        self._dispatch(conn)

    def _dispatch(self, conn: Any) -> None:
        if conn.large:
            self.large_running += 1
        super().enqueue_req(conn)

    def _end_intake(self, intake: Intake) -> None:
        self.intakes.pop(intake.conn, None)
        self.paused.pop(intake.conn, None)
        self.held_bytes -= len(intake.buffer)

    def _drop(self, conn: Any) -> None:
        self.nr_conns -= 1
        try:
            conn.sock.close()
        except OSError:
            pass

    def _shed_one(self) -> None:
        """At the cap, the oldest connection that has not delivered a request makes room
        (legitimate clients send theirs within milliseconds), else the oldest idle kept-alive."""
        for conn, intake in self.intakes.items():
            if conn not in self.paused:
                self._close_intake(intake)
                self.dropped.labels("shed").inc()
                return
        if self.keepalived_conns:
            conn = self.keepalived_conns.popleft()
            self.poller.unregister(conn.sock)
            self._drop(conn)
            self.dropped.labels("shed").inc()

    def _close_intake(self, intake: Intake) -> None:
        if intake.conn not in self.paused:
            try:
                self.poller.unregister(intake.conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self._end_intake(intake)
        self._drop(intake.conn)

    # -- after a request --------------------------------------------------------------------

    def finish_request(self, conn: Any, fs: Any) -> None:
        conn.answered_at = time.monotonic()
        self.held_bytes -= conn.intake_bytes
        conn.intake_bytes = 0
        if conn.large:
            conn.large = False
            self.large_running -= 1
            give_memory_back()
        super().finish_request(conn, fs)
        while self.large_waiting and self.large_running < self.large_at_once:
            self._dispatch(self.large_waiting.popleft())
        self._resume_paused()

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        if conn.close_after:
            return False  # the unread body of a refused request is not worth draining
        if not conn.whole:
            # A chunk-size line or trailer handed over unfinished (for gunicorn to refuse): the
            # rest is on the socket, drained under gthread's deadline and byte cap.
            return super()._keepalive_after(conn, keepalive)
        # gthread's deadline sets the socket's timeout before the drain and back after it, two
        # more switches per request; a request read to its end drains from the parser's
        # buffer, never the socket, and needs none.
        return keepalive and bool(conn.parser.finish_body())

    def _resume_paused(self) -> None:
        # Oldest first; each resumed intake either reads (and may pause again) or finishes.
        for _ in range(len(self.paused)):
            if self.held_bytes >= self.limits.budget_bytes:
                return
            _, intake = self.paused.popitem(last=False)
            self._advance(intake, registered=False)

    def linger(self, sock: Any) -> None:
        """Close after the client has read our answer, without waiting on the main loop: half
        close now, drop the socket when the client closes its side or LINGER_SECONDS pass."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._drain)
        except (OSError, ValueError, KeyError):
            _close(sock)
            return
        self.lingering[sock] = time.monotonic() + LINGER_SECONDS
        if len(self.lingering) > MAX_LINGERING:
            self._stop_lingering(next(iter(self.lingering)))

    def _drain(self, sock: Any) -> None:
        try:
            if sock.recv(RECV_DRAIN):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._stop_lingering(sock)

    def _stop_lingering(self, sock: Any) -> None:
        self.lingering.pop(sock, None)
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        _close(sock)

    # -- deadlines and stopping -------------------------------------------------------------

    _next_notify = _next_parent_check = _next_scan = 0.0  # monotonic times: due at once

    def notify(self) -> None:
        now = time.monotonic()
        if now >= self._next_notify:
            self._next_notify = now + HOUSEKEEPING_SECONDS
            super().notify()

    def is_parent_alive(self) -> bool:
        now = time.monotonic()
        if now < self._next_parent_check:
            return True
        self._next_parent_check = now + HOUSEKEEPING_SECONDS
        return super().is_parent_alive()

    def murder_pending(self) -> None:
        """Called on every turn of gthread's loop, running and stopping; the scans here run at
        most every HOUSEKEEPING_SECONDS (each walks every connection in intake)."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_scan:
            return
        self._next_scan = now + HOUSEKEEPING_SECONDS
        for intake in [i for i in self.intakes.values() if i.deadline <= now]:
            log.debug("netguard: dropped a connection that did not deliver a request in time")
            self._close_intake(intake)
            if self.alive:  # while stopping, the shortened deadlines are ours, not the client's
                self.dropped.labels("deadline").inc()
        for sock in [s for s, until in self.lingering.items() if until <= now]:
            self._stop_lingering(sock)

    def _cap_keepalive(self, deadline: float) -> None:
        """SIGTERM: connections idle for longer than STOP_GRACE_SECONDS (kept alive, or opened and
        silent) close at once, so the apiserver opens new ones, to a replica that is not
        stopping; partial requests, connections opened just now and kept-alive connections used
        just now get STOP_GRACE_SECONDS."""
        now = time.monotonic()
        # The deque is ordered by when each connection went idle: the long idle ones are a prefix,
        # so the order (which murder_keepalived relies on) holds. A connection idle for less than
        # the grace is probably in use, its next request on the wire: it is answered with
        # "Connection: close" if that request comes within the grace. How long it has been idle
        # is its own record, not its timeout: a connection answered after SIGTERM but before this
        # ran had its timeout cut by gthread already, and read as idle for two minutes.
        for conn in self.keepalived_conns:
            idle_for = now - conn.answered_at
            conn.timeout = now if idle_for > STOP_GRACE_SECONDS else min(conn.timeout, now + STOP_GRACE_SECONDS)
        self.murder_keepalived()
        for intake in list(self.intakes.values()):
            # A connection opened just now is probably a request on its way: it gets the grace.
            if intake.idle and now - intake.started > STOP_GRACE_SECONDS:
                self._close_intake(intake)
            else:
                intake.deadline = min(intake.deadline, now + STOP_GRACE_SECONDS)


RECV_DRAIN = 64 * 1024


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass
