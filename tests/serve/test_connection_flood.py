"""Idle, slow and half-open clients cost a socket, not a thread (webhook/serve/worker.py).

Each server here has one worker with two threads and a long --io-timeout (30 s), far above the
clients' own timeout (5 s): a legitimate request answered within its client's timeout while the
attack is on shows the attackers are not holding the threads. Before the intake, gthread gave
every new connection a thread for up to 5 s of silence (then again per byte), so two idle
sockets delayed everyone; the attack sizes below are each enough to show it.
"""

from __future__ import annotations

import http.client
import resource
import signal
import socket
import ssl
import threading
import time

import pytest

from tests.serverproc import Server, free_port, lb_review

IO_TIMEOUT = 30
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00"  # a TLS record header announcing 512 bytes, then nothing


def _flood_server(tmp_path, *extra: str, **kwargs) -> Server:
    return Server(tmp_path, "--threads", "2", "--io-timeout", str(IO_TIMEOUT), *extra, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    metrics_port = free_port()
    srv = _flood_server(tmp_path_factory.mktemp("flood"), "--metrics-bind", f"127.0.0.1:{metrics_port}")
    srv.metrics_port = metrics_port
    srv.start()
    yield srv
    assert srv.stop() == 0


def _answered(srv: Server, name: str) -> bool:
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.context(), timeout=5)
    status, answer = srv.post_review("/validate", lb_review("shop", name), conn)
    return status == 200 and answer["response"]["uid"] == f"uid-shop-{name}"


def _idle_tcp(srv: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=10)


def _stalled_handshake(srv: Server) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    raw.sendall(PARTIAL_CLIENT_HELLO)
    return raw


def _silent_after_handshake(srv: Server) -> ssl.SSLSocket:
    return srv.context().wrap_socket(_idle_tcp(srv), server_hostname="127.0.0.1")


@pytest.mark.parametrize("attack,count", [(_idle_tcp, 40), (_stalled_handshake, 50), (_silent_after_handshake, 20)],
                         ids=["idle-tcp", "stalled-handshakes", "silent-after-handshake"])
def test_open_connections_that_send_nothing_delay_no_one(server, attack, count):
    attackers = [attack(server) for _ in range(count)]
    try:
        time.sleep(0.3)  # every one of them accepted by now
        assert _answered(server, f"during-{attack.__name__.strip('_')}")
        # kept alive: the same connection serves a second request
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.context(), timeout=5)
        assert server.post_review("/validate", lb_review("shop", "keep-1"), conn)[0] == 200
        sock = conn.sock
        assert server.post_review("/validate", lb_review("shop", "keep-2"), conn)[0] == 200
        assert conn.sock is sock
        conn.close()
    finally:
        for s in attackers:
            s.close()


class _Slowloris:
    """Clients that complete the handshake, then send a request head one byte at a time."""

    def __init__(self, srv: Server, count: int, interval: float = 0.2) -> None:
        self.srv, self.interval = srv, interval
        self.stop = threading.Event()
        self.closed_by_server: list[float] = []
        self.answered = 0
        self.threads = [threading.Thread(target=self.run) for _ in range(count)]

    def run(self) -> None:
        head = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 4000
        started = time.monotonic()
        try:
            sock = _silent_after_handshake(self.srv)
        except OSError:
            return
        sock.settimeout(0.01)
        with sock:
            for byte in head[: int(30 / self.interval)]:  # bounded: at most ~30 s of dripping
                if self.stop.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                    if sock.recv(1) == b"":
                        self.closed_by_server.append(time.monotonic() - started)
                        return
                    self.answered += 1
                except (TimeoutError, ssl.SSLWantReadError):
                    pass
                except (OSError, ssl.SSLError):
                    self.closed_by_server.append(time.monotonic() - started)
                    return
                time.sleep(self.interval)

    def __enter__(self) -> _Slowloris:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=40)


def test_slowloris_clients_delay_no_one(server):
    with _Slowloris(server, count=8):
        time.sleep(1.0)  # all of them dripping
        assert _answered(server, "during-slowloris")
        status, body = server.get("/healthz")
        assert status == 200 and body == {"status": "ok"}


def test_a_slowloris_is_dropped_at_its_deadline_although_it_keeps_sending(tmp_path):
    # Per blocking call, every byte would restart the clock: the deadline is for the whole head.
    srv = Server(tmp_path, "--threads", "2", "--io-timeout", "1.5").start()
    try:
        with _Slowloris(srv, count=2, interval=0.1) as loris:
            for t in loris.threads:
                t.join(timeout=20)
        assert len(loris.closed_by_server) == 2 and loris.answered == 0
        assert max(loris.closed_by_server) < 10  # closed near 1.5 s (the loop ticks once a second), not after 30
        assert _dropped(srv, "deadline") >= 2
    finally:
        assert srv.stop() == 0


def test_health_and_metrics_answer_on_their_own_plain_port_during_a_flood(server):
    attackers = [_idle_tcp(server) for _ in range(40)] + [_stalled_handshake(server) for _ in range(20)]
    try:
        time.sleep(0.3)
        plain = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=5)
        for path, expected in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200)):
            plain.request("GET", path)
            response = plain.getresponse()
            response.read()
            assert response.status == expected, path
        # The admission endpoints are never served without TLS.
        plain.request("POST", "/validate", body=b"{}", headers={"Content-Type": "application/json"})
        response = plain.getresponse()
        assert response.status == 404 and b"only" in response.read()
        plain.close()
    finally:
        for s in attackers:
            s.close()


def test_clients_that_never_close_after_connection_close_do_not_stall_the_loop(server):
    # gunicorn lingers on its main loop for up to 2 s after a Connection: close answer, waiting
    # for the client to close: six such clients at once would hold it 12 s.
    body = b'{"apiVersion": "admission.k8s.io/v1"}'
    request = (b"POST /validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    holders = [_silent_after_handshake(server) for _ in range(6)]
    try:
        for raw in holders:
            raw.sendall(request)  # and never read the answer, nor close
        time.sleep(0.3)
        assert _answered(server, "after-lingerers")
        for raw in holders:  # each was answered all the same
            assert raw.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        for s in holders:
            s.close()


def test_beyond_the_descriptor_limit_the_oldest_idle_connections_are_shed(tmp_path):
    # A soft limit of 256 descriptors leaves the worker room for ~190 connections; 400 idle
    # sockets fill it twice over, and a review still gets in.
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    srv = _flood_server(tmp_path)
    srv.preexec = low_limit
    srv.start()
    attackers = []
    try:
        for _ in range(400):
            try:
                attackers.append(_idle_tcp(srv))
            except OSError:
                break
        time.sleep(0.5)
        assert _answered(srv, "past-the-cap")
        shed = sum(1 for s in attackers if _closed_by_peer(s))
        assert shed >= 400 - 256, "the oldest idle connections were not shed"
        assert _dropped(srv, "shed") >= shed
    finally:
        for s in attackers:
            s.close()
        assert srv.stop() == 0


def _dropped(srv: Server, reason: str) -> float:
    """netguard_connections_dropped_total{reason} from /metrics."""
    status, page = srv.get("/metrics")
    assert status == 200
    prefix = f'netguard_connections_dropped_total{{reason="{reason}"}} '
    return sum(float(line[len(prefix):]) for line in page.decode().splitlines() if line.startswith(prefix))


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_sigterm_with_idle_connections_open_exits_at_once(tmp_path):
    srv = _flood_server(tmp_path).start()
    kept = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.context(), timeout=5)
    assert srv.post_review("/validate", lb_review("shop", "before-stop"), kept)[0] == 200
    idle = [_idle_tcp(srv), _stalled_handshake(srv), _silent_after_handshake(srv)]
    try:
        time.sleep(1.5)  # idle for longer than a request on its way would be
        srv.proc.send_signal(signal.SIGTERM)
        # The graceful timeout is 30 s; idle connections must not make the worker wait for it.
        assert srv.proc.wait(timeout=6) == 0
    finally:
        kept.close()
        for s in idle:
            s.close()
