"""A response's head and its body leave in one write: one TLS record, one system call.

gunicorn writes a response's head (status line and headers) and then each body item in separate
`sendall` calls. Over TLS each call is a record of its own, sealed on its own, and each is a
`poll` and a `write` around which CPython lets go of the GIL: an AdmissionReview answer is one
head and one body, so every answer cost two of everything. Here the head waits for the first
body bytes and goes out with them; a response without a body (HEAD, 204, 304, an empty body)
sends its head when it is closed, as gunicorn's own `close` does. A chunked body keeps gunicorn's
framing: its head goes out alone, before the first chunk.

Installed by netguard's worker (webhook/serve/worker.py) in its own process: gunicorn builds
every response from `gunicorn.http.wsgi.Response` (`wsgi.create`), looked up when each request
comes, so the worker sets that name once after the fork.
"""

from __future__ import annotations

from typing import Any

from gunicorn import util
from gunicorn.http import wsgi


class OneWriteResponse(wsgi.Response):
    _head = b""  # the head, built and waiting for the body's first bytes

    def send_headers(self) -> None:
        # gunicorn's own send_headers, except that the bytes are kept instead of written. The
        # head counts as sent from here on, as in gunicorn: the app cannot change it any more.
        if self.headers_sent:
            return
        lines = self.default_headers()
        lines.extend(["%s: %s\r\n" % (name, value) for name, value in self.headers])
        self._head = ("%s\r\n" % "".join(lines)).encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data: bytes) -> None:
        head, self._head = self._head, b""
        if head and not self.chunked:
            util.write(self.sock, head + data)
            return
        if head:
            util.write(self.sock, head)
        super()._emit_body(data)

    def close(self) -> None:
        if not self.headers_sent:
            self.send_headers()
        head, self._head = self._head, b""
        if head:
            util.write(self.sock, head)
        super().close()

    def sendfile(self, respiter: Any) -> bool:
        # sendfile writes the body past this class, straight to the socket, after the head:
        # netguard serves no files, so a file body goes through write() like any other.
        return False


def install() -> None:
    """Every response this process builds from now on is a OneWriteResponse."""
    wsgi.Response = OneWriteResponse  # type: ignore[misc]
