"""The isolation table (tests/isolation_cases.py) through a real server over TLS, and the same
rows through `netguard check`: the three give one verdict (verdict parity)."""

from __future__ import annotations

import pytest
import yaml

from tests.isolation_cases import IDS, INDEXED, expect, request_object, review, state_objects
from tests.serverproc import rows_server
from webhook.cli.check import check
from webhook.core.settings import default_settings
from webhook.inventory.kube import ClusterObjects
from webhook.inventory.objects import parse_manifests


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Every row in a namespace of its own, all in one server.
    srv = rows_server(tmp_path_factory.mktemp("isolation"), (state_objects(i, c) for i, c in INDEXED))
    yield srv
    assert srv.stop() == 0


@pytest.mark.parametrize("index, case", INDEXED, ids=IDS)
def test_the_server_answers_each_row(server, index, case):
    # Dry-run: decided like a real request (dryRun: same), and it leaves the offline state as is.
    status, body = server.post_review("/validate", review(index, case, dry_run=True))
    assert status == 200, body
    answer = body["response"]
    rule = (answer.get("auditAnnotations") or {}).get("rule", "")
    expect(case, answer["allowed"], rule, answer.get("warnings", []))


@pytest.mark.parametrize("index, case", [(i, c) for i, c in INDEXED if c.checkable],
                         ids=[c.id for _, c in INDEXED if c.checkable])
def test_check_gives_the_servers_verdict(server, index, case):
    # The row's state is what the cluster holds (as `check --cluster` reads it); the request's
    # object is the manifest checked.
    state = state_objects(index, case)
    cluster = ClusterObjects(namespaces=[o for o in state if o["kind"] == "Namespace"],
                             policies=[o for o in state if o["kind"] == "NetworkPolicy"],
                             services=[o for o in state if o["kind"] == "Service"])
    manifests = parse_manifests(yaml.safe_dump(request_object(index, case)), "row.yaml")
    [result] = check(manifests, default_settings(), cluster).results
    expect(case, result.allowed, result.rule, list(result.warnings))
    status, body = server.post_review("/validate", review(index, case, dry_run=True))
    assert status == 200
    assert result.allowed == body["response"]["allowed"]
    assert list(result.warnings) == body["response"].get("warnings", [])
