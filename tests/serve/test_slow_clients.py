"""Clients that connect and then stall cannot starve netguard (webhook/serve/server.py, --io-timeout).

gunicorn's gthread worker reads a new connection's handshake and first request in a pool thread,
blocking. netguard bounds every blocking socket call, so a stalled client loses its thread after
--io-timeout and everyone else is answered. The servers here have 2 threads, so two stalled
clients would otherwise take all of them.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.serverproc import Server, lb_review
from webhook.serve.server import _ContextCache

IO_TIMEOUT = 1.0
# A TLS record header announcing a 512-byte handshake message, and nothing after it.
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("slow"), "--threads", "2", "--io-timeout", str(IO_TIMEOUT)).start()
    yield srv
    assert srv.stop() == 0


def _silent_after_handshake(srv: Server) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return srv.context().wrap_socket(raw, server_hostname="127.0.0.1")


def _stalled_in_handshake(srv: Server) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    raw.sendall(PARTIAL_CLIENT_HELLO)
    return raw


@pytest.mark.parametrize("stall", [_silent_after_handshake, _stalled_in_handshake],
                         ids=["silent-after-handshake", "stalled-in-handshake"])
def test_stalled_clients_do_not_keep_others_waiting(server, stall):
    stalled = [stall(server) for _ in range(2)]  # one per thread of the only worker
    try:
        time.sleep(0.3)  # both are now in the worker's threads
        # The client's own timeout (10 s) is far above --io-timeout: without the bound this
        # request would wait for as long as the stalled clients stay connected.
        status, answer = server.post_review("/validate", lb_review("shop", "after-stall"))
        assert status == 200 and answer["response"]["uid"] == "uid-shop-after-stall"
        for conn in stalled:  # the server dropped them: reading gives EOF (or a reset), not a wait
            conn.settimeout(10)
            try:
                assert conn.recv(1) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass
    finally:
        for conn in stalled:
            conn.close()
    assert server.proc.poll() is None


def test_kept_alive_connection_outlives_the_io_timeout(server):
    conn = server.connection()
    try:
        assert server.post_review("/validate", lb_review("shop", "first"), conn)[0] == 200
        sock = conn.sock
        time.sleep(IO_TIMEOUT * 2.5)  # idle between requests: waiting in gunicorn's poller
        status, answer = server.post_review("/validate", lb_review("shop", "second"), conn)
        assert status == 200 and answer["response"]["uid"] == "uid-shop-second"
        assert conn.sock is sock, "the connection was reopened"
    finally:
        conn.close()


def test_blocking_means_bounded_on_server_sockets():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cache = _ContextCache(io_timeout=2.5)

    class Conf:
        certfile = keyfile = ca_certs = None

    bounded = cache.get(Conf(), lambda: context)
    left, right = socket.socketpair()
    try:
        tls = bounded.wrap_socket(left, server_side=True, do_handshake_on_connect=False)
        assert tls.gettimeout() == 2.5  # left was blocking (no timeout): now bounded
        tls.setblocking(False)
        assert tls.gettimeout() == 0.0
        tls.setblocking(True)
        assert tls.gettimeout() == 2.5
        tls.settimeout(0.5)  # an explicit timeout is kept
        assert tls.gettimeout() == 0.5
    finally:
        left.close()
        right.close()
