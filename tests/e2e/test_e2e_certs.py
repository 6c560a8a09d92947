"""Self-managed certificates against a real kube-apiserver: the RBAC of
manifests/self-managed-certs/ is enough (the rotation runs as a ServiceAccount bound to it, by
impersonation), the caBundle it writes makes the API server trust the certificate netguard
serves, a CA roll never has a moment when it does not, and two replicas racing from an empty
Secret end in one.

Webhook configurations of this test's own (not the session's `netguard` ones) call a netguard
under gunicorn serving the folder the rotation writes, only for this test's namespace. The
rotation's clock runs ahead of the real one (by less than the 5 minutes certificates are
backdated, so they stay valid for the API server) to reach the CA's 2/3 point at once; the
overlaps (5 s here) pass in real time, so the API server's informer has had them to take up a
new caBundle, as it has the hour in production.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import itertools
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from apiserver import api_client, eventually, free_port, service, skip_reason, status_of, unique
from tests.serverproc import Server
from webhook.core.certplan import Policy
from webhook.inventory.kube import ObjectApi
from webhook.serve.certrotator import CertRotator, Target

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "manifests" / "self-managed-certs" / "rbac.yaml"
SECRET = "netguard-certs"
POLICY = Policy(ca_validity=dt.timedelta(seconds=120), serving_validity=dt.timedelta(seconds=60),
                overlap=dt.timedelta(seconds=5))
V, M = "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"


class Ahead:
    """The real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self.offset


class Setup:
    def __init__(self, kube: Any, tmp_path: Path) -> None:
        self.kube = kube
        self.tag = unique("certs")
        self.namespace = kube.new_namespace("e2e-certs", labels={"e2e-certs": self.tag})
        self.name = f"netguard-{self.tag}"  # the two webhook configurations
        self.port = free_port()
        self.tmp_path = tmp_path
        self.created: list[tuple[str, str]] = []

    def install(self) -> None:
        """The overlay's Secret and RBAC in this namespace (resourceNames: this test's names),
        the ServiceAccount, and the two webhook configurations without caBundle."""
        core, rbac = self.kube.core, k8s.RbacAuthorizationV1Api(self.kube.api_client)
        core.create_namespaced_service_account(self.namespace, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                               "metadata": {"name": "netguard"}})
        core.create_namespaced_secret(self.namespace, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                                       "metadata": {"name": SECRET}})
        for doc in yaml.safe_load_all(RBAC.read_text()):
            doc["metadata"].pop("labels", None)
            text = yaml.safe_dump(doc).replace("netguard-system", self.namespace)
            doc = yaml.safe_load(text)
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                doc["metadata"]["name"] = f"{doc['metadata']['name']}-{self.tag}"
            if doc["kind"] == "ClusterRole":
                for rule in doc["rules"]:
                    rule["resourceNames"] = [self.name]
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{self.tag}"
            create = {"Role": lambda d: rbac.create_namespaced_role(self.namespace, d),
                      "RoleBinding": lambda d: rbac.create_namespaced_role_binding(self.namespace, d),
                      "ClusterRole": rbac.create_cluster_role,
                      "ClusterRoleBinding": rbac.create_cluster_role_binding}[doc["kind"]]
            create(doc)
            if doc["kind"].startswith("Cluster"):
                self.created.append((doc["kind"], doc["metadata"]["name"]))
        url = f"https://127.0.0.1:{self.port}"
        rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["services"],
                "scope": "Namespaced"}

        def hook(name: str, path: str) -> dict[str, Any]:
            return {"name": name, "clientConfig": {"url": url + path}, "rules": [rule],
                    "namespaceSelector": {"matchLabels": {"e2e-certs": self.tag}}, "failurePolicy": "Fail",
                    "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5}

        group = "admissionregistration.k8s.io/v1"
        self.kube.admission.create_validating_webhook_configuration(
            {"apiVersion": group, "kind": V, "metadata": {"name": self.name},
             "webhooks": [hook("services.e2e-certs.netguard.io", "/validate")]})
        self.created.append((V, self.name))
        self.kube.admission.create_mutating_webhook_configuration(
            {"apiVersion": group, "kind": M, "metadata": {"name": self.name},
             "webhooks": [{**hook("labels.e2e-certs.netguard.io", "/mutate"), "reinvocationPolicy": "Never"}]})
        self.created.append((M, self.name))

    def remove(self) -> None:
        rbac = k8s.RbacAuthorizationV1Api(self.kube.api_client)
        delete = {V: self.kube.admission.delete_validating_webhook_configuration,
                  M: self.kube.admission.delete_mutating_webhook_configuration,
                  "ClusterRole": rbac.delete_cluster_role, "ClusterRoleBinding": rbac.delete_cluster_role_binding}
        for kind, name in reversed(self.created):
            try:
                delete[kind](name)
            except ApiException:
                pass

    def rotator(self, cluster: Any, folder: str, clock: Any) -> tuple[CertRotator, ObjectApi]:
        """A rotation that runs as the namespace's ServiceAccount `netguard`."""
        client = api_client(cluster.kubeconfig)
        client.set_default_header("Impersonate-User", f"system:serviceaccount:{self.namespace}:netguard")
        api = ObjectApi(client)
        target = Target(self.namespace, SECRET, ((V, self.name), (M, self.name)), ("127.0.0.1",),
                        self.tmp_path / folder)
        return CertRotator(api, target, POLICY, clock), api

    def bundle(self) -> bytes:
        """The caBundle the API server holds for the validating webhook (the mutating one must match)."""
        found = []
        for read in (self.kube.admission.read_validating_webhook_configuration,
                     self.kube.admission.read_mutating_webhook_configuration):
            found.append(read(self.name).webhooks[0].client_config.ca_bundle or b"")
        assert found[0] == found[1]
        return base64.b64decode(found[0]) if isinstance(found[0], str) else found[0]

    def handshake(self, bundle: bytes) -> None:
        """TLS to netguard trusting only `bundle`, hostname checked: what the API server does."""
        context = ssl.create_default_context(cadata=bundle.decode())
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=5)
        try:
            conn.request("GET", "/healthz")
            assert conn.getresponse().status == 200
        finally:
            conn.close()

    def probe(self, counter=itertools.count()) -> None:
        """A Service write the API server can only admit by calling netguard over TLS (both
        webhooks fail closed): raises with the API server's reason otherwise."""
        name = f"probe-{next(counter)}"
        try:
            self.kube.core.create_namespaced_service(self.namespace, service(name, "ClusterIP"))
        except ApiException as exc:
            raise AssertionError(f"the API server refused {name}: {status_of(exc).get('message')}") from None


@pytest.fixture
def setup(kube, tmp_path):
    made = Setup(kube, tmp_path)
    try:
        made.install()
        yield made
    finally:
        made.remove()


def start_server(setup: Setup, folder: Path) -> Server:
    srv = Server(setup.tmp_path, "--certs", str(folder))
    srv.port = setup.port
    srv.args[srv.args.index("--bind") + 1] = f"127.0.0.1:{setup.port}"

    def answering() -> bool:
        setup.handshake((folder / "ca.crt").read_bytes())
        return True

    return srv.start_when(answering, timeout=60)


def test_self_managed_certificates_through_a_ca_roll(cluster, kube, setup):
    clock = Ahead()
    rotator, api = setup.rotator(cluster, "a", clock)
    folder = setup.tmp_path / "a"
    srv = None
    try:
        first = rotator.round()  # as netguard's ServiceAccount: RBAC of the overlay suffices
        assert first.secret_written and sorted(first.patched) == sorted([f"{V}/{setup.name}", f"{M}/{setup.name}"])
        srv = start_server(setup, folder)
        eventually(lambda: setup.probe() or True, "the API server calls netguard with the caBundle written", 60)
        old_ca = setup.bundle()
        # To the CA's 2/3 point: the next CA is staged; then the overlaps pass in real time.
        clock.offset = dt.timedelta(seconds=81)
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = rotator.round()
            bundle = setup.bundle()
            setup.handshake(bundle)  # the bundle the API server holds trusts what is served
            setup.probe()  # and the API server itself admits through netguard: no window
            seen.append((done.plan.stage, done.plan.promote, bool(done.plan.drop)))
            if done.plan.drop:
                break
            time.sleep(0.5)
        assert [s for s in seen if any(s)][:3] == [(True, False, False), (False, True, False), (False, False, True)]
        assert setup.bundle() != old_ca
        # Only the new CA is left; the API server, with a new client for the new caBundle,
        # connects again and trusts the certificate from the new CA.
        eventually(lambda: setup.probe() or True, "the API server admits with only the new CA", 30)
    finally:
        if srv is not None and srv.proc is not None:
            srv.stop()
        api.close()


def test_two_replicas_racing_from_an_empty_secret(cluster, kube, setup):
    clock = Ahead()
    (a, api_a), (b, api_b) = setup.rotator(cluster, "a", clock), setup.rotator(cluster, "b", clock)
    errors: list[BaseException] = []

    def run(rotator: CertRotator) -> None:
        try:
            rotator.round()
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(r,)) for r in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        secret = kube.core.read_namespaced_secret(SECRET, setup.namespace)
        data = {k: base64.b64decode(v) for k, v in secret.data.items()}
        assert (setup.tmp_path / "a" / "tls.crt").read_bytes() == data["tls.crt"]
        assert (setup.tmp_path / "b" / "tls.crt").read_bytes() == data["tls.crt"]
        assert setup.bundle() == data["ca-bundle.crt"]
    finally:
        api_a.close()
        api_b.close()
