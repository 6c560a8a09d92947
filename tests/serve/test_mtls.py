"""`netguard serve --client-ca`: a client certificate signed by that CA is required at the TLS layer."""

from __future__ import annotations

import datetime as dt
import http.client
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.serverproc import Server, lb_review, make_certs


def client_certificate(ca_dir, out_dir, name="kube-apiserver"):
    """A clientAuth certificate signed by the CA in ca_dir, as an admission kubeconfig would hold."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out_dir / "client.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return out_dir / "client.crt", out_dir / "client.key"


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    work = tmp_path_factory.mktemp("mtls")
    client_ca = make_certs(work / "client-ca")
    srv = Server(work, "--client-ca", str(client_ca / "ca.crt")).start_when(lambda: True)
    yield srv, client_ca, work
    assert srv.stop() == 0


def request_with(srv, context):
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=context, timeout=10)
    try:
        return srv.post_review("/validate", lb_review("mtls"), conn)
    finally:
        conn.close()


def test_client_certificate_from_the_client_ca_is_served(mtls):
    srv, client_ca, work = mtls
    context = srv.context()
    context.load_cert_chain(*client_certificate(client_ca, work / "good"))
    status, body = request_with(srv, context)
    assert status == 200 and body["response"]["uid"] == "uid-mtls-edge"


def audited(srv) -> int:
    return len(srv.audit_lines())


def test_no_client_certificate_is_refused_at_the_tls_layer(mtls):
    srv, _, _ = mtls
    before = audited(srv)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request_with(srv, srv.context())
    assert audited(srv) == before  # refused before any HTTP: the app never saw it


def test_certificate_from_another_ca_is_refused(mtls):
    srv, _, work = mtls
    stranger = make_certs(work / "stranger-ca")
    context = srv.context()
    context.load_cert_chain(*client_certificate(stranger, work / "bad"))
    before = audited(srv)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request_with(srv, context)
    assert audited(srv) == before
