"""`netguard check` with egress.required: the command refuses what the server refuses, the fix
in its denial makes the manifests pass without a warning, and the Flux same-set warning follows
the directions the configuration requires."""

from __future__ import annotations

import json

import yaml

from tests.reviews import namespace, policy, service
from webhook.cli.check import check, run_check
from webhook.core.config import parse_settings
from webhook.core.settings import default_settings
from webhook.inventory.kube import ClusterObjects
from webhook.inventory.objects import parse_manifests

CONFIG = "egress:\n  required: true\n  namespaceSelector: {matchLabels: {exposure: public}}\n"
DENY_IN = {"podSelector": {}, "policyTypes": ["Ingress"]}
DENY_EG = {"podSelector": {}, "policyTypes": ["Egress"]}
WEB_IN = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
          "ingress": [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]}


def _write(path, objects):
    path.write_text(yaml.safe_dump_all(objects))
    return str(path)


def _run(capsys, *args):
    code = run_check(["--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_the_fix_in_the_denial_makes_check_pass_without_warnings(tmp_path, capsys):
    config = tmp_path / "netguard.yaml"
    config.write_text(CONFIG)
    app = _write(tmp_path / "app.yaml", [namespace("shop", {"exposure": "public"}), policy("deny", DENY_IN),
                                         policy("web", WEB_IN), service("web", type="LoadBalancer")])
    code, payload = _run(capsys, "--config", str(config), app)
    refused = [r for r in payload["results"] if r["decision"] == "deny"]
    assert code == 1 and [(r["kind"], r["name"]) for r in refused] == [("Service", "web")]
    message = refused[0]["message"]
    fix = message.split("\n", 2)[2]
    fix = fix[:fix.index("allow-dns-egress lets")]
    (tmp_path / "fix.yaml").write_text(fix)
    code, payload = _run(capsys, "--config", str(config), app, str(tmp_path / "fix.yaml"))
    assert code == 0, payload
    assert all(r["decision"] == "allow" and not r["warnings"] for r in payload["results"]), payload
    # The same manifests pass without the fix when egress is not required (the default).
    code, _ = _run(capsys, app)
    assert code == 0


def test_flux_warns_when_the_only_egress_default_deny_is_in_the_same_set():
    """Flux dry-runs a stage against the cluster as it stands: the cluster has the ingress
    default-deny, the egress one comes with the Service, so the dry-run would deny it."""
    cluster = ClusterObjects(namespaces=[namespace("shop", {"exposure": "public"})],
                             policies=[policy("deny", DENY_IN), policy("web", WEB_IN)], services=[])
    manifests = parse_manifests(yaml.safe_dump_all([policy("deny-egress", DENY_EG),
                                                    service("web", type="LoadBalancer")]), "app.yaml")
    report = check(manifests, parse_settings(CONFIG), cluster, flux=True)
    assert all(r.allowed for r in report.results)
    [warning] = report.warnings
    assert warning.name == "web" and "shop/deny-egress" in warning.detail
    assert "the only default-deny egress policy" in warning.detail
    # Egress not required: the cluster's ingress default-deny is all the dry-run needs.
    assert check(manifests, default_settings(), cluster, flux=True).warnings == ()
