"""The generic list-then-watch loop (a reflector), on the API's raw JSON.

One `Reflector` keeps one collection current: it LISTs (paged, a consistent read), hands the items
to its owner, then WATCHes from the list's resourceVersion with bookmarks, and relists when the
server says that version is gone (410). Any other failure -- an HTTP error, a refused or dropped
connection, a read timeout on a dead one -- is logged, counted, and followed by a reconnect after a
capped exponential backoff, resuming from the last resourceVersion seen. The loop ends only when
its stop event is set. Modelled on client-go's Reflector and kopf's `watching.py`; see
https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes

Requests go through the kubernetes client's ApiClient (webhook/inventory/kube.py `RawApi`); responses are read raw and
parsed with orjson (webhook/wire/jsoncodec.py: the standard library decides what orjson refuses), never deserialized into client model objects: those cost ~25x the memory
(docs/design.md, Cluster state). The watch body is newline-delimited JSON events, one per line, which we
split ourselves.
"""

from __future__ import annotations

import gc
import logging
import random
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import urllib3.exceptions

from webhook.inventory.kube import close_response, read_json
from webhook.wire import jsoncodec

log = logging.getLogger("netguard.watch")

# GET of a collection: (query parameters, (connect, read) timeout) -> urllib3 response; see RawApi.
ListCall = Callable[[Mapping[str, Any], tuple[float, float]], Any]
OnList = Callable[[Iterator[Mapping[str, Any]], str], None]  # (every item, the list's resourceVersion)
OnEvent = Callable[[str, Mapping[str, Any]], None]  # (ADDED | MODIFIED | DELETED, object)


class Gone(Exception):
    """410: the resourceVersion asked for is older than the server keeps; only a relist helps."""


class StreamError(Exception):
    """The watch stream said something we cannot go on from (an ERROR event other than 410)."""


@dataclass(frozen=True)
class Timing:
    """How patient one reflector is. Tests shrink these; the defaults suit a real apiserver."""

    page_size: int = 500  # LIST ?limit=: bounds the JSON held at once while listing
    watch_timeout: int = 300  # ?timeoutSeconds= of a watch, in [t, 2t) like client-go, so workers spread out
    read_margin: float = 30.0  # no byte for timeoutSeconds + this: the connection is dead
    connect_timeout: float = 5.0
    list_read_timeout: float = 60.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    backoff_jitter: float = 0.2  # up to this fraction is taken off each delay, so workers spread out
    # How often the served cluster-wide and CNI policy kinds are looked up again (clusterwatch.py):
    # a policy API installed after netguard started is read within this time.
    rediscover_seconds: float = 300.0

    def backoff(self, failures: int) -> float:
        """Delay before attempt number `failures` + 1 after that many failures in a row."""
        if failures <= 0:
            return 0.0
        delay = min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1))
        return delay * (1 - random.uniform(0, self.backoff_jitter))


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of a kubernetes ApiException (0 for transport errors), else None."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def describe(exc: BaseException) -> str:
    """One line for the log and for `last_error`: ApiException's str() spans many lines."""
    status = _status_code(exc)
    if status:
        reason = getattr(exc, "reason", "") or ""
        return f"HTTP {status} {reason}".strip()
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def wake(response: Any) -> None:
    """Wake the thread blocked reading `response`, from another thread.

    Closing does not: on Linux a recv() blocked on a socket is not woken by closing it, and
    urllib3's close() first waits for the reader's buffer lock, held by that very read. Shutting
    the socket down does (urllib3 >= 2.3 exposes it as HTTPResponse.shutdown()).
    """
    try:
        response.shutdown()
        return
    except Exception:  # no shutdown() here, or the connection went back to the pool already
        pass
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def iter_lines(response: Any, chunk_size: int = 65536) -> Iterator[bytes]:
    """Lines of a streaming body as they arrive; the last one even without a newline."""
    if getattr(response, "chunked", False) and response.supports_chunked_reads():
        chunks: Iterator[bytes] = response.stream(chunk_size, decode_content=True)
    else:  # read() would wait for chunk_size bytes; read1() returns what has arrived
        chunks = iter(lambda: response.read1(chunk_size), b"")
    pending = b""
    for chunk in chunks:
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


_pause_lock = threading.Lock()
_pauses = 0
_collector_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a list streams in, back as it was after.

    A page of 500 objects is ~15,000 new containers, and they live while the page is read, so
    the collector keeps running and promoting them, and every full collection walks the whole
    index built so far: for 100,000 namespaces that made parsing take five times as long
    (bench/inventory_memory.py). Nothing a list builds is cyclic (refcounting frees it), so
    pausing only delays other threads' cyclic garbage by the list's few seconds. Nests across
    threads: the collector comes back when the last pause ends, and only if it was on before
    the first.
    """
    global _pauses, _collector_was_enabled
    with _pause_lock:
        if _pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _collector_was_enabled:
                gc.enable()


class Reflector:
    """Keeps one collection current for its owner, in a thread of its own (`run`).

    `synced` turns True after the first complete list and stays True through relists (the owner
    keeps serving the previous state meanwhile). `restarts` counts every reconnect that was not a
    watch ending on time: errors, dropped connections, 410s.
    """

    def __init__(self, name: str, list_call: ListCall, on_list: OnList, on_event: OnEvent,
                 stop: threading.Event, timing: Timing = Timing(),
                 on_restart: Callable[["Reflector", str], None] | None = None,
                 list_lock: threading.Lock | None = None) -> None:
        self.name = name
        self._list_call = list_call
        self._on_list = on_list
        self._on_event = on_event
        self._stop = stop
        self.timing = timing
        self._on_restart = on_restart
        self._list_lock = list_lock or threading.Lock()  # shared: reflectors list one at a time
        self.synced = False
        self.resource_version = ""  # where the next watch starts; "" means relist first
        self.restarts = 0
        self.last_error: str | None = None
        self.failing_since: float | None = None  # monotonic time of the first failure in a row
        self.connected = False  # a watch stream is open right now
        self._response: Any = None
        self._progressed = False  # the current attempt applied at least one event
        # relist(): the calls so far, those a finished list answered, and whether the stream it
        # cut is yet to end (if it ends failing, that is no failure: the loop lists at once).
        self._relists_asked = self._relists_done = 0
        self._cut = False
        self._response_lock = threading.Lock()

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        failures = 0  # in a row, with no progress in between
        try:
            while not self._stop.is_set():
                self._progressed = False
                try:
                    asked = self._relists_asked
                    if not self.resource_version or asked != self._relists_done:
                        with self._list_lock:
                            self._list()
                        self._relists_done = asked  # a list that failed is asked for again
                        if asked == self._relists_asked:  # no relist() since it began: none to cut
                            self._cut = False
                    self._watch()
                    # The stream relist() cut, if it did, ended without an error: nothing is left
                    # to forgive, and a list that fails next is a failure. (No response is open
                    # here, so a relist() that lands just now cut nothing either.)
                    self._cut = False
                    failures = 0  # the watch ended on time: healthy
                    self.failing_since = None
                    continue
                except Gone as exc:
                    failures = 1 if self._progressed else failures + 1
                    self.resource_version = ""
                    # The first 410 relists at once; 410s in a row back off like any error.
                    delay = self._restart(f"410 Gone ({exc}); relisting", failures - 1, logging.INFO)
                except Exception as exc:
                    if self._stop.is_set():
                        break
                    if self._cut:  # relist() cut the stream: no failure, list now (once per call)
                        self._cut = False
                        continue
                    failures = 1 if self._progressed else failures + 1
                    if _status_code(exc) is None and not _is_transport_error(exc):
                        # A bug or an object we cannot read: the state may be half applied.
                        log.exception("%s: unexpected error; relisting", self.name)
                        self.resource_version = ""
                    delay = self._restart(describe(exc), failures, logging.WARNING)
                self._stop.wait(delay)
        except BaseException:
            log.critical("%s: watch thread died", self.name, exc_info=True)
            raise
        finally:
            self.connected = False
            if self._stop.is_set():
                log.debug("%s: watch thread stopped", self.name)
            else:
                log.critical("%s: watch thread ended without stop()", self.name)

    def _restart(self, why: str, failures: int, level: int) -> float:
        """Count and log a restart; the delay before it."""
        delay = self.timing.backoff(failures)
        self.restarts += 1
        self.last_error = why
        self.connected = False
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        log.log(level, "%s: watch restart #%d in %.2fs from resourceVersion %r: %s", self.name,
                self.restarts, delay, self.resource_version, why)
        if self._on_restart is not None:
            self._on_restart(self, why)
        return delay

    @property
    def _relist_pending(self) -> bool:
        return self._relists_asked != self._relists_done

    def relist(self) -> None:
        """List the collection again, now: its owner needs more of each object than it kept
        (webhook/inventory/cluster.py, namespace labels). The open watch is cut; the state it
        built is served until the new list is in, as after a 410."""
        self._relists_asked += 1
        self._cut = True
        self.close()

    def close(self) -> None:
        """Wake the thread if it is blocked reading (used by stop())."""
        with self._response_lock:
            response = self._response
        if response is not None:
            wake(response)

    # ------------------------------------------------------------------ list

    def _list(self) -> None:
        pages = [self._page("")]
        resource_version = str((pages[0].get("metadata") or {}).get("resourceVersion") or "")

        def items() -> Iterator[Mapping[str, Any]]:
            page = pages.pop()  # hold one page at a time, not the first one throughout
            while True:
                yield from page.get("items") or ()
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    return
                # A 410 here (the continue token expired) propagates as Gone: relist from scratch.
                page = self._page(token)

        # The owner swaps in the new state only once every page is in; a failure midway keeps the old one.
        with collector_paused():
            self._on_list(items(), resource_version)
        self.resource_version = resource_version
        if not self.synced:
            log.info("%s: synced at resourceVersion %s", self.name, resource_version)
        self.synced = True

    def _page(self, token: str) -> Mapping[str, Any]:
        # No resourceVersion: a consistent read, which the server pages (from the watch cache it may not).
        if self._stop.is_set():  # e.g. stop() came while waiting for the list lock
            raise StreamError("stopped")
        query: dict[str, Any] = {"limit": self.timing.page_size}
        if token:
            query["continue"] = token
        try:
            response = self._list_call(
                query, (self.timing.connect_timeout, self.timing.list_read_timeout))
        except Exception as exc:
            if _status_code(exc) == 410:
                raise Gone(describe(exc)) from exc
            raise
        with self._response_lock:
            self._response = response  # so that stop() can cut a slow page short
        try:
            if self._stop.is_set():  # stop() ran between the request and here
                raise StreamError("stopped")
            return read_json(response)
        finally:
            with self._response_lock:
                self._response = None

    # ------------------------------------------------------------------ watch

    def _watch(self) -> None:
        """One watch request, until the server ends it; raises on anything else."""
        timeout = self.timing.watch_timeout
        if timeout > 1:
            timeout = random.randint(timeout, 2 * timeout - 1)
        started = time.monotonic()
        try:
            response = self._list_call(
                {"watch": "true", "resourceVersion": self.resource_version,
                 "allowWatchBookmarks": "true", "timeoutSeconds": timeout},
                (self.timing.connect_timeout, timeout + self.timing.read_margin))
        except Exception as exc:
            if _status_code(exc) == 410:
                raise Gone(describe(exc)) from exc
            raise
        with self._response_lock:
            self._response = response
        self.connected = True
        self.failing_since = None  # connected again (backoff, though, resets only on progress)
        try:
            if self._stop.is_set() or self._relist_pending:  # stop() or relist() ran meanwhile
                return
            for line in iter_lines(response):
                self._handle(jsoncodec.loads(line))
                if self._stop.is_set() or self._relist_pending:
                    return
        finally:
            self.connected = False
            with self._response_lock:
                self._response = None
            close_response(response)
        elapsed = time.monotonic() - started
        if not self._progressed and elapsed < timeout / 2:
            # A server or proxy that ends every watch at once would otherwise make us spin.
            # client-go does the same ("very short watch").
            raise StreamError(f"watch ended after {elapsed:.2f}s of {timeout}s without an event")
        log.debug("%s: watch ended at resourceVersion %s", self.name, self.resource_version)

    def _handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            message = obj.get("message") or obj.get("reason") or "no message"
            if code == 410:
                raise Gone(message)
            raise StreamError(f"ERROR event {code}: {message}")
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._on_event(kind, obj)
        elif kind != "BOOKMARK":
            log.warning("%s: ignoring watch event of type %r", self.name, kind)
            return
        # A bookmark carries only a resourceVersion: resume from there, nothing else changes.
        if version:
            self.resource_version = version
        self._progressed = True


def _is_transport_error(exc: BaseException) -> bool:
    """Network trouble, a broken stream or a garbled line: reconnect and resume from where we were."""
    return isinstance(exc, (OSError, urllib3.exceptions.HTTPError, StreamError, ValueError))
