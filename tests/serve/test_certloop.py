"""webhook.serve.certloop: the master's bootstrap rounds and the workers' lock (one rotating
worker per pod), against the local API test server."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.objectstore import MUTATING, SECRETS, VALIDATING
from tests.watchserver import WatchServer
from webhook.cli import deploy
from webhook.inventory.kube import ClusterError, ObjectApi
from webhook.serve.certloop import RotationLoop, bootstrap
from webhook.serve.certrotator import CertRotator, Target

NS, SECRET = "netguard-system", "netguard-certs"
HOOKS = (("ValidatingWebhookConfiguration", "netguard"), ("MutatingWebhookConfiguration", "netguard"))


@pytest.fixture
def server():
    with WatchServer() as srv:
        for resource, obj in zip((VALIDATING, MUTATING), deploy.webhook_configurations(NS, "", None)):
            srv.objects.put(resource, obj)
        srv.objects.put(SECRETS, {"metadata": {"name": SECRET, "namespace": NS}})
        yield srv


@pytest.fixture
def make(server, tmp_path):
    made: list[ObjectApi] = []

    def make_rotator():
        api = ObjectApi(client.ApiClient(client.Configuration(host=server.url)))
        made.append(api)
        return CertRotator(api, Target(NS, SECRET, HOOKS, ("netguard.netguard-system.svc",), tmp_path / "certs")), api

    yield make_rotator
    for api in made:
        api.close()


def test_bootstrap_retries_until_the_api_answers(server, make, tmp_path):
    server.objects.fail(503, method="GET", resource=SECRETS, count=2)
    sleeps: list[float] = []
    done = bootstrap(make, deadline=60, sleep=sleeps.append)
    assert done.files_written and (tmp_path / "certs" / "tls.crt").exists()
    assert sleeps == [1.0, 2.0]  # backing off, without sleeping for real


def test_bootstrap_gives_up_with_the_last_problem(server, make, tmp_path):
    server.objects.fail(403, method="GET", resource=SECRETS, count=None)
    with pytest.raises(ClusterError, match="refused to get Secret netguard-system/netguard-certs: HTTP 403"):
        bootstrap(make, deadline=0, sleep=lambda _: None)
    assert not (tmp_path / "certs").exists()


def test_one_worker_per_pod_rotates(server, make, tmp_path):
    (tmp_path / "certs").mkdir()
    lock = tmp_path / "certs" / ".rotation.lock"
    first, second = RotationLoop(make, lock), RotationLoop(make, lock)
    try:
        assert first.tick() is not None and first.holds_lock
        since = len(server.requests)
        assert second.tick() is None and not second.holds_lock  # the lock is taken: no API call
        assert len(server.requests) == since
        first.stop()  # the rotating worker exits: the kernel frees its lock
        assert second.tick() is not None and second.holds_lock
    finally:
        first.stop()
        second.stop()
