"""Lifecycle under load: SIGTERM drains, certificate rotation drops nothing."""

from __future__ import annotations

import http.client
import signal
import ssl
import threading
import time

from tests.serverproc import Server, lb_review, netguard

CLIENTS = 6
SECONDS = 1.5


class Load:
    """Clients posting reviews, each on a new connection, until told to stop or refused.

    Outcomes: `ok` (HTTP 200 with a decision), `refused` (the listener was closed: the request
    never reached the server, which a client retries elsewhere), `failed` (anything else: a
    request the server accepted and then dropped, or answered with an error).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stop = threading.Event()
        self.ok = self.refused = 0
        self.failed: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(CLIENTS)]

    def run(self, n: int) -> None:
        deadline = time.monotonic() + 30
        count = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            count += 1
            try:
                conn = self.server.connection()
                conn.connect()
            except (ConnectionRefusedError, ConnectionResetError, ssl.SSLError, OSError):
                with self.lock:
                    self.refused += 1
                if self.server.proc.poll() is not None:
                    return
                time.sleep(0.01)
                continue
            try:
                status, body = self.server.post_review("/validate", lb_review("load", f"c{n}-{count}"), conn)
                good = status == 200 and body["response"]["uid"] == f"uid-load-c{n}-{count}"
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failed.append(f"HTTP {status}")
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failed.append(repr(exc))
            finally:
                conn.close()

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=40)


def test_sigterm_drains_in_flight_requests_and_exits_zero(tmp_path):
    (tmp_path / "tmp").mkdir()
    srv = Server(tmp_path, workers=2, env={"TMPDIR": str(tmp_path / "tmp")}).start()
    metrics_dirs = list((tmp_path / "tmp" / "netguard-metrics").glob("*-*"))
    assert len(metrics_dirs) == 1 and any(metrics_dirs[0].iterdir())
    with Load(srv) as load:
        time.sleep(SECONDS)
        served_before = load.ok
        srv.proc.send_signal(signal.SIGTERM)
        code = srv.proc.wait(timeout=30)
    assert code == 0
    assert served_before > 20, "the load never got going"
    assert load.failed == []
    assert not metrics_dirs[0].exists(), "the metrics folder made for this run was left behind"


def test_certificate_rotation_under_load_fails_no_request(tmp_path):
    srv = Server(tmp_path, workers=2).start()
    try:
        with Load(srv) as load:
            for _ in range(5):
                time.sleep(0.2)
                netguard("certs", "--out", str(srv.certs), "--host", "127.0.0.1")
            time.sleep(0.2)
        assert load.ok > 20 and load.refused == 0
        assert load.failed == []
    finally:
        assert srv.stop() == 0
