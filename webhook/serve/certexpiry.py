"""netguard_certificate_expiry_timestamp_seconds{cert="serving"|"ca"}: when the certificate
netguard serves, and the CA that signed it, stop being valid (notAfter, Unix seconds).

Read from the files gunicorn serves (tls.crt, and ca.crt beside it when there is one) at scrape
time by whichever worker answers /metrics, so the figure is the files' own whatever put them
there: `netguard certs`, cert-manager, or a rotation in the cluster. The parsed result is kept
while the files' size and mtime stay the same (webhook/serve/server.py keys its TLS context
cache the same way), so a scrape costs a few `stat` calls. While the files are unusable (a
rotation half-written, a bad Secret) the last good figures stay, as the server keeps serving
the last good certificate; until a first good read there is no series at all.

The CA is the certificate of ca.crt that issued the serving certificate (ca.crt may hold the old
and the new CA during a CA roll); if none of them did, the one that expires first.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("netguard")
NAME = "netguard_certificate_expiry_timestamp_seconds"
HELP = "When the served certificate (cert=serving) and the CA that signed it (cert=ca) expire, as Unix seconds."


def _stamps(paths: tuple[Path, ...]) -> tuple:
    found = []
    for path in paths:
        try:
            s = os.stat(path)
        except OSError:
            found.append((str(path), None))
        else:
            found.append((str(path), s.st_mtime_ns, s.st_size))
    return tuple(found)


def _issuer_of(leaf: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate | None:
    for ca in cas:
        if ca.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError):  # same name, another key (an old CA of that name)
            continue
        except TypeError:  # a key type cryptography cannot check this way: the name will do
            pass
        return ca
    return None


def read_expiry(tls_crt: Path, ca_crt: Path) -> dict[str, float]:
    """{"serving": notAfter of tls.crt's first certificate, "ca": its CA's}, as Unix seconds;
    "ca" only when ca.crt exists. Raises ValueError or OSError when a file cannot be used."""
    chain = x509.load_pem_x509_certificates(tls_crt.read_bytes())
    leaf = chain[0]
    found = {"serving": leaf.not_valid_after_utc.timestamp()}
    if ca_crt.exists():
        cas = x509.load_pem_x509_certificates(ca_crt.read_bytes())
        ca = _issuer_of(leaf, cas) or min(cas, key=lambda c: c.not_valid_after_utc)
        found["ca"] = ca.not_valid_after_utc.timestamp()
    return found


class CertificateExpiry(Collector):
    """A prometheus_client collector: register it, or add it to the registry a scrape builds."""

    def __init__(self, cert_dir: Path) -> None:
        self._paths = (Path(cert_dir) / "tls.crt", Path(cert_dir) / "ca.crt")
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._values: dict[str, float] = {}

    def values(self) -> dict[str, float]:
        """The current figures, re-read when a file changed since the last call."""
        key = _stamps(self._paths)
        with self._lock:
            if key != self._key:
                try:
                    self._values = read_expiry(*self._paths)
                except (ValueError, OSError) as exc:
                    log.warning("netguard: cannot read the certificate expiry from %s: %s; "
                                "keeping the last figures", self._paths[0].parent, exc)
                self._key = key  # not read again until the files change
            return dict(self._values)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(NAME, HELP, labels=["cert"])
        for cert, seconds in sorted(self.values().items()):
            family.add_metric([cert], seconds)
        yield family
