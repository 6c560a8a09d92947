"""A real etcd and kube-apiserver on 127.0.0.1 for end-to-end tests (docs/design.md, End-to-end tests).

The binaries come from `KUBEBUILDER_ASSETS`, a folder holding `kube-apiserver` and `etcd` (the
envtest convention; `setup-envtest use -p path` prints one). etcd may also come from PATH
(Debian's `etcd-server` package), since no registry ships kube-apiserver but Debian ships etcd.

- `Pki`: a serving CA and the apiserver's certificate (IP:127.0.0.1 SAN), a client CA and an
  admin client certificate (O=system:masters), a service-account RSA key pair. `cryptography` only.
- `write_kubeconfig`: a kubeconfig with everything embedded (`*-data`), for the kubernetes
  client, kubectl and `netguard --kubeconfig`.
- `Etcd`, `KubeApiServer`: start (wait for /health, /readyz; 60 s deadline), stop (terminate,
  wait, kill), restart on the same ports and flags.
- `Cluster`: the three together in one folder.
- The rest (object builders, `status_of`, `eventually`) keeps the tests short.

Nothing here imports the kubernetes client at module level, so the module imports anywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ASSETS_ENV = "KUBEBUILDER_ASSETS"
UNSET_REASON = "KUBEBUILDER_ASSETS is not set: no registry here ships kube-apiserver"
READY_TIMEOUT = 60.0  # kube-apiserver is ready in about 5 s; a loaded CI machine may need more
STOP_TIMEOUT = 30.0
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
ADMIN_USER = "e2e-admin"
MASTERS_GROUP = "system:masters"
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- binaries


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path


def find_binaries(env: Mapping[str, str] | None = None) -> tuple[Binaries | None, str | None]:
    """(the binaries, None), or (None, why the end-to-end tests must be skipped)."""
    env = os.environ if env is None else env
    assets = env.get(ASSETS_ENV, "")
    if not assets.strip():
        return None, UNSET_REASON
    folder = Path(assets)
    if not folder.is_dir():
        return None, f"KUBEBUILDER_ASSETS={assets} is not a folder"

    def executable(path: Path | None) -> Path | None:
        return path if path is not None and path.is_file() and os.access(path, os.X_OK) else None

    apiserver = executable(folder / "kube-apiserver")
    on_path = shutil.which("etcd", path=env.get("PATH", os.defpath))
    etcd = executable(folder / "etcd") or executable(Path(on_path) if on_path else None)
    missing = [name for name, path in (("kube-apiserver", apiserver), ("etcd", etcd)) if path is None]
    if missing:
        where = " (and no etcd on PATH)" if etcd is None else ""
        return None, f"KUBEBUILDER_ASSETS={assets} lacks {' and '.join(missing)}{where}"
    assert apiserver is not None and etcd is not None
    return Binaries(apiserver, etcd), None


def skip_reason() -> str | None:
    return find_binaries()[1]


def loopback_without_proxy(env: Mapping[str, str]) -> dict[str, str]:
    """NO_PROXY and no_proxy of `env` with 127.0.0.1 and localhost added.

    The kubernetes Python client reads HTTPS_PROXY from the environment and exempts only what
    NO_PROXY names, not loopback as such (Go's clients do): under a CI proxy, the tests' client
    and netguard would otherwise send their requests for 127.0.0.1 to the proxy."""
    current = env.get("no_proxy") or env.get("NO_PROXY") or ""
    entries = [e.strip() for e in current.split(",") if e.strip()]
    entries += [host for host in (LOOPBACK, "localhost") if host not in entries]
    value = ",".join(entries)
    return {"NO_PROXY": value, "no_proxy": value}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- PKI

CLOCK_SKEW = dt.timedelta(hours=1)
VALIDITY = dt.timedelta(days=2)


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, cert_sign: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _new_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, common_name: str, *,
           organizations: Sequence[str] = (), usage: x509.ObjectIdentifier,
           ips: Sequence[str] = (), dns: Sequence[str] = ()) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations)).issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    names += [x509.DNSName(d) for d in dns]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


class Pki:
    """Every certificate and key the apiserver and its admin need, written into `directory`.

    ca.crt           serving CA: signs apiserver.crt; the kubeconfig's certificate-authority
    apiserver.crt    --tls-cert-file: IP:127.0.0.1, localhost and the in-cluster names
    client-ca.crt    --client-ca-file: signs admin.crt
    admin.crt        CN=e2e-admin, O=system:masters: the kubeconfig's user
    sa.key, sa.pub   --service-account-signing-key-file and --service-account-key-file (RSA 2048)
    """

    SERVING_IPS = (LOOPBACK, "10.0.0.1")  # 10.0.0.1: the kubernetes Service in 10.0.0.0/16
    SERVING_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc.cluster.local")

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        d = self.directory
        self.ca_crt, self.ca_key = d / "ca.crt", d / "ca.key"
        self.client_ca_crt, self.client_ca_key = d / "client-ca.crt", d / "client-ca.key"
        self.apiserver_crt, self.apiserver_key = d / "apiserver.crt", d / "apiserver.key"
        self.admin_crt, self.admin_key = d / "admin.crt", d / "admin.key"
        self.sa_key, self.sa_pub = d / "sa.key", d / "sa.pub"

    def generate(self) -> "Pki":
        self.directory.mkdir(parents=True, exist_ok=True)
        ca, ca_key = _new_ca("netguard-e2e-ca")
        client_ca, client_ca_key = _new_ca("netguard-e2e-client-ca")
        serving, serving_key = _issue(ca, ca_key, "kube-apiserver", usage=ExtendedKeyUsageOID.SERVER_AUTH,
                                      ips=self.SERVING_IPS, dns=self.SERVING_DNS)
        admin, admin_key = _issue(client_ca, client_ca_key, ADMIN_USER, organizations=[MASTERS_GROUP],
                                  usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for path, data, private in (
            (self.ca_crt, _cert_pem(ca), False), (self.ca_key, _key_pem(ca_key), True),
            (self.client_ca_crt, _cert_pem(client_ca), False),
            (self.client_ca_key, _key_pem(client_ca_key), True),
            (self.apiserver_crt, _cert_pem(serving), False),
            (self.apiserver_key, _key_pem(serving_key), True),
            (self.admin_crt, _cert_pem(admin), False), (self.admin_key, _key_pem(admin_key), True),
            (self.sa_key, _key_pem(sa_key), True),
            (self.sa_pub, sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), False),
        ):
            _write(path, data, private)
        return self

    def admin_context(self) -> ssl.SSLContext:
        """TLS as the admin: trusts the serving CA, presents admin.crt."""
        context = ssl.create_default_context(cafile=str(self.ca_crt))
        context.load_cert_chain(str(self.admin_crt), str(self.admin_key))
        return context


def write_kubeconfig(path: Path, server: str, pki: Pki, name: str = "e2e") -> Path:
    """A kubeconfig for `server` as the admin, with the CA, certificate and key embedded."""
    def data(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server,
                                                "certificate-authority-data": data(pki.ca_crt)}}],
        "users": [{"name": ADMIN_USER, "user": {"client-certificate-data": data(pki.admin_crt),
                                               "client-key-data": data(pki.admin_key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN_USER}}],
        "current-context": name,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- processes


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Process:
    """One child process with its output in `log_path` (appended across restarts)."""

    name = "process"

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def args(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(loopback_without_proxy(env))
        return env

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self) -> None:
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== {' '.join([str(self.binary), *self.args()])}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen([str(self.binary), *self.args()], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env(),
                                     cwd=self.workdir)

    def _wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ProcessExited(f"{self.name} exited with {self.proc.returncode}:\n{_tail(self.log_path)}",
                                    _tail(self.log_path, 200))
            try:
                if ready():
                    return
            except (OSError, http.client.HTTPException, ssl.SSLError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.name} was not ready within {timeout:.0f}s:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Terminate, wait, kill. Safe to call when never started or already stopped."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            code = self.proc.returncode
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


class ProcessExited(RuntimeError):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log

    @property
    def port_taken(self) -> bool:
        return "address already in use" in self.log.lower()


def _start_with_port_retry(process: _Process, pick_ports: Callable[[], None], start: Callable[[], None],
                           first: bool, attempts: int = 3) -> None:
    """Ports come from bind(0) and are released before the child binds them: another process
    may take one in between. On the first start only, pick new ones and try again."""
    for attempt in range(attempts):
        try:
            start()
            return
        except ProcessExited as exc:
            process.stop()
            if not (first and exc.port_taken and attempt + 1 < attempts):
                raise
            pick_ports()


class Etcd(_Process):
    """A single-member etcd on loopback, its data in `workdir/etcd-data` (created by etcd, 0700)."""

    name = "etcd"

    def __init__(self, binary: Path, workdir: Path, member: str = "e2e") -> None:
        super().__init__(binary, workdir)
        self.member = member
        self.data_dir = self.workdir / "etcd-data"
        self.client_port: int | None = None
        self.peer_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    def args(self) -> list[str]:
        return [
            "--name", self.member,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.member}={self.peer_url}",
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        if platform.machine().lower() in ("aarch64", "arm64"):  # etcd 3.4 refuses arm64 without it
            env.setdefault("ETCD_UNSUPPORTED_ARCH", "arm64")
        return env

    def _pick_ports(self) -> None:
        self.client_port, self.peer_port = free_port(), free_port()
        while self.peer_port == self.client_port:
            self.peer_port = free_port()

    def healthy(self) -> bool:
        conn = http.client.HTTPConnection(LOOPBACK, self.client_port, timeout=2)
        try:
            conn.request("GET", "/health")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        return response.status == 200 and str(json.loads(body).get("health")).lower() == "true"

    def start(self, timeout: float = 30.0) -> "Etcd":
        first = self.client_port is None
        if first:
            self._pick_ports()

        def once() -> None:
            self._spawn()
            self._wait_until(self.healthy, timeout)

        _start_with_port_retry(self, self._pick_ports, once, first)
        return self


class KubeApiServer(_Process):
    """kube-apiserver with exactly the flags of docs/design.md, End-to-end tests."""

    name = "kube-apiserver"

    def __init__(self, binary: Path, workdir: Path, pki: Pki, etcd_url: str) -> None:
        super().__init__(binary, workdir)
        self.pki = pki
        self.etcd_url = etcd_url
        self.cert_dir = self.workdir / "apiserver-certs"
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def args(self) -> list[str]:
        pki = self.pki
        return [
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki.apiserver_crt}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.client_ca_crt}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={self.cert_dir}",
        ]

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET as the admin (client certificate), verifying the serving certificate."""
        conn = http.client.HTTPSConnection(LOOPBACK, self.port, context=self.pki.admin_context(),
                                           timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def start(self, timeout: float = READY_TIMEOUT) -> "KubeApiServer":
        """Start and wait for /readyz 200. A restart keeps the port (clients hold the URL)."""
        if self.running:
            raise RuntimeError("kube-apiserver is already running")
        first = self.port is None
        if first:
            self.port = free_port()
        self.cert_dir.mkdir(parents=True, exist_ok=True)

        def once() -> None:
            self._spawn()
            self._wait_until(self.ready, timeout)

        _start_with_port_retry(self, lambda: setattr(self, "port", free_port()), once, first)
        return self

    def restart(self, timeout: float = READY_TIMEOUT) -> "KubeApiServer":
        self.stop()
        return self.start(timeout)


class Cluster:
    """PKI, etcd, kube-apiserver and an admin kubeconfig, all under `workdir`."""

    def __init__(self, binaries: Binaries, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.pki = Pki(self.workdir / "pki")
        self.etcd = Etcd(binaries.etcd, self.workdir / "etcd")
        self.apiserver: KubeApiServer | None = None
        self._apiserver_binary = binaries.kube_apiserver
        self.kubeconfig = self.workdir / "kubeconfig"

    def start(self) -> "Cluster":
        self.pki.generate()
        self.etcd.start()
        self.apiserver = KubeApiServer(self._apiserver_binary, self.workdir / "apiserver", self.pki,
                                       self.etcd.url)
        self.apiserver.start()
        write_kubeconfig(self.kubeconfig, self.apiserver.url, self.pki)
        return self

    def stop(self) -> None:
        try:
            if self.apiserver is not None:
                self.apiserver.stop()
        finally:
            self.etcd.stop()

    def api_client(self):
        return api_client(self.kubeconfig)

    def logs(self) -> str:
        parts = [f"--- {p.log_path}\n{_tail(p.log_path)}" for p in (self.etcd, self.apiserver) if p]
        return "\n".join(parts)


def api_client(kubeconfig: Path):
    """A kubernetes ApiClient for `kubeconfig`, leaving the client's global default alone."""
    from kubernetes import config
    from kubernetes.client import ApiClient, Configuration

    configuration = Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration,
                            persist_config=False)
    return ApiClient(configuration)


# --------------------------------------------------------------------------- test helpers


def unique(prefix: str) -> str:
    """A fresh DNS-1123 name: `prefix-` and 8 hex digits."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """The first truthy value of `check()` within `timeout`; exceptions count as falsy (the last
    one is reported)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"never happened within {timeout:.0f}s: {what}"
                                 + (f" (last error: {last!r})" if last else ""))
        time.sleep(interval)


def status_of(exc: Any) -> dict[str, Any]:
    """The Status object of an ApiException's body ({} when it is not JSON)."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body or "")
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def service(name: str, kind: str = "LoadBalancer", labels: Mapping[str, str] | None = None,
            annotations: Mapping[str, str] | None = None, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
            "spec": {"type": kind, "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def network_policy(name: str, spec: Mapping[str, Any], labels: Mapping[str, str] | None = None,
                   namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata,
            "spec": dict(spec)}


def default_deny(name: str = "default-deny", namespace: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Ingress default-deny: every pod selected, Ingress only, no rules."""
    return network_policy(name, {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace=namespace, **kwargs)


def allow_all(name: str = "allow-all", namespace: str | None = None) -> dict[str, Any]:
    """Selects every pod and admits every source: cancels a default-deny."""
    return network_policy(name, {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
                          namespace=namespace)


def yaml_documents(*objects: Mapping[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(dict(o), sort_keys=False) for o in objects)
