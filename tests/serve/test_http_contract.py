"""Over real TLS: methods a route does not serve get a 405 with a JSON body (OPTIONS included:
Flask answered it 200), and no response names the server's stack (gunicorn wrote `Server:
gunicorn`)."""

from __future__ import annotations

import json

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
