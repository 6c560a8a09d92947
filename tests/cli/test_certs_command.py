"""`netguard certs` on a folder whose CA it cannot use: it refuses, names the file, exits non-zero
and changes nothing (a new CA would silently invalidate the caBundle registered with the API
server). Run as the command, in a subprocess, as an operator would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.serverproc import netguard


def run_certs(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webhook", "certs", "--out", str(out), "--host", "127.0.0.1"],
                          capture_output=True, text=True, timeout=60)


def files_of(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("broken, content", [
    pytest.param("ca.crt", b"garbage\n", id="garbage-ca-crt"),
    pytest.param("ca.key", b"garbage\n", id="garbage-ca-key"),
    pytest.param("ca.key", None, id="ca-key-of-another-certificate"),
])
def test_certs_refuses_a_ca_it_cannot_use(tmp_path: Path, broken: str, content: bytes | None) -> None:
    out = tmp_path / "certs"
    netguard("certs", "--out", str(out), "--host", "127.0.0.1")
    (out / broken).write_bytes(content if content is not None else (out / "tls.key").read_bytes())
    before = files_of(out)

    result = run_certs(out)

    assert result.returncode != 0, result.stdout
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"netguard certs: {out / broken}: "), result.stderr
    assert "Refusing to make a new CA" in first and "caBundle" in first, first
    assert result.stdout == ""  # no "wrote ..." line
    assert files_of(out) == before


def test_certs_reuses_a_good_ca(tmp_path: Path) -> None:
    # Control: the same run on an intact folder succeeds and keeps the CA.
    out = tmp_path / "certs"
    netguard("certs", "--out", str(out), "--host", "127.0.0.1")
    ca = (out / "ca.crt").read_bytes()
    result = run_certs(out)
    assert result.returncode == 0, result.stderr
    assert (out / "ca.crt").read_bytes() == ca
