"""`netguard serve --kubeconfig K --manage-certs NS/SECRET` under gunicorn against the local API
test server: it fills the shipped empty Secret, writes the CA into the two webhook
configurations, and serves a certificate that the caBundle it wrote verifies (a real TLS
handshake, as kube-apiserver's). And the refusals, each naming the flag."""

from __future__ import annotations

import base64
import http.client
import ssl
import subprocess
import sys

import pytest

from tests.objectstore import MUTATING, SECRETS, VALIDATING
from tests.serve.test_serve_cluster import eventually, kubeconfig
from tests.serverproc import Server
from tests.watchserver import NAMESPACES, WatchServer
from webhook.cli import deploy
from webhook.serve import certstore

NS, SECRET = "netguard-system", "netguard-certs"


@pytest.fixture
def api():
    with WatchServer() as server:
        server.put(NAMESPACES, {"metadata": {"name": "shop"}})
        for resource, obj in zip((VALIDATING, MUTATING), deploy.webhook_configurations(NS, "", "https://127.0.0.1:1")):
            server.objects.put(resource, obj)
        server.objects.put(SECRETS, {"metadata": {"name": SECRET, "namespace": NS}})  # shipped empty
        yield server


def test_serve_manages_its_certificates(tmp_path, api):
    managed = tmp_path / "managed"  # an emptyDir in a pod: nothing there at start
    config = kubeconfig(tmp_path / "kubeconfig", api.url)
    srv = Server(tmp_path, "--kubeconfig", str(config), "--manage-certs", f"{NS}/{SECRET}",
                 "--cert-host", "127.0.0.1", "--certs", str(managed), workers=2)
    bundles = []

    def answering() -> bool:
        for resource in (VALIDATING, MUTATING):
            for hook in api.objects.get(resource, "netguard")["webhooks"]:
                bundles.append(base64.b64decode(hook["clientConfig"].get("caBundle") or ""))
        if not bundles[-1]:
            return False
        # Verified as kube-apiserver does: only the caBundle, hostname (IP SAN) checked.
        context = ssl.create_default_context(cadata=bundles[-1].decode())
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=context, timeout=5)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    srv.start_when(answering, timeout=60)
    try:
        data = certstore.decoded(api.objects.get(SECRETS, SECRET, NS)["data"])
        assert (managed / "tls.crt").read_bytes() == data["tls.crt"]
        assert (managed / "ca.crt").read_bytes() == data["ca-bundle.crt"] == bundles[-1]
        eventually(lambda: (managed / ".rotation.lock").exists(), "a worker takes the pod's lock")
        writes = [w for w in api.objects.writes if w[1] == SECRETS]
        assert writes == [("PUT", SECRETS, SECRET)]  # the master's one round; the workers found nothing to do
    finally:
        assert srv.stop() == 0


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webhook", "serve", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})


@pytest.mark.parametrize("args, message", [
    pytest.param(["--manage-certs", "Bad_Name"], "argument --manage-certs: the Secret name must be", id="bad-name"),
    pytest.param(["--manage-certs", "Bad NS/name"], "argument --manage-certs: the namespace must be", id="bad-ns"),
    pytest.param(["--manage-certs", "netguard-certs"], "--manage-certs netguard-certs: needs the cluster",
                 id="not-in-a-cluster"),
    pytest.param(["--cert-host", "127.0.0.1"], "--cert-host names the self-managed certificate", id="host-alone"),
])
def test_serve_refuses_bad_certificate_flags(tmp_path, args, message):
    result = run_serve("--certs", str(tmp_path / "certs"), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "certs").exists()  # nothing generated on the way out
