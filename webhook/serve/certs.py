"""Self-signed CA and TLS serving certificate for the webhook.

generate() writes ca.crt, ca.key, tls.crt and tls.key (PEM, ECDSA P-256) into a directory.
It reuses the CA already in that directory, so re-running only rotates the serving certificate
and the caBundle registered with the API server stays valid; a CA it cannot use (unreadable,
not a CA, expired, a key of another certificate) is refused with CertError rather than replaced.
ensure() is the server's embedded default: generate only when there is no serving pair yet.
new_ca(), issue_serving() and install() are the pieces the in-cluster rotation
(webhook/serve/certrotator.py) builds its certificates and files with.
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


class CertError(ValueError):
    """A CA that cannot be used; the message names the file (or Secret key) and why."""


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
        ca = new_ca(now)
        writes += [(files.ca_crt, _cert_pem(ca[0]), CERT_MODE), (files.ca_key, _key_pem(ca[1]), KEY_MODE)]
    ca_cert, ca_key = ca

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _serving_cert(key, sans, ca_cert, ca_key, now, now + dt.timedelta(days=days))
    # Certificate before key, the order gunicorn reads them in (cert then key, per
    # connection): a reader then sees a mismatched pair only if its two reads bracket both
    # replaces or fall between them, whereas key-first breaks any read overlapping the swap.
    writes += [(files.tls_crt, _cert_pem(cert), CERT_MODE), (files.tls_key, _key_pem(key), KEY_MODE)]
    install(writes)
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
    """The CA in files; None when there is none (neither file), so a new one gets made.

    A CA that is there but cannot be used is refused, not replaced: a new CA would silently
    invalidate the caBundle already registered with the API server."""
    present = [p for p in (files.ca_crt, files.ca_key) if p.exists() or p.is_symlink()]
    if not present:
        return None
    try:
        if len(present) == 1:
            missing = files.ca_key if present[0] == files.ca_crt else files.ca_crt
            raise CertError(f"{missing}: no such file, but {present[0]} is there")
        try:
            cert_pem, key_pem = files.ca_crt.read_bytes(), files.ca_key.read_bytes()
        except OSError as exc:
            raise CertError(f"{exc.filename}: cannot be read: {exc.strerror or exc}") from None
        return load_ca(cert_pem, key_pem, now, str(files.ca_crt), str(files.ca_key))
    except CertError as exc:
        raise CertError(f"{exc}. Refusing to make a new CA: it would invalidate the caBundle "
                        "registered with the API server. Fix the file, or move ca.crt and ca.key "
                        "away to make a new CA (then register the new caBundle)") from None


def load_ca(cert_pem: bytes, key_pem: bytes, now: dt.datetime, cert_name: str = "ca.crt",
            key_name: str = "ca.key") -> tuple[x509.Certificate, CaKey]:
    """The CA certificate and key of two PEM texts, if they can still sign; else CertError
    naming `cert_name` or `key_name` and why."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise CertError(f"{cert_name}: holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertError(f"{key_name}: holds no unencrypted PEM private key") from None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertError(f"{cert_name}: is not a CA certificate (no basicConstraints CA:TRUE)")
    if not isinstance(key, CaKey):
        raise CertError(f"{key_name}: is not an ECDSA or RSA key")
    if cert.not_valid_after_utc <= now:
        raise CertError(f"{cert_name}: expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    # A torn earlier write could leave ca.crt and ca.key from different CAs.
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise CertError(f"{key_name}: is not the private key of the certificate in {cert_name}")
    return cert, key


def new_ca(now: dt.datetime, validity: dt.timedelta = CA_VALIDITY,
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA (ECDSA P-256) valid from `now` (less CLOCK_SKEW) for `validity`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_CN)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_serving(
    sans: list[x509.GeneralName], ca_cert: x509.Certificate, ca_key: CaKey, now: dt.datetime,
    not_after: dt.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key and a serving certificate for `sans`, signed by the CA, valid until `not_after`."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _serving_cert(key, sans, ca_cert, ca_key, now, not_after), key


def _serving_cert(
    key: ec.EllipticCurvePrivateKey,
    sans: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: CaKey,
    now: dt.datetime,
    not_after: dt.datetime,
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
        .not_valid_after(not_after)
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


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: CaKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_cert_pem, _key_pem = cert_pem, key_pem


def same_key(key: CaKey, cert: x509.Certificate) -> bool:
    return _spki(key.public_key()) == _spki(cert.public_key())


def install(writes: Iterable[tuple[Path, bytes, int]]) -> None:
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
