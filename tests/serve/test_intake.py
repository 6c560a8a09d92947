"""Where a request ends, and an intake that reads it without blocking (webhook/serve/intake.py).

The framing rows follow RFC 9112 section 6.3 (message body length) and section 7.1 (chunked
transfer coding): https://www.rfc-editor.org/rfc/rfc9112
"""

from __future__ import annotations

import socket

import pytest

from webhook.serve.intake import CONTINUE, Intake, Limits, Progress, RequestFrame

LIMITS = Limits(body_bytes=100, head_bytes=200)
HEAD = b"POST /validate HTTP/1.1\r\nHost: x\r\n"


def frame_of(data: bytes, limits: Limits = LIMITS) -> RequestFrame:
    frame = RequestFrame(limits)
    frame.scan(bytearray(data))
    return frame


@pytest.mark.parametrize("data,done,oversized", [
    # section 6.3 rule 6: a request without Content-Length or Transfer-Encoding has no body
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True, False),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", False, False),
    # rule 5: Content-Length says how many bytes follow the head
    (HEAD + b"Content-Length: 5\r\n\r\n1234", False, False),
    (HEAD + b"Content-Length: 5\r\n\r\n12345", True, False),
    (HEAD + b"content-length:5\r\n\r\n12345GET / HTTP/1.1\r\n", True, False),  # pipelined bytes after it
    # a body over the limit: handed over at its head, for the app to answer 413 from the length
    (HEAD + b"Content-Length: 101\r\n\r\n", True, True),
    # rule 4 and 3: framing the parser must refuse is handed over at once (gunicorn answers 400)
    (HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", True, False),
    (HEAD + b"Content-Length: five\r\n\r\n", True, False),
    (HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", True, False),
    # section 7.1: chunks up to the last chunk and the (empty) trailer section
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", False, False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", False, False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", True, False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: v\r\n\r\n", True, False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nTrailer: v\r\n", False, False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", True, False),  # not a chunk size: 400
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + b"x" * 64 + b"\r\n41\r\n", True, True),
    # a head longer than head_bytes without its end: gunicorn refuses it (431)
    (b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 300, True, False),
])
def test_where_a_request_ends(data, done, oversized):
    frame = frame_of(data)
    assert (frame.done, frame.oversized) == (done, oversized)


def test_a_head_split_across_reads_is_found_at_the_seam():
    frame = RequestFrame(LIMITS)
    buf = bytearray(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
    assert not frame.scan(buf)
    buf += b"\n"
    assert frame.scan(buf)


def _pair():
    left, right = socket.socketpair()
    left.setblocking(False)
    return left, right


class _Conn:
    def __init__(self, sock):
        self.sock = sock


def test_an_intake_reads_what_arrives_and_is_ready_with_the_whole_request():
    server, client = _pair()
    try:
        intake = Intake(_Conn(server), deadline=0, limits=LIMITS, handshake=False)
        assert intake.advance(room=10_000) is Progress.WAIT and intake.idle
        client.sendall(HEAD + b"Content-Length: 3\r\n\r\nab")
        assert intake.advance(room=10_000) is Progress.WAIT and not intake.idle
        client.sendall(b"c")
        assert intake.advance(room=10_000) is Progress.READY
        assert bytes(intake.buffer).endswith(b"\r\n\r\nabc")
        assert intake.read_bytes == 1
    finally:
        server.close()
        client.close()


def test_an_intake_without_room_pauses_instead_of_reading():
    server, client = _pair()
    try:
        intake = Intake(_Conn(server), deadline=0, limits=LIMITS, handshake=False)
        client.sendall(HEAD + b"Content-Length: 50\r\n\r\n" + b"x" * 50)
        assert intake.advance(room=10) is Progress.PAUSED
        assert len(intake.buffer) == 10  # read up to the room, no further
        assert intake.advance(room=10_000) is Progress.READY
    finally:
        server.close()
        client.close()


def test_an_intake_ends_when_the_client_goes_away():
    server, client = _pair()
    try:
        intake = Intake(_Conn(server), deadline=0, limits=LIMITS, handshake=False)
        client.sendall(b"GET / HT")
        client.close()
        assert intake.advance(room=10_000) is Progress.CLOSE
    finally:
        server.close()


def test_an_intake_answers_expect_100_continue_once_the_head_is_in():
    server, client = _pair()
    try:
        intake = Intake(_Conn(server), deadline=0, limits=LIMITS, handshake=False)
        client.sendall(HEAD + b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert intake.advance(room=10_000) is Progress.WAIT
        client.settimeout(5)
        assert client.recv(100) == CONTINUE
        client.sendall(b"body")
        assert intake.advance(room=10_000) is Progress.READY
    finally:
        server.close()
        client.close()


@pytest.mark.parametrize("data,whole", [
    (HEAD + b"Content-Length: 5\r\n\r\n12345", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nTrailer: v\r\n\r\n", True),
    # handed over unfinished, for gunicorn to refuse or to read the rest of from the socket:
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;" + b"e" * 1100, False),  # a chunk-size line too long
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nT: " + b"v" * 300, False),  # a trailer section too long
    (HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", False),  # malformed framing
    (HEAD + b"Content-Length: 101\r\n\r\n", False),  # over the limit
])
def test_a_request_is_whole_only_when_its_real_end_is_in(data, whole):
    """Whole: the worker drains what the app leaves from memory, with no deadline. Anything
    handed over unfinished is drained from the socket under gunicorn's deadline and byte cap."""
    frame = frame_of(data, Limits(body_bytes=100, head_bytes=200))
    assert frame.done and frame.whole is whole
