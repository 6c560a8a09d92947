"""Verdict parity for `netguard fix`: the real server (gunicorn, TLS) admits each LoadBalancer
without warnings once the policies the fix wrote are in its --objects inventory, as `netguard
check` does (tests/cli/test_fix_command.py); a namespace left unfixed is still denied, and the
denial offers the allow policy the fix writes, as `netguard check` shows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.denials import fix_documents
from tests.reviews import make_review
from tests.serverproc import Server
from webhook.cli.check import run_check
from webhook.cli.fix import run_fix
from webhook.core import messages, yamltext
from webhook.inventory.objects import read_manifests

MANIFESTS = Path(__file__).parent.parent / "fixtures" / "manifests"
FIXED = ("fixable", "denied")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("fixparity")
    objects = work / "objects"
    for name in FIXED:
        shutil.copytree(MANIFESTS / name, objects / name)
    assert run_fix([str(objects / name) for name in FIXED] + ["--out", str(objects / "fix")]) == 0
    shutil.copytree(MANIFESTS / "staged" / "apps", objects / "unfixed")  # shop/web: moved to namespace plain
    unfixed = objects / "unfixed" / "web.yaml"
    unfixed.write_text(unfixed.read_text().replace("namespace: shop", "namespace: plain"))
    srv = Server(work, "--objects", str(objects)).start()
    yield srv
    assert srv.stop() == 0


def load_balancers(folder: Path) -> list[dict]:
    return [m.obj for m in read_manifests([str(folder)])
            if m.kind == "Service" and m.obj["spec"].get("type") == "LoadBalancer"]


SERVICES = [s for name in FIXED for s in load_balancers(MANIFESTS / name)]


@pytest.mark.parametrize("service", SERVICES, ids=[f"{s['metadata']['namespace']}/{s['metadata']['name']}"
                                                   for s in SERVICES])
@pytest.mark.parametrize("path", ["/mutate", "/validate"])
def test_the_server_admits_the_fixed_load_balancer_without_warnings(server, service, path):
    review = make_review(obj=service, namespace=service["metadata"]["namespace"])
    status, body = server.post_review(path, review)
    assert status == 200, body
    assert body["response"]["allowed"] is True, body
    assert body["response"].get("warnings", []) == []


def test_an_unfixed_namespace_is_still_denied(server):
    [service] = load_balancers(server.workdir / "objects" / "unfixed")
    status, body = server.post_review("/validate", make_review(obj=service, namespace="plain"))
    assert status == 200
    assert body["response"]["allowed"] is False
    assert "namespace plain has no default-deny ingress NetworkPolicy" in body["response"]["status"]["message"]


def test_the_servers_denial_offers_the_allow_policy_netguard_fix_writes(server, tmp_path, capsys):
    # A LoadBalancer with a selector, in a namespace with no policies: the real server's denial
    # carries the allow policy `netguard fix` writes for it, and `netguard check` shows the same.
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "plain"},
               "spec": {"type": "LoadBalancer", "selector": {"app": "api"}, "loadBalancerSourceRanges": ["10.0.0.0/8"],
                        "ports": [{"port": 443, "targetPort": "https"}, {"port": 53, "protocol": "UDP"}]}}
    status, body = server.post_review("/validate", make_review(obj=service, namespace="plain"))
    assert status == 200 and body["response"]["allowed"] is False
    message = body["response"]["status"]["message"]
    (tmp_path / "api.yaml").write_text(yaml.safe_dump(service))
    assert run_fix([str(tmp_path / "api.yaml")]) == 0
    written = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert fix_documents(message) == [yaml.safe_load(messages.default_deny_yaml("plain")), written[-1]]
    assert yamltext.dump(written[-1]) in message and len(message) <= messages.MAX_MESSAGE_CHARS
    assert run_check(["--format", "json", str(tmp_path / "api.yaml")]) == 1
    [mine] = json.loads(capsys.readouterr().out)["results"]
    assert mine["message"] == message
