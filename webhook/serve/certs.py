"""Self-signed CA and TLS serving certificate for the webhook.

generate() writes ca.crt, ca.key, tls.crt and tls.key (PEM, ECDSA P-256) into a directory.
It reuses a usable CA already in that directory, so re-running only rotates the serving
certificate and the caBundle registered with the API server stays valid. ensure() is the
server's embedded default: generate only when there is no serving pair yet.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CN = "netguard-ca"
DEFAULT_CN = "netguard"
CA_VALIDITY = dt.timedelta(days=3650)
# Nodes whose clocks run a little behind must not reject a certificate issued just now.
CLOCK_SKEW = dt.timedelta(minutes=5)
KEY_MODE = 0o600
CERT_MODE = 0o644

CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertFiles:
    ca_crt: Path
    ca_key: Path
    tls_crt: Path
    tls_key: Path

    @classmethod
    def in_dir(cls, out_dir: str | os.PathLike[str]) -> CertFiles:
        d = Path(out_dir)
        return cls(d / "ca.crt", d / "ca.key", d / "tls.crt", d / "tls.key")


def generate(
    out_dir: str | os.PathLike[str],
    hosts: Sequence[str] = (),
    service: str | None = None,
    namespace: str | None = None,
    days: int = 365,
) -> CertFiles:
    """Issue a serving certificate for hosts/service into out_dir, creating the CA if needed."""
    sans = subject_alt_names(hosts, service, namespace)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    files = CertFiles.in_dir(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    writes: list[tuple[Path, bytes, int]] = []
    ca = _load_ca(files, now)
    if ca is None:
        ca = _new_ca(now)
        writes += [(files.ca_crt, _cert_pem(ca[0]), CERT_MODE), (files.ca_key, _key_pem(ca[1]), KEY_MODE)]
    ca_cert, ca_key = ca

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _serving_cert(key, sans, ca_cert, ca_key, now, days)
    # Certificate before key, the order gunicorn reads them in (cert then key, per
    # connection): a reader then sees a mismatched pair only if its two reads bracket both
    # replaces or fall between them, whereas key-first breaks any read overlapping the swap.
    writes += [(files.tls_crt, _cert_pem(cert), CERT_MODE), (files.tls_key, _key_pem(key), KEY_MODE)]
    _install(writes)
    return files


def ensure(out_dir: str | os.PathLike[str], hosts: Sequence[str]) -> CertFiles:
    """Return the serving pair in out_dir, generating one only if it is missing."""
    files = CertFiles.in_dir(out_dir)
    if files.tls_crt.exists() and files.tls_key.exists():
        return files
    return generate(out_dir, hosts)


def subject_alt_names(
    hosts: Sequence[str], service: str | None, namespace: str | None
) -> list[x509.GeneralName]:
    """SANs in order, without duplicates: hosts as given, then the in-cluster service names."""
    if isinstance(hosts, str):
        # A bare string would otherwise be taken apart into one-letter hosts.
        raise TypeError("hosts must be a sequence of names, not a str")
    names = [h.strip() for h in hosts if h.strip()]
    if service:
        if not namespace:
            raise ValueError("--service needs --namespace")
        names += [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
                  f"{service}.{namespace}.svc.cluster.local"]
    if not names:
        raise ValueError("give at least one --host or --service")
    return list(dict.fromkeys(_general_name(n) for n in names))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _load_ca(files: CertFiles, now: dt.datetime) -> tuple[x509.Certificate, CaKey] | None:
    """The CA in files if it can still sign, else None (and a new one gets made)."""
    try:
        cert = x509.load_pem_x509_certificate(files.ca_crt.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm, x509.ExtensionNotFound):
        return None
    if not isinstance(key, CaKey) or not is_ca or cert.not_valid_after_utc <= now:
        return None
    # A torn earlier write could leave ca.crt and ca.key from different CAs.
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return None
    return cert, key


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_CN)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _serving_cert(
    key: ec.EllipticCurvePrivateKey,
    sans: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: CaKey,
    now: dt.datetime,
    days: int,
) -> x509.Certificate:
    cn = str(sans[0].value)
    if len(cn) > 64:  # the X.520 upper bound for a CN; the SANs carry the real names anyway
        cn = DEFAULT_CN
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:  # a reused CA made elsewhere may lack an SKI
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(aki, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(**enabled: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
         "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"),
        False,
    )
    return x509.KeyUsage(**(flags | enabled))


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: CaKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _install(writes: Iterable[tuple[Path, bytes, int]]) -> None:
    """Put each file in place atomically, in order, so readers see whole old or whole new files.

    Everything is staged before the first rename so the renames happen back to back.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in writes:
            staged.append((_stage(path, data, mode), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _stage(path: Path, data: bytes, mode: int) -> Path:
    # Same directory, so os.replace is a rename within one filesystem. O_EXCL refuses a
    # planted file, and giving the mode to os.open means a key is never readable by others.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask may have narrowed a certificate's 0644
            f.write(data)
            f.flush()
            # Durable before the rename, so a crash cannot leave an empty file in place.
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
