"""Verdict parity for `netguard fix`: the real server (gunicorn, TLS) admits each LoadBalancer
without warnings once the policies the fix wrote are in its --objects inventory, as `netguard
check` does (tests/cli/test_fix_command.py); a namespace left unfixed is still denied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reviews import make_review
from tests.serverproc import Server
from webhook.cli.fix import run_fix
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
