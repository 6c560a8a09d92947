"""Over real TLS: methods a route does not serve get a 405 with a JSON body (OPTIONS included:
Flask answered it 200), and no response names the server's stack (gunicorn wrote `Server:
gunicorn`)."""

from __future__ import annotations

import json
import socket

import pytest

from tests.serverproc import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("contract")).start()
    yield srv
    assert srv.stop() == 0


def raw(server: Server, method: str, path: str):
    conn = server.connection()
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("method, path, allow", [
    ("OPTIONS", "/validate", "POST"),
    ("OPTIONS", "/mutate", "POST"),
    ("GET", "/validate", "POST"),
    ("OPTIONS", "/healthz", "GET, HEAD"),
    ("DELETE", "/metrics", "GET, HEAD"),
])
def test_other_methods_are_405_with_json(server, method, path, allow):
    status, headers, body = raw(server, method, path)
    assert status == 405
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["status"] == 405
    assert set(headers["Allow"].split(", ")) == set(allow.split(", "))


@pytest.mark.parametrize("method, path", [("GET", "/healthz"), ("OPTIONS", "/validate"), ("GET", "/nowhere")])
def test_no_server_banner(server, method, path):
    _, headers, _ = raw(server, method, path)
    assert "Server" not in headers and "gunicorn" not in json.dumps(headers).lower()


def raw_bytes(server: Server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
        with server.context().wrap_socket(plain, server_hostname="127.0.0.1") as tls:
            tls.sendall(data)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return answer


@pytest.mark.parametrize("data, status", [
    pytest.param(b"HELLO THERE\r\n\r\n", 400, id="bad-request-line"),
    pytest.param(b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, id="request-line-too-long"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431, id="header-too-large"),
])
def test_gunicorns_own_errors_are_json_and_echo_nothing(server, data, status):
    # Before, these were HTML pages quoting the request back.
    head, _, body = raw_bytes(server, data).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Content-Type: application/json" in head and b"Server:" not in head
    payload = json.loads(body)
    assert payload["status"] == status and b"xxxx" not in body and b"yyyy" not in body and b"HELLO" not in body


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_the_app_leaves_unread_is_drained_and_the_connection_kept(server, framing):
    """/healthz reads no body: what the app leaves is drained from the request held in memory
    (webhook/serve/worker.py `_keepalive_after`), and the next request on the same connection is
    answered, not read as the rest of the first."""
    body = b'{"padding": "' + b"z" * 3000 + b'"}'
    if framing == "length":
        first = b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    else:
        first = (b"POST /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
        with server.context().wrap_socket(plain, server_hostname="127.0.0.1") as tls:
            tls.sendall(first)
            head, payload = read_response(tls)
            assert head.startswith(b"HTTP/1.1 405 ") and json.loads(payload)["status"] == 405  # POST on /healthz
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            head, payload = read_response(tls)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert b"connection: close" not in head.lower()


def read_response(tls) -> tuple[bytes, bytes]:
    """One response with a Content-Length body: (head, body)."""
    data = b""
    for _ in range(100):  # bounded: a response arrives in a few TLS records
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            if len(body) >= length:
                return head, body[:length]
        chunk = tls.recv(65536)
        assert chunk, f"connection closed after {data[:300]!r}"
        data += chunk
    raise AssertionError(f"no whole response in {data[:300]!r}")
