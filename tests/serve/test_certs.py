"""webhook.serve.certs: the files it writes, what is in them, and that Python's ssl accepts them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.serve.certs import CertError, CertFiles, cert_pem, ensure, generate, key_pem, new_ca

LOCAL = ("127.0.0.1", "localhost")


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def assert_issued_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    assert cert.issuer == ca.subject
    ca.public_key().verify(  # raises InvalidSignature otherwise
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return ext(cert, x509.SubjectAlternativeName).value


def snapshot(files: CertFiles) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in vars(files).values() if p.exists()}


def test_writes_the_four_files_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"  # parents are created
    files = generate(out, LOCAL)
    assert files == CertFiles(out / "ca.crt", out / "ca.key", out / "tls.crt", out / "tls.key")
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]


def test_file_modes_ignore_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        files = generate(tmp_path, LOCAL)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in vars(files).values()}
    assert modes == {"ca.key": 0o600, "tls.key": 0o600, "ca.crt": 0o644, "tls.crt": 0o644}


def test_keys_are_p256_pkcs8_unencrypted(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    for path in (files.ca_key, files.tls_key):
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, no password
        assert isinstance(load_key(path).curve, ec.SECP256R1)


def test_ca_certificate(tmp_path: Path) -> None:
    ca = load_cert(generate(tmp_path, LOCAL).ca_crt)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "netguard-ca"
    assert ca.issuer == ca.subject
    bc = ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    assert ext(ca, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        ca.public_key()
    )
    assert_issued_by(ca, ca)
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=3649) < lifetime < dt.timedelta(days=3651)


def test_serving_certificate(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    ca, cert = load_cert(files.ca_crt), load_cert(files.tls_crt)
    assert_issued_by(cert, ca)
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        cert.public_key()
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "127.0.0.1"


def test_tls_key_matches_tls_crt(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    assert spki(load_key(files.tls_key).public_key()) == spki(load_cert(files.tls_crt).public_key())
    assert spki(load_key(files.ca_key).public_key()) == spki(load_cert(files.ca_crt).public_key())


def test_hosts_become_ip_and_dns_sans(tmp_path: Path) -> None:
    san = sans(load_cert(generate(tmp_path, ["127.0.0.1", "localhost", "::1"]).tls_crt))
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_service_and_namespace_give_the_cluster_names(tmp_path: Path) -> None:
    cert = load_cert(generate(tmp_path, service="netguard", namespace="kube-system").tls_crt)
    assert sans(cert).get_values_for_type(x509.DNSName) == [
        "netguard",
        "netguard.kube-system",
        "netguard.kube-system.svc",
        "netguard.kube-system.svc.cluster.local",
    ]
    assert sans(cert).get_values_for_type(x509.IPAddress) == []
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "netguard"


def test_no_duplicate_sans(tmp_path: Path) -> None:
    files = generate(tmp_path, ["web.ns.svc", "localhost", "localhost", "127.0.0.1", "127.0.0.1"],
                     service="web", namespace="ns")
    assert sans(load_cert(files.tls_crt)).get_values_for_type(x509.DNSName) == [
        "web.ns.svc", "localhost", "web", "web.ns", "web.ns.svc.cluster.local",
    ]
    assert len(sans(load_cert(files.tls_crt)).get_values_for_type(x509.IPAddress)) == 1


def test_long_first_name_falls_back_to_default_cn(tmp_path: Path) -> None:
    long_name = "a" * 60 + ".example.com"
    cert = load_cert(generate(tmp_path, [long_name]).tls_crt)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "netguard"
    assert sans(cert).get_values_for_type(x509.DNSName) == [long_name]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"service": "netguard"}, "namespace"),
        ({"service": "netguard", "namespace": ""}, "namespace"),
        ({}, "give at least one --host or --service"),
        ({"hosts": ["", "  "]}, "give at least one --host or --service"),
        ({"hosts": ["localhost"], "days": 0}, "days"),
    ],
)
def test_bad_arguments_raise_and_write_nothing(tmp_path: Path, kwargs: dict, message: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        generate(out, **kwargs)
    assert not out.exists()


def test_a_bare_string_is_not_taken_apart(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        generate(tmp_path, "localhost")


def test_rerun_keeps_the_ca_and_rotates_the_serving_cert(tmp_path: Path) -> None:
    first = generate(tmp_path, LOCAL)
    ca_crt, ca_key = first.ca_crt.read_bytes(), first.ca_key.read_bytes()
    old_cert, old_key = load_cert(first.tls_crt), first.tls_key.read_bytes()

    second = generate(tmp_path, ["localhost"], days=30)
    assert second == first
    assert second.ca_crt.read_bytes() == ca_crt and second.ca_key.read_bytes() == ca_key
    new_cert = load_cert(second.tls_crt)
    assert new_cert.serial_number != old_cert.serial_number
    assert second.tls_key.read_bytes() != old_key
    assert_issued_by(new_cert, load_cert(second.ca_crt))
    assert sans(new_cert).get_values_for_type(x509.IPAddress) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]


def _damage(files: CertFiles, damage: str) -> Path:
    """Break the CA in `files` one way; the file the refusal must name."""
    if damage == "garbage-crt":
        files.ca_crt.write_bytes(b"not a certificate")
        return files.ca_crt
    if damage == "garbage-key":
        files.ca_key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
        return files.ca_key
    if damage == "missing-key":
        files.ca_key.unlink()
        return files.ca_key
    if damage == "unreadable-crt":
        files.ca_crt.unlink()
        files.ca_crt.mkdir()  # a folder where the file should be: read_bytes fails
        return files.ca_crt
    if damage == "not-a-ca":  # the serving certificate where the CA should be
        files.ca_crt.write_bytes(files.tls_crt.read_bytes())
        files.ca_key.write_bytes(files.tls_key.read_bytes())
        return files.ca_crt
    # ca.key from some other CA, e.g. a torn earlier write
    files.ca_key.write_bytes(files.tls_key.read_bytes())
    return files.ca_key


DAMAGES = ["garbage-crt", "garbage-key", "missing-key", "unreadable-crt", "not-a-ca", "foreign-key"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_unusable_ca_is_refused_not_replaced(tmp_path: Path, damage: str) -> None:
    # A new CA would invalidate the caBundle registered with the API server without a word.
    files = generate(tmp_path, LOCAL)
    named = _damage(files, damage)
    before = {p.name: (p.is_dir() or p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    with pytest.raises(CertError, match="Refusing to make a new CA") as refused:
        generate(tmp_path, LOCAL)
    assert str(refused.value).startswith(f"{named}: "), refused.value
    after = {p.name: (p.is_dir() or p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == before  # nothing written, nothing left behind


def test_expired_ca_is_refused(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    cert, key = new_ca(past, dt.timedelta(days=1))
    files.ca_crt.write_bytes(cert_pem(cert))
    files.ca_key.write_bytes(key_pem(key))
    with pytest.raises(CertError, match=r"ca\.crt: expired on"):
        generate(tmp_path, LOCAL)


def test_no_ca_at_all_makes_one(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    files.ca_crt.unlink()
    files.ca_key.unlink()
    generate(tmp_path, LOCAL)
    ca = load_cert(files.ca_crt)
    assert spki(load_key(files.ca_key).public_key()) == spki(ca.public_key())
    assert_issued_by(load_cert(files.tls_crt), ca)


def test_validity_follows_days(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.timezone.utc)
    cert = load_cert(generate(tmp_path, LOCAL, days=7).tls_crt)
    after = dt.datetime.now(dt.timezone.utc)
    minute = dt.timedelta(minutes=1)
    assert before + dt.timedelta(days=7) - minute <= cert.not_valid_after_utc
    assert cert.not_valid_after_utc <= after + dt.timedelta(days=7) + minute
    # backdated for clock skew, so a node a little behind still accepts it
    assert before - dt.timedelta(minutes=6) <= cert.not_valid_before_utc <= after - dt.timedelta(minutes=4)


def test_ensure_generates_when_missing(tmp_path: Path) -> None:
    files = ensure(tmp_path / "certs", LOCAL)
    assert all(p.exists() for p in vars(files).values())
    assert_issued_by(load_cert(files.tls_crt), load_cert(files.ca_crt))


def test_ensure_leaves_an_existing_pair_alone(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    before = snapshot(files)
    assert ensure(tmp_path, ["other.example"]) == files
    assert snapshot(files) == before


def test_ensure_does_not_need_a_ca_when_the_pair_exists(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    files.ca_crt.unlink()
    files.ca_key.unlink()
    before = snapshot(files)
    ensure(tmp_path, LOCAL)
    assert snapshot(files) == before
    assert not files.ca_crt.exists()


def test_ensure_regenerates_a_half_pair(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    files.tls_key.unlink()
    old_serial = load_cert(files.tls_crt).serial_number
    ensure(tmp_path, LOCAL)
    assert files.tls_key.exists()
    assert load_cert(files.tls_crt).serial_number != old_serial


# --- end to end through Python's ssl ---------------------------------------------------------


def handshake(files: CertFiles, server_hostname: str) -> dict:
    """A full TLS handshake in memory: server on tls.crt/tls.key, client trusting only ca.crt."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(files.tls_crt, files.tls_key)
    client_ctx = ssl.create_default_context(cafile=files.ca_crt)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    pending = [client, server]
    for _ in range(10):
        for end in list(pending):
            try:
                end.do_handshake()
                pending.remove(end)
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if not pending:
            return client.getpeercert()
    raise AssertionError("handshake did not finish")


def test_ssl_loads_the_pair_and_the_ca(tmp_path: Path) -> None:
    files = generate(tmp_path, LOCAL)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files.tls_crt, files.tls_key)
    ctx = ssl.create_default_context(cafile=files.ca_crt)
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "netguard-ca"),),)]


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_ssl_handshake_verifies_chain_and_name(tmp_path: Path, name: str) -> None:
    peer = handshake(generate(tmp_path, LOCAL), name)
    assert ("DNS", "localhost") in peer["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in peer["subjectAltName"]


def test_ssl_handshake_after_rotation_uses_same_ca(tmp_path: Path) -> None:
    files = generate(tmp_path, service="netguard", namespace="netguard")
    client_ctx_ca = files.ca_crt.read_bytes()
    generate(tmp_path, service="netguard", namespace="netguard")
    assert files.ca_crt.read_bytes() == client_ctx_ca
    handshake(files, "netguard.netguard.svc")


def test_ssl_handshake_rejects_a_name_not_in_the_cert(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(generate(tmp_path, LOCAL), "evil.example")

