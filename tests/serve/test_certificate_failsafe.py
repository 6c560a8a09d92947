"""A bad Secret update must not become an outage: when the certificate files on disk become
unusable, netguard keeps serving the last good certificate, logs which file and why, counts it,
and picks the files up again once they are valid. Before, the next handshake failed."""

from __future__ import annotations

import time

from tests.serverproc import Server, netguard


def served_serial(srv: Server) -> int:
    conn = srv.connection()
    try:
        conn.connect()
        der = conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()
    from cryptography import x509
    return x509.load_der_x509_certificate(der).serial_number


def eventually(check, what: str, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def test_the_last_good_certificate_is_kept_while_the_files_are_bad(tmp_path):
    srv = Server(tmp_path).start()
    try:
        first = served_serial(srv)
        good_key = (srv.certs / "tls.key").read_bytes()
        (srv.certs / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
        # New connections still complete their handshake, with the old certificate.
        for _ in range(3):
            assert served_serial(srv) == first
            status, body = srv.get("/healthz")
            assert status == 200
        log = eventually(lambda: "keeping the last good certificate" in srv.stderr_path.read_text()
                         and srv.stderr_path.read_text(), "the bad file is logged")
        assert f"{srv.certs}/tls.crt: holds no PEM certificate" in log
        assert log.count("keeping the last good certificate") == 1  # once per bad version of the files
        status, text = srv.get("/metrics")
        assert b"netguard_certificate_reload_errors_total 1.0" in text
        # Valid files again (the same CA, a new serving certificate): picked up.
        netguard("certs", "--out", str(srv.certs), "--host", "127.0.0.1")
        assert (srv.certs / "tls.key").read_bytes() != good_key
        eventually(lambda: served_serial(srv) != first, "the new certificate is served")
    finally:
        assert srv.stop() == 0


def test_a_key_that_does_not_match_is_refused_at_runtime_too(tmp_path):
    srv = Server(tmp_path).start()
    try:
        first = served_serial(srv)
        (srv.certs / "tls.key").write_bytes((srv.certs / "ca.key").read_bytes())
        assert served_serial(srv) == first
        log = eventually(lambda: "keeping the last good certificate" in srv.stderr_path.read_text()
                         and srv.stderr_path.read_text(), "the mismatch is logged")
        assert "tls.key: is not the private key of the certificate in" in log
    finally:
        assert srv.stop() == 0
