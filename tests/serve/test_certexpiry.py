"""webhook/serve/certexpiry.py: netguard_certificate_expiry_timestamp_seconds follows the files."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from webhook.serve.certexpiry import CertificateExpiry
from webhook.serve.certs import generate
from webhook.serve.metrics import Metrics

NAME = "netguard_certificate_expiry_timestamp_seconds"


def not_after(path: Path, index: int = 0) -> float:
    return x509.load_pem_x509_certificates(path.read_bytes())[index].not_valid_after_utc.timestamp()


def decoy_ca(days: int) -> bytes:
    """A CA with netguard's CA name but a key of its own: it signed nothing netguard serves."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netguard-ca")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def touch_later(path: Path) -> None:
    """Move the mtime on, as a rewrite within the same clock tick might not."""
    s = os.stat(path)
    os.utime(path, ns=(s.st_atime_ns, s.st_mtime_ns + 1_000_000_000))


def test_serving_and_ca_expiry_are_the_files_not_after(tmp_path):
    files = generate(tmp_path, ["127.0.0.1"], days=30)
    values = CertificateExpiry(tmp_path).values()
    assert values == {"serving": not_after(files.tls_crt), "ca": not_after(files.ca_crt)}
    assert values["serving"] < values["ca"]  # 30 days against the CA's ten years


def test_a_rotated_serving_certificate_is_picked_up(tmp_path):
    files = generate(tmp_path, ["127.0.0.1"], days=30)
    expiry = CertificateExpiry(tmp_path)
    before = expiry.values()["serving"]
    generate(tmp_path, ["127.0.0.1"], days=90)
    touch_later(files.tls_crt)
    after = expiry.values()["serving"]
    assert after == not_after(files.tls_crt)
    assert after - before > 59 * 86400


def test_an_unusable_file_keeps_the_last_figures(tmp_path):
    files = generate(tmp_path, ["127.0.0.1"], days=30)
    expiry = CertificateExpiry(tmp_path)
    good = expiry.values()
    files.tls_crt.write_text("not a certificate\n")
    touch_later(files.tls_crt)
    assert expiry.values() == good


def test_without_a_ca_file_only_the_serving_series_and_before_any_good_read_none(tmp_path):
    files = generate(tmp_path, ["127.0.0.1"], days=30)
    files.ca_crt.unlink()
    assert set(CertificateExpiry(tmp_path).values()) == {"serving"}
    assert CertificateExpiry(tmp_path / "missing").values() == {}


def test_during_a_ca_roll_the_ca_is_the_one_that_signed_the_serving_certificate(tmp_path):
    files = generate(tmp_path, ["127.0.0.1"], days=30)
    real = not_after(files.ca_crt)
    # The bundle holds a CA of the same name that expires sooner, listed first.
    files.ca_crt.write_bytes(decoy_ca(days=20) + files.ca_crt.read_bytes())
    assert not_after(files.ca_crt, 0) < real
    assert CertificateExpiry(tmp_path).values()["ca"] == real


def test_metrics_exposes_the_gauge_with_a_cert_label(tmp_path):
    files = generate(tmp_path, ["127.0.0.1"], days=30)
    metrics = Metrics()
    metrics.watch_certificates(tmp_path)
    found = {s.labels["cert"]: s.value
             for family in text_string_to_metric_families(metrics.exposition().decode())
             for s in family.samples if s.name == NAME}
    assert found == {"serving": not_after(files.tls_crt), "ca": not_after(files.ca_crt)}
