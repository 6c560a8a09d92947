"""The round trip through the command line, for each Service of tests/denial_cases.py:
`netguard check` denies the Service and its message carries the allow policy exactly as
`netguard fix` writes it for the same manifest; the YAML copied from that message, applied
beside the manifest, makes `netguard check` exit 0 with no warnings.

Also: check shows the denial the server gives, even where check could resolve a named port from
a Deployment among the manifests (the server sees only the Service)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.denial_cases import CASES, PARAMS, lb, state
from tests.denials import fix_documents, fix_yaml
from tests.reviews import make_request, view_of
from webhook.cli.check import run_check
from webhook.cli.fix import run_fix
from webhook.core import decide, fix
from webhook.core.settings import default_settings


def check(capsys, *argv) -> tuple[int, dict]:
    code = run_check(["--format", "json", "--warn-exit-code", "3", *map(str, argv)])
    return code, json.loads(capsys.readouterr().out)


def netguard_fix(capsys, *argv) -> list[dict]:
    assert run_fix([str(a) for a in argv]) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]


@pytest.mark.parametrize("name, case", PARAMS)
def test_the_yaml_of_the_denial_gets_the_service_admitted_without_warnings(tmp_path, capsys, name, case):
    manifest = tmp_path / "service.yaml"
    manifest.write_text(yaml.safe_dump_all([lb(case), *state(case)]))
    config = ["--config", tmp_path / "netguard.yaml"] if case.config else []
    if case.config:
        (tmp_path / "netguard.yaml").write_text(case.config)
    code, payload = check(capsys, *config, manifest)
    [message] = [r["message"] for r in payload["results"] if r["kind"] == "Service"]
    assert code == 1
    # What `netguard fix` writes for the same manifest: the allow policy, the same text.
    written = netguard_fix(capsys, *config, manifest)
    allow = fix_documents(message)[-1]
    assert allow == next(d for d in written if d["metadata"]["name"].startswith(fix.ALLOW_PREFIX))
    # The YAML copied from the message as it stands (notes are comments in it), applied beside.
    (tmp_path / "from-the-denial.yaml").write_text(fix_yaml(message))
    code, payload = check(capsys, *config, manifest, tmp_path / "from-the-denial.yaml")
    assert code == 0, payload
    assert all(r["decision"] == "allow" and r["warnings"] == [] for r in payload["results"]), payload


def test_check_shows_the_servers_denial_even_with_the_deployment_at_hand(tmp_path, capsys):
    service = lb(CASES["named-targetPort-kept"])
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                                        "spec": {"containers": [{"name": "c", "image": "x",
                                                                 "ports": [{"name": "http", "containerPort": 8080}]}]}}}}
    (tmp_path / "set.yaml").write_text(yaml.safe_dump_all([service, deployment]))
    _, payload = check(capsys, tmp_path / "set.yaml")
    [mine] = [r for r in payload["results"] if r["kind"] == "Service"]
    server = decide.validate(make_request(obj=service), view_of([]), default_settings())
    assert mine["message"] == server.message
    assert fix_documents(mine["message"])[-1]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "http"}]
    # netguard fix, given the Deployment, resolves the name; the message's policy works as well.
    [written] = [d for d in netguard_fix(capsys, tmp_path / "set.yaml") if d["metadata"]["name"].startswith(fix.ALLOW_PREFIX)]
    assert written["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
