"""netguard's certificate Secret and the webhooks' caBundle, read into the plan's terms
(webhook/core/certplan.py) and written back.

The Secret's keys (base64 under `data`, PEM inside):
  ca.crt, ca.key            the CA that signs the serving certificate
  ca-next.crt, ca-next.key  the next CA during a CA roll (in the caBundle, signing nothing yet)
  ca-retired.crt            former CAs still in the caBundle (certificates only: they sign nothing)
  tls.crt, tls.key          the serving certificate every replica serves
  ca-bundle.crt             what every webhook's caBundle holds (derived, for operators)
A key that cannot be read is treated as absent (and said so): the plan then makes what is missing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from webhook.core.certplan import Cert, Certs, bundle
from webhook.serve import certs as certfiles

SIGNING = ("ca.crt", "ca.key")
PENDING = ("ca-next.crt", "ca-next.key")
RETIRED = "ca-retired.crt"
SERVING = ("tls.crt", "tls.key")
BUNDLE = "ca-bundle.crt"
KEYS = (*SIGNING, *PENDING, RETIRED, *SERVING, BUNDLE)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _issued(cert: x509.Certificate) -> dt.datetime:
    # certs.py backdates every certificate it makes by CLOCK_SKEW.
    return min(cert.not_valid_before_utc + certfiles.CLOCK_SKEW, cert.not_valid_after_utc)


def ca_cert(cert: x509.Certificate, key: Any = None) -> Cert:
    return Cert(fingerprint(cert), cert.not_valid_before_utc, cert.not_valid_after_utc, issued=_issued(cert),
                payload=(cert, key))


def serving_cert(cert: x509.Certificate, key: Any, issuer: str) -> Cert:
    return Cert(fingerprint(cert), cert.not_valid_before_utc, cert.not_valid_after_utc, issuer=issuer,
                issued=_issued(cert), payload=(cert, key))


def decoded(data: Mapping[str, str] | None) -> dict[str, bytes]:
    """The Secret's `data`, base64-decoded; keys that are not base64 are left out."""
    out: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        try:
            out[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError):
            continue
    return out


def read_secret(data: Mapping[str, str] | None, names: Sequence[x509.GeneralName],
                now: dt.datetime) -> tuple[Certs, list[str]]:
    """The plan's view of the Secret's `data`, and what could not be used in it (one line each)."""
    raw = decoded(data)
    problems = [f"{k}: not base64" for k in (data or {}) if k not in raw]
    signing = _ca(raw, SIGNING, now, problems)
    pending = _ca(raw, PENDING, now, problems)
    retired: list[Cert] = []
    if raw.get(RETIRED):
        try:
            retired = [ca_cert(c) for c in x509.load_pem_x509_certificates(raw[RETIRED])]
        except ValueError:
            problems.append(f"{RETIRED}: holds no PEM certificate")
    serving, fits = _serving(raw, names, [c for c in (signing, pending, *retired) if c], problems)
    return Certs(signing, pending, tuple(retired), serving, fits), problems


def _ca(raw: Mapping[str, bytes], keys: tuple[str, str], now: dt.datetime, problems: list[str]) -> Cert | None:
    cert_key, key_key = keys
    if cert_key not in raw and key_key not in raw:
        return None
    try:
        cert, key = certfiles.load_ca(raw.get(cert_key, b""), raw.get(key_key, b""), now, cert_key, key_key)
    except certfiles.CertError as exc:
        problems.append(str(exc))
        return None
    return ca_cert(cert, key)


def _serving(raw: Mapping[str, bytes], names: Sequence[x509.GeneralName], cas: Iterable[Cert],
             problems: list[str]) -> tuple[Cert | None, bool]:
    if SERVING[0] not in raw:
        return None, True
    try:
        cert = x509.load_pem_x509_certificate(raw[SERVING[0]])
    except ValueError:
        problems.append(f"{SERVING[0]}: holds no PEM certificate")
        return None, True
    try:
        key = serialization.load_pem_private_key(raw.get(SERVING[1], b""), password=None)
        key_ok = certfiles.same_key(key, cert)  # type: ignore[arg-type]
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key, key_ok = None, False
    issuer = next((c.id for c in cas if _signed_by(cert, c.payload[0])), "")
    return serving_cert(cert, key, issuer), key_ok and _names(cert) == set(names)


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bundle_pem(certs: Certs) -> bytes:
    """The caBundle: the signing CA first, then the next, then the retired ones."""
    return b"".join(certfiles.cert_pem(c.payload[0]) for c in bundle(certs))


def secret_data(certs: Certs) -> dict[str, str]:
    """The Secret's `data` for `certs` (every key of KEYS that has something to hold)."""
    pem: dict[str, bytes] = {}
    for keys, ca in ((SIGNING, certs.signing), (PENDING, certs.pending)):
        if ca is not None:
            pem[keys[0]], pem[keys[1]] = certfiles.cert_pem(ca.payload[0]), certfiles.key_pem(ca.payload[1])
    if certs.retired:
        pem[RETIRED] = b"".join(certfiles.cert_pem(c.payload[0]) for c in certs.retired)
    if certs.serving is not None:
        cert, key = certs.serving.payload
        pem[SERVING[0]], pem[SERVING[1]] = certfiles.cert_pem(cert), certfiles.key_pem(key)
    pem[BUNDLE] = bundle_pem(certs)
    return {k: b64(v) for k, v in pem.items()}


# --------------------------------------------------------------------------- webhook configurations


def bundle_ids(ca_bundle: str | None) -> frozenset[str]:
    """Fingerprints of the certificates in a caBundle field (base64 of PEM)."""
    try:
        return frozenset(fingerprint(c) for c in x509.load_pem_x509_certificates(base64.b64decode(ca_bundle or "")))
    except (ValueError, binascii.Error, TypeError):
        return frozenset()


def trusted_cas(configurations: Iterable[Mapping[str, Any] | None], now: dt.datetime) -> list[Cert]:
    """Every valid CA certificate in any webhook's caBundle (for adopting a CA the Secret lost)."""
    found: dict[str, Cert] = {}
    for configuration in configurations:
        for hook in (configuration or {}).get("webhooks") or ():
            try:
                pem = base64.b64decode((hook.get("clientConfig") or {}).get("caBundle") or "")
                certs = x509.load_pem_x509_certificates(pem) if pem else []
            except (ValueError, binascii.Error, TypeError):
                continue
            for cert in certs:
                try:
                    is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
                except x509.ExtensionNotFound:
                    is_ca = False
                if is_ca and cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
                    found.setdefault(fingerprint(cert), ca_cert(cert))
    return list(found.values())


def published(configurations: Iterable[Mapping[str, Any] | None]) -> frozenset[str]:
    """The CAs found in the caBundle of every webhook of every configuration (none if one is
    missing: nothing can be counted on then)."""
    found: frozenset[str] | None = None
    for configuration in configurations:
        if configuration is None:
            return frozenset()
        for hook in configuration.get("webhooks") or ():
            ids = bundle_ids((hook.get("clientConfig") or {}).get("caBundle"))
            found = ids if found is None else found & ids
    return found or frozenset()


def bundle_patch(configuration: Mapping[str, Any], ca_bundle: bytes) -> dict[str, Any] | None:
    """A strategic-merge patch that sets every webhook's caBundle, conditional on the
    configuration's resourceVersion; None when every webhook already has it."""
    wanted = b64(ca_bundle)
    hooks = [h for h in configuration.get("webhooks") or () if (h.get("clientConfig") or {}).get("caBundle") != wanted]
    if not hooks:
        return None
    return {"metadata": {"resourceVersion": (configuration.get("metadata") or {}).get("resourceVersion")},
            "webhooks": [{"name": h["name"], "clientConfig": {"caBundle": wanted}} for h in hooks]}
