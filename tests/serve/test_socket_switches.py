"""The worker's sockets switch between blocking-for-at-most-io_timeout and non-blocking only when
the mode really changes (webhook/serve/worker.py `BoundedBlocking`): each switch is an
ioctl(FIONBIO) around which CPython lets go of the GIL, and gunicorn asks for five per
kept-alive request."""

from __future__ import annotations

import socket

import pytest

from webhook.serve import worker


@pytest.fixture
def pair():
    left, right = socket.socketpair()
    left.__class__ = type("Bounded", (worker._BoundedSocket,), {"__slots__": (), "io_timeout": 7.0})
    yield left, right
    left.close()
    right.close()


@pytest.fixture
def switches(monkeypatch):
    calls = []
    real = worker._set_timeout
    monkeypatch.setattr(worker, "_set_timeout", lambda sock, value: calls.append(value) or real(sock, value))
    return calls


def test_blocking_means_at_most_io_timeout_and_non_blocking_means_zero(pair):
    sock, _ = pair
    sock.setblocking(True)
    assert sock.gettimeout() == 7.0
    sock.settimeout(None)
    assert sock.gettimeout() == 7.0
    sock.setblocking(False)
    assert sock.gettimeout() == 0.0
    sock.settimeout(2.5)
    assert sock.gettimeout() == 2.5


def test_an_unchanged_mode_is_not_set_again(pair, switches):
    sock, _ = pair
    sock.setblocking(False)
    sock.setblocking(False)  # finish_request, then the intake: one switch
    sock.setblocking(True)
    sock.settimeout(None)  # the same io_timeout
    sock.setblocking(False)
    assert switches == [0.0, 7.0, 0.0]


def test_a_skipped_switch_leaves_the_socket_as_asked(pair):
    sock, peer = pair
    sock.setblocking(False)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):  # non-blocking: nothing to read, no wait
        sock.recv(1)
    sock.setblocking(True)
    sock.setblocking(True)
    peer.send(b"x")
    assert sock.recv(1) == b"x"  # blocking (bounded): the byte is waited for and read
