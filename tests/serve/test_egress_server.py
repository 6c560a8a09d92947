"""The egress table (tests/egress_cases.py) through a real server over TLS configured with
egress.required, and the same rows through `netguard check` and `netguard audit`'s scan: the
three give one verdict (verdict parity)."""

from __future__ import annotations

import pytest
import yaml

from tests.egress_cases import CONFIG, IDS, INDEXED, expect, namespace_of, request_object, review, state_objects
from tests.serverproc import rows_server
from webhook.cli.audit import scan
from webhook.cli.check import check
from webhook.core.config import parse_settings
from webhook.core.rules.loadbalancer import CANCELLED, NAME as LB_RULE
from webhook.inventory.kube import ClusterObjects
from webhook.inventory.objects import parse_manifests

SETTINGS = parse_settings(CONFIG, "egress.yaml")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("egress")
    config = work / "netguard.yaml"
    config.write_text(CONFIG)
    # Every row in a namespace of its own, all in one server.
    srv = rows_server(work, (state_objects(i, c) for i, c in INDEXED), "--config", str(config))
    yield srv
    assert srv.stop() == 0


def _answer(server, index, case):
    # Dry-run: decided like a real request (dryRun: same), and it leaves the offline state as is.
    status, body = server.post_review("/validate", review(index, case, dry_run=True))
    assert status == 200, body
    return body["response"]


@pytest.mark.parametrize("index, case", INDEXED, ids=IDS)
def test_the_server_answers_each_row(server, index, case):
    answer = _answer(server, index, case)
    rule = (answer.get("auditAnnotations") or {}).get("rule", "")
    expect(case, answer["allowed"], rule, answer.get("warnings", []))


CHECKABLE = [(i, c) for i, c in INDEXED if c.checkable]


def _cluster(state):
    return ClusterObjects(namespaces=[o for o in state if o["kind"] == "Namespace"],
                          policies=[o for o in state if o["kind"] == "NetworkPolicy"],
                          services=[o for o in state if o["kind"] == "Service"])


@pytest.mark.parametrize("index, case", CHECKABLE, ids=[c.id for _, c in CHECKABLE])
def test_check_gives_the_servers_verdict(server, index, case):
    # The row's state is what the cluster holds (as `check --cluster` reads it); the request's
    # object is the manifest checked.
    manifests = parse_manifests(yaml.safe_dump(request_object(index, case)), "row.yaml")
    [result] = check(manifests, SETTINGS, _cluster(state_objects(index, case))).results
    expect(case, result.allowed, result.rule, list(result.warnings))
    answer = _answer(server, index, case)
    assert result.allowed == answer["allowed"]
    assert list(result.warnings) == answer.get("warnings", [])


SERVICES = [(i, c) for i, c in CHECKABLE if c.kind == "Service"]


@pytest.mark.parametrize("index, case", SERVICES, ids=[c.id for _, c in SERVICES])
def test_audit_finds_what_the_server_refuses_or_warns_about(server, index, case):
    """The state with the LoadBalancer in it, as `netguard audit` scans a cluster: it reports the
    Service where the server refuses to create it, and a cancelling policy where it warns."""
    state = state_objects(index, case) + [request_object(index, case)]
    cluster = _cluster(state)
    found = {v.rule for v in scan(cluster.namespaces, cluster.policies, cluster.services, SETTINGS)
             if v.namespace == namespace_of(index)}
    answer = _answer(server, index, case)
    assert (LB_RULE in found) is (not answer["allowed"]), (case.id, found)
    assert (CANCELLED in found) is any("cancelled" in w for w in answer.get("warnings", [])), (case.id, found)
