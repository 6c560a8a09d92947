"""The end-to-end harness (tests/e2e/apiserver.py) checked where kube-apiserver is absent: binary
discovery and skip reasons, the PKI, the kubeconfig, the exact flags, and the process lifecycle
against stand-ins (a TLS server that checks the apiserver's flags and requires the admin's
client certificate, like kube-apiserver). etcd runs for real when it is installed."""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import apiserver
from apiserver import (
    ASSETS_ENV,
    UNSET_REASON,
    Binaries,
    Cluster,
    Etcd,
    KubeApiServer,
    Pki,
    ProcessExited,
    find_binaries,
    loopback_without_proxy,
    write_kubeconfig,
)

# --------------------------------------------------------------------------- stand-ins

# A kube-apiserver stand-in: refuses to start without the flags the harness must pass, serves
# HTTPS with --tls-cert-file on --bind-address:--secure-port, requires a client certificate
# signed by --client-ca-file, answers /readyz, /version, and /whoami (the client's subject).
FAKE_APISERVER = r'''
import http.server, json, os, ssl, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
need = {"etcd-servers", "bind-address", "advertise-address", "secure-port", "tls-cert-file",
        "tls-private-key-file", "client-ca-file", "service-account-issuer", "service-account-key-file",
        "service-account-signing-key-file", "service-cluster-ip-range", "authorization-mode",
        "disable-admission-plugins", "cert-dir"}
if need - set(args) or set(args) - need:
    print("bad flags:", sorted(need ^ set(args)), flush=True)
    sys.exit(2)
marker = os.environ.get("FAKE_PORT_TAKEN_ONCE")
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    print("Error: failed to create listener: listen tcp: bind: address already in use", flush=True)
    sys.exit(1)
if os.environ.get("FAKE_EXIT"):
    print("E0101 fake kube-apiserver gives up", flush=True)
    sys.exit(3)
VERSION = {"major": "1", "minor": "99", "gitVersion": "v1.99.0-fake", "gitCommit": "0",
           "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1",
           "compiler": "gc", "platform": "linux/amd64"}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/readyz":
            body, kind = b"ok", "text/plain"
        elif path == "/whoami":
            subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
            body, kind = json.dumps(subject).encode(), "application/json"
        else:
            body, kind = json.dumps(VERSION).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
server = http.server.HTTPServer((args["bind-address"], int(args["secure-port"])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(args["tls-cert-file"], args["tls-private-key-file"])
context.verify_mode = ssl.CERT_REQUIRED
context.load_verify_locations(args["client-ca-file"])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving", flush=True)
server.serve_forever()
'''

# An etcd stand-in: /health on --listen-client-urls.
FAKE_ETCD = r'''
import http.server, sys
from urllib.parse import urlsplit
argv = sys.argv[1:]
args = dict(zip(argv[::2], argv[1::2]))
url = urlsplit(args["--listen-client-urls"])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"health":"true","reason":""}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((url.hostname, url.port), Handler).serve_forever()
'''


def script(path: Path, source: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{textwrap.dedent(source)}")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki")).generate()


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verify_issued(cert: x509.Certificate, ca: x509.Certificate) -> None:
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)  # signature, issuer name: raises otherwise


# --------------------------------------------------------------------------- binaries


def test_unset_assets_give_the_documented_reason(monkeypatch):
    assert find_binaries({}) == (None, UNSET_REASON)
    assert find_binaries({ASSETS_ENV: "  "}) == (None, UNSET_REASON)
    assert UNSET_REASON == "KUBEBUILDER_ASSETS is not set: no registry here ships kube-apiserver"
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    assert apiserver.skip_reason() == UNSET_REASON


def test_missing_binaries_are_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_binaries({ASSETS_ENV: str(tmp_path / "nope")})[1] == \
        f"KUBEBUILDER_ASSETS={tmp_path / 'nope'} is not a folder"
    reason = find_binaries({ASSETS_ENV: str(empty), "PATH": str(empty)})[1]
    assert reason == f"KUBEBUILDER_ASSETS={empty} lacks kube-apiserver and etcd (and no etcd on PATH)"

    only_apiserver = tmp_path / "only-apiserver"
    only_apiserver.mkdir()
    script(only_apiserver / "kube-apiserver", "")
    reason = find_binaries({ASSETS_ENV: str(only_apiserver), "PATH": str(empty)})[1]
    assert reason == f"KUBEBUILDER_ASSETS={only_apiserver} lacks etcd (and no etcd on PATH)"

    # Not executable counts as missing.
    (only_apiserver / "etcd").write_text("")
    assert "lacks etcd" in find_binaries({ASSETS_ENV: str(only_apiserver), "PATH": str(empty)})[1]


def test_etcd_from_the_folder_first_then_from_path(tmp_path):
    assets, bin_dir = tmp_path / "assets", tmp_path / "bin"
    assets.mkdir()
    bin_dir.mkdir()
    script(assets / "kube-apiserver", "")
    on_path = script(bin_dir / "etcd", "")
    found, reason = find_binaries({ASSETS_ENV: str(assets), "PATH": str(bin_dir)})
    assert reason is None and found == Binaries(assets / "kube-apiserver", on_path)
    in_assets = script(assets / "etcd", "")
    found, _ = find_binaries({ASSETS_ENV: str(assets), "PATH": str(bin_dir)})
    assert found.etcd == in_assets


def test_loopback_is_added_to_no_proxy():
    assert loopback_without_proxy({}) == {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    assert loopback_without_proxy({"NO_PROXY": "corp.example, 127.0.0.1"})["no_proxy"] == \
        "corp.example,127.0.0.1,localhost"
    assert loopback_without_proxy({"no_proxy": "a", "NO_PROXY": "b"})["NO_PROXY"] == "a,127.0.0.1,localhost"


# --------------------------------------------------------------------------- PKI


def test_apiserver_serving_certificate(pki):
    ca, cert = load(pki.ca_crt), load(pki.apiserver_crt)
    verify_issued(cert, ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_admin_client_certificate_is_system_masters_from_the_client_ca(pki):
    client_ca, admin = load(pki.client_ca_crt), load(pki.admin_crt)
    verify_issued(admin, client_ca)
    assert client_ca.subject != load(pki.ca_crt).subject  # two CAs: serving and client
    orgs = [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters"]
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == apiserver.ADMIN_USER
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    key = serialization.load_pem_private_key(pki.admin_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == admin.public_key().public_numbers()


def test_service_account_key_pair(pki):
    private = serialization.load_pem_private_key(pki.sa_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 2048
    assert private.public_key().public_numbers() == public.public_numbers()
    assert pki.sa_pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_private_keys_are_private(pki):
    for key in (pki.ca_key, pki.client_ca_key, pki.apiserver_key, pki.admin_key, pki.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


# --------------------------------------------------------------------------- kubeconfig


def test_kubeconfig_loads_into_a_client_configuration(pki, tmp_path):
    from kubernetes import config
    from kubernetes.client import Configuration

    path = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443", pki)
    document = yaml.safe_load(path.read_text())
    assert document["current-context"] == "e2e"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    configuration = Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration, persist_config=False)
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.verify_ssl is True
    assert Path(configuration.ssl_ca_cert).read_bytes() == pki.ca_crt.read_bytes()
    assert Path(configuration.cert_file).read_bytes() == pki.admin_crt.read_bytes()
    assert Path(configuration.key_file).read_bytes() == pki.admin_key.read_bytes()


def test_apiserver_flags_are_exactly_those_of_the_design(pki, tmp_path):
    server = KubeApiServer(Path("/x/kube-apiserver"), tmp_path, pki, "http://127.0.0.1:2379")
    server.port = 6443
    flags = dict(arg[2:].split("=", 1) for arg in server.args())
    assert flags == {
        "etcd-servers": "http://127.0.0.1:2379",
        "bind-address": "127.0.0.1",
        "advertise-address": "127.0.0.1",
        "secure-port": "6443",
        "tls-cert-file": str(pki.apiserver_crt),
        "tls-private-key-file": str(pki.apiserver_key),
        "client-ca-file": str(pki.client_ca_crt),
        "service-account-issuer": "https://kubernetes.default.svc",
        "service-account-key-file": str(pki.sa_pub),
        "service-account-signing-key-file": str(pki.sa_key),
        "service-cluster-ip-range": "10.0.0.0/16",
        "authorization-mode": "RBAC",
        "disable-admission-plugins": "ServiceAccount",
        "cert-dir": str(tmp_path / "apiserver-certs"),
    }
    assert server.url == "https://127.0.0.1:6443"


def test_etcd_flags(tmp_path):
    etcd = Etcd(Path("/x/etcd"), tmp_path)
    etcd.client_port, etcd.peer_port = 2379, 2380
    args = etcd.args()
    flags = dict(zip(args[::2], args[1::2]))
    assert flags == {
        "--name": "e2e",
        "--data-dir": str(tmp_path / "etcd-data"),
        "--listen-client-urls": "http://127.0.0.1:2379",
        "--advertise-client-urls": "http://127.0.0.1:2379",
        "--listen-peer-urls": "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls": "http://127.0.0.1:2380",
        "--initial-cluster": "e2e=http://127.0.0.1:2380",
    }


# --------------------------------------------------------------------------- lifecycle, stand-ins


@pytest.fixture
def fakes(tmp_path) -> Binaries:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    return Binaries(script(bin_dir / "kube-apiserver", FAKE_APISERVER), script(bin_dir / "etcd", FAKE_ETCD))


def test_cluster_starts_restarts_on_the_same_port_and_stops(fakes, tmp_path):
    cluster = Cluster(fakes, tmp_path / "cluster")
    try:
        cluster.start()
        server = cluster.apiserver
        assert server.running and cluster.etcd.running and cluster.etcd.healthy()
        port = server.port
        assert server.get("/readyz") == (200, b"ok")
        assert yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == server.url
        first = server.proc.pid
        server.restart()
        assert server.port == port and server.proc.pid != first and server.ready()
        assert server.stop() is not None and not server.running
        server.start()  # start after stop: same port
        assert server.port == port and server.ready()
        assert "=== " in server.log_path.read_text()  # every start is logged, appended
    finally:
        cluster.stop()
    assert not cluster.apiserver.running and not cluster.etcd.running
    cluster.stop()  # idempotent


def test_the_pki_and_kubeconfig_work_over_tls_with_the_kubernetes_client_and_kubectl(fakes, tmp_path, monkeypatch):
    """The serving certificate verifies for 127.0.0.1, the server accepts the admin's client
    certificate, and the subject it sees is O=system:masters. Under a (dead) proxy, as conftest
    sets it up: loopback must bypass it."""
    from webhook.inventory.kube import RawApi

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    for key, value in loopback_without_proxy(os.environ).items():
        monkeypatch.setenv(key, value)

    cluster = Cluster(fakes, tmp_path / "cluster")
    try:
        cluster.start()
        client = cluster.api_client()
        try:
            whoami = json.loads(RawApi(client).get("/whoami").data)
            from kubernetes.client import VersionApi
            assert VersionApi(client).get_code().git_version == "v1.99.0-fake"
        finally:
            client.close()
        assert whoami == {"organizationName": "system:masters", "commonName": apiserver.ADMIN_USER}
        kubectl = shutil.which("kubectl")
        if kubectl:  # Go's TLS stack is stricter than Python's: check it accepts the PKI too
            result = subprocess.run([kubectl, "--kubeconfig", str(cluster.kubeconfig), "get", "--raw", "/whoami"],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["organizationName"] == "system:masters"
        # Without the client certificate the handshake fails: the server requires one.
        context = ssl.create_default_context(cafile=str(cluster.pki.ca_crt))
        conn = http.client.HTTPSConnection("127.0.0.1", cluster.apiserver.port, context=context, timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            conn.request("GET", "/readyz")
            conn.getresponse().read()
        conn.close()
    finally:
        cluster.stop()


def test_a_start_that_exits_reports_the_log(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EXIT", "1")
    cluster = Cluster(fakes, tmp_path / "cluster")
    try:
        with pytest.raises(ProcessExited, match="kube-apiserver exited with 3") as failed:
            cluster.start()
        assert "fake kube-apiserver gives up" in str(failed.value)
        assert not cluster.apiserver.running and cluster.etcd.running
    finally:
        cluster.stop()
    assert not cluster.etcd.running


def test_a_port_taken_at_the_first_start_is_picked_again(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_PORT_TAKEN_ONCE", str(tmp_path / "taken"))
    cluster = Cluster(fakes, tmp_path / "cluster")
    try:
        cluster.start()
        assert (tmp_path / "taken").exists() and cluster.apiserver.ready()
        assert "address already in use" in cluster.apiserver.log_path.read_text()
    finally:
        cluster.stop()


def test_a_start_that_never_gets_ready_times_out_and_stops(tmp_path, pki):
    hang = script(tmp_path / "kube-apiserver", "import time\ntime.sleep(600)\n")
    server = KubeApiServer(hang, tmp_path / "apiserver", pki, "http://127.0.0.1:1")
    with pytest.raises(TimeoutError, match="kube-apiserver was not ready within 1s"):
        server.start(timeout=1)
    assert not server.running


# --------------------------------------------------------------------------- real etcd


def test_real_etcd_starts_answers_health_and_stops(tmp_path):
    binary = shutil.which("etcd")
    if binary is None:
        pytest.skip("etcd is not on PATH (Debian: apt-get install etcd-server)")
    etcd = Etcd(Path(binary), tmp_path)
    try:
        etcd.start()
        assert etcd.healthy()
        assert stat.S_IMODE(etcd.data_dir.stat().st_mode) == 0o700
        conn = http.client.HTTPConnection("127.0.0.1", etcd.client_port, timeout=5)
        conn.request("GET", "/version")
        assert "etcdserver" in json.loads(conn.getresponse().read())
        conn.close()
        port = etcd.client_port
        assert etcd.stop() is not None and not etcd.running
        etcd.start()  # kube-apiserver restarts keep etcd, but a restart of etcd works too
        assert etcd.client_port == port and etcd.healthy()
    finally:
        etcd.stop()
    assert not etcd.running
    assert os.path.isdir(etcd.data_dir)
