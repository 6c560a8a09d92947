"""Fixtures of the end-to-end tests: one etcd + kube-apiserver per session (tests/e2e/apiserver.py),
one `netguard serve --kubeconfig` registered into it through `netguard manifests --url`.

Session order: cluster -> kube (clients) -> legacy (a violation created before netguard is
registered, for `netguard audit` and the existing-violation warning) -> netguard (started, ready,
registered, and effective: a probe LoadBalancer is refused by netguard, a probe Service labelled).

Tests marked `disruptive` (they stop the apiserver) run last, whatever their file name.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

E2E = Path(__file__).resolve().parent
TESTS = E2E.parent
for _path in (str(E2E), str(TESTS)):  # apiserver.py here; serverproc.py one level up
    if _path not in sys.path:
        sys.path.insert(0, _path)

from apiserver import (  # noqa: E402
    Cluster,
    default_deny,
    eventually,
    find_binaries,
    loopback_without_proxy,
    service,
    status_of,
    unique,
)

# Copy `team` from the namespace (scenario: labels); rescan every second, so the watch-restart
# counter reaches /metrics quickly (scenario: apiserver restart).
NETGUARD_CONFIG = """\
labels:
  fromNamespace: [team]
scanIntervalSeconds: 1
failureMode: closed
"""
EXPOSURE = "netguard/exposure"
GUARD_TIMEOUT = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "disruptive: stops and restarts kube-apiserver; runs last")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Stable: everything keeps its order, the disruptive tests move to the end.
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


# --------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    binaries, reason = find_binaries()
    if binaries is None:
        pytest.skip(reason)
    # For the session: the kubernetes client (here and in netguard, which inherits the
    # environment) must not send 127.0.0.1 to a proxy named by HTTPS_PROXY.
    environment = pytest.MonkeyPatch()
    request.addfinalizer(environment.undo)
    for key, value in loopback_without_proxy(os.environ).items():
        environment.setenv(key, value)
    started = Cluster(binaries, tmp_path_factory.mktemp("cluster"))
    request.addfinalizer(started.stop)  # also after a failed start: stops what did start
    started.start()
    return started


class Kube:
    """The kubernetes client on the test cluster, and the steps the scenarios share."""

    def __init__(self, cluster: Cluster) -> None:
        from kubernetes import client

        self.cluster = cluster
        self.api_client = cluster.api_client()
        self.core = client.CoreV1Api(self.api_client)
        self.networking = client.NetworkingV1Api(self.api_client)
        self.admission = client.AdmissionregistrationV1Api(self.api_client)

    def new_namespace(self, prefix: str, labels: dict[str, str] | None = None) -> str:
        name = unique(prefix)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            body["metadata"]["labels"] = dict(labels)
        self.core.create_namespace(body)
        return name

    @staticmethod
    def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, Status body) of a call the API must refuse."""
        from kubernetes.client.exceptions import ApiException

        try:
            result = call(*args, **kwargs)
        except ApiException as exc:
            return exc.status, status_of(exc)
        raise AssertionError(f"{getattr(call, '__name__', call)} was admitted: {result}")

    def service_labels(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self.core.read_namespaced_service(name, namespace).metadata.labels or {})

    def policy_labels(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self.networking.read_namespaced_network_policy(name, namespace).metadata.labels or {})

    def assert_loadbalancer_requires_default_deny(self, namespace: str, name: str = "web") -> None:
        """Scenario 1: refused by netguard without a default-deny, admitted once it exists."""
        code, status = self.refused(self.core.create_namespaced_service, namespace, service(name))
        assert code == 403, status
        assert status.get("reason") == "Forbidden" and status.get("code") == 403, status
        message = status.get("message", "")
        assert "admission webhook" in message, message
        first = (f"Service {namespace}/{name} of type LoadBalancer was refused: namespace {namespace} "
                 "has no default-deny ingress NetworkPolicy")
        assert re.search(r'admission webhook "[^"]+" denied the request: ' + re.escape(first), message), message
        self.networking.create_namespaced_network_policy(namespace, default_deny())
        created = self.core.create_namespaced_service(namespace, service(name))
        assert created.spec.type == "LoadBalancer"
        assert self.core.read_namespaced_service(name, namespace).spec.type == "LoadBalancer"

    def wait_until_guarded(self, timeout: float = GUARD_TIMEOUT) -> None:
        """Until the apiserver calls netguard: webhook configurations reach its admission chain
        through an informer, a moment after they are created (and after every restart)."""
        from kubernetes.client.exceptions import ApiException

        probe = self.new_namespace("e2e-probe")
        counter = itertools.count()

        def validating() -> bool:
            name = f"probe-{next(counter)}"
            try:
                self.core.create_namespaced_service(probe, service(name))
            except ApiException as exc:
                message = status_of(exc).get("message", "")
                if exc.status == 403 and "admission webhook" in message and "was refused" in message:
                    return True
                raise  # e.g. 500 "failed calling webhook": reported if it lasts
            self.core.delete_namespaced_service(name, probe)  # admitted: not effective yet
            return False

        def mutating() -> bool:
            name = f"probe-{next(counter)}"
            created = self.core.create_namespaced_service(probe, service(name, "ClusterIP"))
            return (created.metadata.labels or {}).get(EXPOSURE) == "cluster"

        eventually(validating, "netguard's validating webhook refuses a probe LoadBalancer", timeout)
        eventually(mutating, "netguard's mutating webhook labels a probe Service", timeout)


@pytest.fixture(scope="session")
def kube(cluster: Cluster):
    clients = Kube(cluster)
    yield clients
    clients.api_client.close()


@pytest.fixture(scope="session")
def legacy(kube: Kube) -> str:
    """A namespace without policy holding LoadBalancers `legacy` and `legacy-edit`, created before
    netguard is registered (the `netguard` fixture depends on this one)."""
    namespace = kube.new_namespace("e2e-legacy")
    for name in ("legacy", "legacy-edit"):
        kube.core.create_namespaced_service(namespace, service(name))
    return namespace


# --------------------------------------------------------------------------- netguard


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


def _stop(server: Any) -> None:
    if server.proc is None or server.proc.poll() is not None:
        return
    try:
        server.stop()
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


def register(kube: Kube, url: str, certs: Path) -> list[dict[str, Any]]:
    """`netguard manifests --url URL --certs DIR`, created in the cluster as printed."""
    import yaml
    from serverproc import netguard as run_netguard

    printed = run_netguard("manifests", "--url", url, "--certs", str(certs)).stdout
    documents = [d for d in yaml.safe_load_all(printed) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"], kinds
    for document in documents:
        for hook in document["webhooks"]:
            assert hook["clientConfig"]["url"].startswith(url + "/"), hook["clientConfig"]
            assert hook["clientConfig"]["caBundle"], hook["name"]
        if document["kind"] == "ValidatingWebhookConfiguration":
            kube.admission.create_validating_webhook_configuration(document)
        else:
            kube.admission.create_mutating_webhook_configuration(document)
    return documents


@pytest.fixture(scope="session")
def netguard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             cluster: Cluster, kube: Kube, legacy: str):
    """`netguard serve --kubeconfig` (serverproc.Server: gunicorn, TLS from `netguard certs`),
    ready, registered, effective."""
    from serverproc import Server

    workdir = tmp_path_factory.mktemp("netguard")
    config = workdir / "netguard.yaml"
    config.write_text(NETGUARD_CONFIG)
    server = Server(workdir, "--kubeconfig", str(cluster.kubeconfig), "--config", str(config))
    request.addfinalizer(lambda: _stop(server))
    try:
        server.start_when(lambda: server.get("/readyz")[0] == 200, timeout=GUARD_TIMEOUT)
        server.webhooks = register(kube, f"https://127.0.0.1:{server.port}", server.certs)
        kube.wait_until_guarded()
    except Exception as exc:
        raise RuntimeError(f"netguard could not be set up in the test cluster: {exc}\n"
                           f"--- {server.stderr_path}\n{_tail(server.stderr_path)}\n{cluster.logs()}") from exc
    return server


# --------------------------------------------------------------------------- kubectl


class Kubectl:
    def __init__(self, binary: str, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Kubectl:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on PATH")
    return Kubectl(binary, cluster.kubeconfig)

