"""What `netguard serve` refuses to start with, naming the flag or the file and why, and what it
leaves behind (nothing). Each of these started a broken server, or ended in a traceback, before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serverproc import make_certs


def serve(*args: str, tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    tmp.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "webhook", "serve", "--bind", "127.0.0.1:1", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TMPDIR": str(tmp)})


@pytest.mark.parametrize("flag, value, says", [
    pytest.param("--workers", "0", "argument --workers: must be a whole number from 1 to 64, got '0'", id="workers-0"),
    pytest.param("--workers", "-3", "argument --workers: must be a whole number from 1 to 64, got '-3'", id="workers-negative"),
    pytest.param("--threads", "0", "argument --threads: must be a whole number from 1 to 256, got '0'", id="threads-0"),
    pytest.param("--bind", ":99999", "argument --bind: the port must be a number from 1 to 65535", id="bind-port"),
    pytest.param("--bind", "localhost", "argument --bind: must be HOST:PORT", id="bind-no-port"),
    pytest.param("--bind", "::1:8443", "argument --bind: write an IPv6 host in brackets", id="bind-ipv6"),
])
def test_a_bad_flag_is_refused_naming_it(tmp_path, flag, value, says):
    result = serve(flag, value, tmp=tmp_path / "tmp")
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def good_certs(tmp_path):
    return make_certs(tmp_path / "certs")


def _garbage(path: Path) -> None:
    path.write_text("not a certificate\n")


@pytest.mark.parametrize("damage, says", [
    pytest.param(lambda d: _garbage(d / "tls.crt"), "tls.crt: holds no PEM certificate", id="garbage-cert"),
    pytest.param(lambda d: _garbage(d / "tls.key"), "tls.key: holds no unencrypted PEM private key", id="garbage-key"),
    pytest.param(lambda d: (d / "tls.key").write_bytes((d / "ca.key").read_bytes()),
                 "tls.key: is not the private key of the certificate in", id="mismatched-key"),
    pytest.param(lambda d: ((d / "tls.key").unlink(), (d / "tls.key").mkdir()), "tls.key: is a folder", id="key-a-folder"),
])
def test_unusable_certificate_files_refuse_the_start(tmp_path, good_certs, damage, says):
    damage(good_certs)
    result = serve("--certs", str(good_certs), tmp=tmp_path / "tmp")
    assert result.returncode != 0
    assert f"netguard: --certs: {good_certs}/" in result.stderr and says in result.stderr, result.stderr
    assert "PEM lib" not in result.stderr


def test_a_garbage_client_ca_refuses_the_start(tmp_path, good_certs):
    ca = tmp_path / "client-ca.crt"
    _garbage(ca)
    result = serve("--certs", str(good_certs), "--client-ca", str(ca), tmp=tmp_path / "tmp")
    assert result.returncode != 0
    assert f"netguard: --client-ca: {ca}: holds no PEM certificate" in result.stderr, result.stderr


def test_a_refused_start_leaves_no_metrics_folder(tmp_path):
    tmp = tmp_path / "tmp"
    result = serve("--config", str(tmp_path / "missing.yaml"), tmp=tmp)
    assert result.returncode == 2 and "file not found" in result.stderr
    assert list((tmp / "netguard-metrics").glob("*")) == []


def test_the_folder_of_a_master_that_was_killed_is_removed_at_the_next_start(tmp_path):
    tmp = tmp_path / "tmp"
    stale = tmp / "netguard-metrics" / "999999999-left"  # no process has that pid
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"x")
    serve("--config", str(tmp_path / "missing.yaml"), tmp=tmp)
    assert not stale.exists()


def test_objects_of_an_impossible_shape_refuse_the_start(tmp_path):
    objects = tmp_path / "objects.yaml"
    # A policy whose spec is a list once counted as a default-deny, so a LoadBalancer was allowed.
    objects.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                       "metadata: {name: deny, namespace: shop}\nspec: [podSelector]\n")
    result = serve("--objects", str(objects), tmp=tmp_path / "tmp")
    assert result.returncode != 0
    assert f"--objects: {objects} line 1: NetworkPolicy deny: spec has the wrong type (list)" in result.stderr
