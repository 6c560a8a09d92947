"""A response leaves in one write (webhook/serve/onewrite.py): gunicorn wrote its head and its
body in two, so every answer was two TLS records, two polls and two writes."""

from __future__ import annotations

import json
import socket
import ssl
import time
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from tests.serverproc import Server, recorded
from webhook.serve.onewrite import OneWriteResponse

APPLICATION_DATA = 23  # TLS record content type (RFC 8446 section 5.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("onewrite")).start()
    yield srv
    assert srv.stop() == 0


class RecordCountingClient:
    """TLS over memory buffers, so the records the server sends can be counted as they arrive."""

    def __init__(self, server: Server) -> None:
        self.raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = server.context().wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.pending = b""  # raw bytes of a record not complete yet
        self.records: list[int] = []  # content type of each whole record received
        self._until(self._handshake_done)

    def _handshake_done(self) -> bool:
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def _until(self, done) -> None:
        deadline = time.monotonic() + 10
        while not done():
            self._flush()
            assert time.monotonic() < deadline, "the server did not answer in time"
            data = self.raw.recv(65536)
            assert data, "the server closed the connection"
            self._count(data)
            self.incoming.write(data)
        self._flush()

    def _flush(self) -> None:
        if self.outgoing.pending:
            self.raw.sendall(self.outgoing.read())

    def _count(self, data: bytes) -> None:
        self.pending += data
        while len(self.pending) >= 5:
            length = int.from_bytes(self.pending[3:5], "big")
            if len(self.pending) < 5 + length:
                return
            self.records.append(self.pending[0])
            self.pending = self.pending[5 + length:]

    def exchange(self, request: bytes) -> tuple[bytes, int]:
        """Send one request; its answer, and how many application-data records carried it."""
        self.tls.write(request)
        before = len(self.records)
        answer = bytearray()

        def complete() -> bool:
            try:
                while chunk := self.tls.read(65536):
                    answer.extend(chunk)
            except ssl.SSLWantReadError:
                pass
            head, sep, body = bytes(answer).partition(b"\r\n\r\n")
            if not sep:
                return False
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            return len(body) >= length and not self.pending

        self._until(complete)
        return bytes(answer), self.records[before:].count(APPLICATION_DATA)

    def close(self) -> None:
        self.raw.close()


def _post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("name", ["11-validate-Service-CREATE-ssa-lb.json",
                                  "00-mutate-NetworkPolicy-CREATE-default-deny.json"])
def test_an_admission_answer_is_one_tls_record(server, name):
    review = recorded(name)
    request = _post(review["path"].split("?")[0], json.dumps(review["body"]).encode())
    client = RecordCountingClient(server)
    try:
        client.exchange(request)  # the first answer may share the wire with session tickets
        answer, records = client.exchange(request)
    finally:
        client.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["response"]["uid"] == review["body"]["request"]["uid"]
    assert records == 1  # gunicorn sent the head and the body as two


def test_a_flask_answer_is_one_tls_record_too(server):
    client = RecordCountingClient(server)
    try:
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        client.exchange(request)
        answer, records = client.exchange(request)
    finally:
        client.close()
    assert answer.endswith(b'{"status":"ok"}') and records == 1


# -- the response alone, on a socket that records each write ------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def _response(method: str = "POST", version: tuple[int, int] = (1, 1)):
    req = SimpleNamespace(method=method, version=version, should_close=lambda: False)
    sock = Recorder()
    return OneWriteResponse(req, sock, Config()), sock


def test_head_and_first_body_bytes_are_one_write_and_later_items_follow():
    resp, sock = _response()
    resp.start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "6")])
    resp.write(b"abc")
    resp.write(b"def")
    resp.close()
    assert len(sock.writes) == 2
    head, _, body = sock.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 6" in head and body == b"abc"
    assert sock.writes[1] == b"def"


@pytest.mark.parametrize("method, status, items", [
    ("HEAD", "200 OK", [b"ignored"]),  # a HEAD answer carries no body (RFC 9110)
    ("POST", "204 No Content", []),
    ("POST", "200 OK", []),  # an empty body: the head alone, when the response is closed
])
def test_a_response_without_body_bytes_sends_its_head_when_closed(method, status, items):
    resp, sock = _response(method)
    resp.start_response(status, [("Content-Length", "0")] if status.startswith("200") and method == "POST" else [])
    for item in items:
        resp.write(item)
    assert sock.writes == []
    resp.close()
    assert len(sock.writes) == 1 and sock.writes[0].startswith(f"HTTP/1.1 {status}\r\n".encode())
    assert sock.writes[0].endswith(b"\r\n\r\n")


def test_a_chunked_body_keeps_gunicorns_framing():
    resp, sock = _response()
    resp.start_response("200 OK", [("Content-Type", "text/plain")])  # no length: chunked
    resp.write(b"hello")
    resp.close()
    assert sock.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and sock.writes[0].endswith(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in sock.writes[0]
    assert b"".join(sock.writes[1:]) == b"5\r\nhello\r\n0\r\n\r\n"


def test_a_file_body_goes_through_write_so_the_head_comes_first():
    resp, _ = _response()
    assert resp.sendfile(SimpleNamespace(filelike=None)) is False
