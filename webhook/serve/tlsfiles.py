"""Whether the certificate files netguard serves with can be used, and if not, which file and why.

At start a bad file refuses the start with that message (rather than a server whose every
handshake fails with "[SSL] PEM lib"); at runtime webhook/serve/server.py keeps serving the last
good certificate while the files on disk are unusable, and says why.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization


class TLSFileError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TLSFileError(f"{path}: no such file ({what})") from None
    except IsADirectoryError:
        raise TLSFileError(f"{path}: is a folder, not a file ({what})") from None
    except PermissionError:
        raise TLSFileError(f"{path}: cannot be read: permission denied ({what})") from None
    except OSError as exc:
        raise TLSFileError(f"{path}: cannot be read: {exc.strerror or exc} ({what})") from None


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        found = []
    if not found:
        raise TLSFileError(f"{path}: holds no PEM certificate ({what})")
    return found


def check(certfile: Path, keyfile: Path, client_ca: Path | None = None) -> None:
    """Raise TLSFileError naming the first unusable file: unreadable, not PEM, or a key that does
    not belong to the certificate."""
    leaf = _certificates(certfile, "the serving certificate")[0]
    data = _read(keyfile, "the serving certificate's private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise TLSFileError(f"{keyfile}: holds no unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, public):
        raise TLSFileError(f"{keyfile}: is not the private key of the certificate in {certfile}")
    if client_ca is not None:
        _certificates(client_ca, "the client CA")
