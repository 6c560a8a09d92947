"""Serving under gunicorn over TLS.

The worker is gthread with an intake in front of its threads (webhook/serve/worker.py): a
connection reaches a thread only once its handshake and whole request are in, within one deadline
(--io-timeout), so idle and slow clients cannot hold the threads. Kept-alive connections live 120
s, longer than kube-apiserver's 90 s idle timeout, so the client always closes first and never
reuses a connection the server just dropped (docs/serving.md). gunicorn builds the TLS context
for every accepted connection from the files on disk, so rotated certificates reach new
connections without a restart. With --metrics-bind, a second listener serves the health and
metrics pages over plain HTTP.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from webhook.core.settings import DEFAULT_MAX_BODY_BYTES
from webhook.serve import tlsfiles
from webhook.serve.intake import Limits
from webhook.serve.worker import BoundedBlocking, NetguardWorker

log = logging.getLogger("netguard")
KEEPALIVE_SECONDS = 120
ROTATION_RETRIES = 5
# CPython collects its youngest generation every 700 new container objects. An admission call
# makes about 150 (the decoded review alone is a tree of dicts and lists) and reference counting
# frees nearly all of them when it ends, so most of those collections find nothing to free and
# cost 1-3 µs per call (bench/README.md, Profile). Cyclic garbage now waits for 10,000 new
# objects, a few MB at most.
GC_YOUNG_THRESHOLD = 10_000
# kube-apiserver sends a request whole, right after the handshake: a connection that has not
# delivered its handshake and whole request this long after it opened (or, kept alive, after its
# next request began) is dropped, and no single read or write of a thread blocks longer.
IO_TIMEOUT_SECONDS = 10.0
# Connections per worker before the oldest that has not delivered a request is shed (capped
# under the file descriptor limit, webhook/serve/worker.py).
WORKER_CONNECTIONS = 4096


@dataclass(frozen=True)
class ServeOptions:
    bind: str = "127.0.0.1:8443"
    certs: Path = Path("certs")
    workers: int = 1
    threads: int = 8
    # Requests are answered in milliseconds; a worker stuck this long is restarted by gunicorn.
    timeout: int = 30
    # With a client CA, the TLS layer requires a client certificate it signed (mutual TLS, as
    # kube-apiserver presents with an admission kubeconfig): others never reach the app.
    client_ca: Path | None = None
    io_timeout: float = IO_TIMEOUT_SECONDS
    # Plain HTTP for /healthz, /readyz and /metrics (kubelet probes, Prometheus), beside the webhook port.
    metrics_bind: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def worker_class(self) -> type:
        plain = frozenset([_port(self.metrics_bind)]) if self.metrics_bind else frozenset()
        return type("NetguardWorker", (NetguardWorker,), {
            "limits": Limits(body_bytes=self.max_body_bytes), "io_timeout": self.io_timeout,
            "plain_ports": plain})

    def gunicorn_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "bind": [self.bind, *([self.metrics_bind] if self.metrics_bind else [])],
            "workers": self.workers,
            "worker_class": self.worker_class(),
            "worker_connections": WORKER_CONNECTIONS,
            "threads": self.threads,
            "keepalive": KEEPALIVE_SECONDS,
            "timeout": self.timeout,
            "graceful_timeout": self.timeout,
            "certfile": str(self.certs / "tls.crt"),
            "keyfile": str(self.certs / "tls.key"),
            "accesslog": None,  # stdout carries the audit log; one line per decision is enough
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "netguard",
            "child_exit": _child_exit,
            "ssl_context": _ContextCache(self.io_timeout).hook(),
        }
        if self.client_ca is not None:
            settings["ca_certs"] = str(self.client_ca)
            settings["cert_reqs"] = ssl.CERT_REQUIRED
        # Heartbeat files on a tmpfs keep working under a read-only root filesystem.
        if os.path.isdir("/dev/shm"):
            settings["worker_tmp_dir"] = "/dev/shm"
        return settings


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _port(bind: str) -> int:
    return int(bind.rsplit(":", 1)[1])


def prepare_metrics_dir(path: str) -> None:
    """Point prometheus_client's multiprocess mode at an empty folder.

    Call before anything imports prometheus_client (it picks its storage at import) and before
    the fork. Files of an earlier run are removed: they would be counted again.
    """
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path


class _BoundedSSLSocket(BoundedBlocking, ssl.SSLSocket):
    """A server-side TLS socket whose blocking calls are bounded by `io_timeout`
    (worker.BoundedBlocking); gunicorn logs a client that stops reading as "Socket error
    processing request" with a TimeoutError, and closes the connection."""

    io_timeout: float = IO_TIMEOUT_SECONDS


class _ContextCache:
    """gunicorn builds a TLS context per accepted connection, re-reading the certificate files
    (about 0.7 ms). Reuse the last one while the files are unchanged (same size and mtime), so a
    rotation still reaches the next connection. Its sockets are _BoundedSSLSocket."""

    def __init__(self, io_timeout: float = IO_TIMEOUT_SECONDS) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._bad_key: tuple | None = None  # files found unusable: not tried again until they change
        self._context: ssl.SSLContext | None = None
        self._socket_class = type("BoundedSSLSocket", (_BoundedSSLSocket,), {"io_timeout": io_timeout})

    def get(self, conf: Any, factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        key = _file_stamps(conf.certfile, conf.keyfile, conf.ca_certs)
        with self._lock:
            if self._context is not None and (key == self._key or (key is not None and key == self._bad_key)):
                return self._context
            try:
                context = _load_retrying(factory)
            except (ssl.SSLError, OSError) as exc:
                if self._context is None:
                    raise  # nothing served yet (the start checked the files): nothing to keep
                # One bad Secret update must not become an outage: keep the last good
                # certificate, say which file is wrong, count it, and pick the files up again
                # once they change.
                self._bad_key = key
                log.error("netguard: keeping the last good certificate: %s", _why_unusable(conf, exc))
                _reload_errors().inc()
                return self._context
            context.sslsocket_class = self._socket_class
            self._context, self._key, self._bad_key = context, key, None
            return self._context

    def hook(self) -> Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
        """gunicorn's `ssl_context(conf, default_ssl_context_factory)` server hook."""
        def ssl_context(conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
            return self.get(conf, default_ssl_context_factory)
        return ssl_context


def _why_unusable(conf: Any, exc: BaseException) -> str:
    try:
        tlsfiles.check(Path(conf.certfile), Path(conf.keyfile), Path(conf.ca_certs) if conf.ca_certs else None)
    except tlsfiles.TLSFileError as problem:
        return str(problem)
    return f"{conf.certfile}, {conf.keyfile}: {exc}"


_RELOAD_ERRORS: list[Any] = []


def _reload_errors() -> Any:
    """netguard_certificate_reload_errors_total, made in the worker that first needs it (the
    metrics folder is set by then; its samples reach /metrics through it)."""
    if not _RELOAD_ERRORS:
        from prometheus_client import CollectorRegistry, Counter
        registry = None if os.environ.get(MULTIPROC_ENV) else CollectorRegistry()
        _RELOAD_ERRORS.append(Counter(
            "netguard_certificate_reload_errors",
            "Times the certificate files on disk could not be used; the last good certificate was kept.",
            registry=registry))
    return _RELOAD_ERRORS[0]


def _file_stamps(*paths: str | None) -> tuple | None:
    try:
        return tuple((p, s.st_mtime_ns, s.st_size) for p in paths if p for s in [os.stat(p)])
    except OSError:
        return None


def _load_retrying(factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """A rotation writes tls.crt and tls.key one after the other; a connection that reads
    between the two sees a pair that does not match. A moment later it does, so retry briefly
    and serve the connection instead of dropping it."""
    for attempt in range(ROTATION_RETRIES):
        try:
            return factory()
        except (ssl.SSLError, OSError):
            if attempt == ROTATION_RETRIES - 1:
                raise
            time.sleep(0.02)
    raise AssertionError("unreachable")


def _child_exit(server: Any, worker: Any) -> None:
    # A dead worker's live gauges (inventory readiness, violations) must stop counting.
    from prometheus_client import multiprocess
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(worker.pid)


class NetguardServer(BaseApplication):
    """gunicorn without its command line: options come from `netguard serve`.

    The WSGI app is built by `load()`, which gunicorn calls in each worker after fork, so nothing
    (watch threads included) is started before the fork.
    """

    def __init__(self, options: ServeOptions, app_factory: Callable[[], Any]) -> None:
        self._options = options
        self._app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        _drop_server_banner()
        _json_error_bodies()
        for key, value in self._options.gunicorn_settings().items():
            self.cfg.set(key, value)
        # Newer gunicorn opens a control socket at one fixed path per user; netguard does not use
        # it, and two servers on one machine (tests, a second instance) would fight over it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        app = self._app_factory()
        settle_heap()
        return app


def _drop_server_banner() -> None:
    """gunicorn writes `Server: gunicorn` into every response: it names the stack to whoever
    connects, and says nothing a client needs. Its response class has no setting for it, so its
    header list is filtered (a no-op should a gunicorn version lay the headers out otherwise)."""
    from gunicorn.http import wsgi

    original = wsgi.Response.default_headers
    if getattr(original, "netguard_filtered", False):
        return

    def default_headers(self: Any) -> list[str]:
        return [h for h in original(self) if not h.startswith("Server:")]

    default_headers.netguard_filtered = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = default_headers  # type: ignore[method-assign]


def _json_error_bodies() -> None:
    """gunicorn answers what it cannot parse (400, 414 request line too long, 431 headers too
    large) with an HTML page that echoes the request. Every error body of netguard's is JSON, and
    none carries the client's input back: the same `{"error", "status"}` body as the app's."""
    from gunicorn import util

    if getattr(util.write_error, "netguard_json", False):
        return

    def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
        body = json.dumps({"error": reason, "status": status_int}).encode()
        head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        util.write_nonblock(sock, head.encode("latin-1") + body)

    write_error.netguard_json = True  # type: ignore[attr-defined]
    util.write_error = write_error


def settle_heap() -> None:
    """Called in each worker once its app is built: what exists now (modules, configuration, the
    app) lives as long as the worker, so it moves to the permanent generation, where no full
    collection walks it again; and the youngest generation is collected less often
    (GC_YOUNG_THRESHOLD). Both servers of bench/ get this: it is serving, not netguard's rules."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
