"""`netguard audit`: the pure scan over object lists, and run_audit against a small local HTTP
server that answers the three list endpoints like kube-apiserver (paged, items without kind).

`FakeApi` is also used by tests/cli/test_check.py for `netguard check --cluster`.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from webhook.core import messages
from webhook.core.settings import default_settings
from webhook.core.config import parse_settings
from webhook.inventory.offline import OfflineInventory
from webhook.core.outcome import Violation
from webhook.core.rules.loadbalancer import CANCELLED as CANCELLED_RULE
from webhook.core.violations import scan_views
from webhook.inventory.views import build_views
from webhook.cli.audit import run_audit, scan

LB_RULE = "loadbalancer-requires-default-deny"
LABELS_RULE = "required-labels"


# --------------------------------------------------------------------------- objects


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def service(ns: str, name: str, type: str = "LoadBalancer", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"type": type, "ports": [{"port": 80}]}}


def policy(ns: str, name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}


DENY_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"]}
ALLOW_ALL = {"podSelector": {}, "ingress": [{}]}
ALLOW_WEB = {"podSelector": {"matchLabels": {"app": "web"}},
             "ingress": [{"from": [{"podSelector": {}}]}]}


def found(violations: list[Violation]) -> set[tuple[str, str, str, str]]:
    return {(v.rule, v.kind, v.namespace, v.name) for v in violations}


# --------------------------------------------------------------------------- scan


@pytest.mark.parametrize("namespaces, policies, services, expected", [
    pytest.param([namespace("shop")], [], [service("shop", "web")],
                 {(LB_RULE, "Service", "shop", "web")}, id="lb-without-policy"),
    pytest.param([namespace("shop")], [policy("shop", "deny", DENY_INGRESS)], [service("shop", "web")],
                 set(), id="lb-behind-default-deny"),
    pytest.param([], [policy("shop", "allow-web", ALLOW_WEB)], [service("shop", "web")],
                 {(LB_RULE, "Service", "shop", "web")}, id="lb-with-allow-policy-only"),
    pytest.param([], [policy("shop", "deny", {"podSelector": {}, "policyTypes": ["Egress"]})],
                 [service("shop", "web")], {(LB_RULE, "Service", "shop", "web")},
                 id="lb-with-egress-only-default-deny"),
    pytest.param([], [], [service("shop", "api", type="ClusterIP"), service("shop", "np", type="NodePort")],
                 set(), id="no-load-balancer"),
    pytest.param([], [policy("shop", "deny", DENY_INGRESS), policy("shop", "allow-all", ALLOW_ALL)], [],
                 {(CANCELLED_RULE, "NetworkPolicy", "shop", "allow-all")}, id="cancelled-default-deny"),
    pytest.param([], [policy("shop", "deny", DENY_INGRESS), policy("shop", "allow-all", ALLOW_ALL)],
                 [service("shop", "web")], {(CANCELLED_RULE, "NetworkPolicy", "shop", "allow-all")},
                 id="cancelled-default-deny-with-lb"),
    pytest.param([], [policy("shop", "allow-all", ALLOW_ALL)], [], set(),
                 id="allow-all-without-default-deny-cancels-nothing"),
    pytest.param([], [policy("shop", "deny", DENY_INGRESS), policy("shop", "allow-web", ALLOW_WEB)], [],
                 set(), id="allow-for-some-pods-does-not-cancel"),
    pytest.param([namespace("kube-system")], [], [service("kube-system", "dns-lb")], set(),
                 id="exempt-kube-system"),
    pytest.param([], [policy("netguard-system", "d", DENY_INGRESS), policy("netguard-system", "a", ALLOW_ALL)],
                 [service("netguard-system", "lb")], set(), id="exempt-own-namespace"),
    pytest.param([namespace("a"), namespace("b")], [policy("a", "deny", DENY_INGRESS)],
                 [service("a", "web"), service("b", "web")], {(LB_RULE, "Service", "b", "web")},
                 id="only-the-unprotected-namespace"),
])
def test_scan_finds(namespaces, policies, services, expected):
    assert found(scan(namespaces, policies, services, default_settings())) == expected


def test_clean_cluster_has_no_violations():
    violations = scan([namespace("shop"), namespace("kube-system")],
                      [policy("shop", "deny", DENY_INGRESS), policy("shop", "allow-web", ALLOW_WEB)],
                      [service("shop", "web"), service("shop", "api", type="ClusterIP"),
                       service("kube-system", "lb")], default_settings())
    assert violations == []


def test_violation_messages_name_the_object():
    [lb] = scan([], [], [service("shop", "web")], default_settings())
    assert lb == Violation(LB_RULE, "shop", "web", "Service", messages.loadbalancer_summary("shop", "web"))
    assert "shop/web" in lb.message
    [cancel] = scan([], [policy("shop", "deny", DENY_INGRESS), policy("shop", "open", ALLOW_ALL)], [],
                    default_settings())
    assert "open" in cancel.message and "shop" in cancel.message and "not isolated" in cancel.message


def test_violation_is_frozen():
    v = Violation(LB_RULE, "shop", "web", "Service", "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.name = "other"  # type: ignore[misc]


REQUIRE_OWNER = parse_settings("labels: {required: [owner]}\nexemptNamespaces: [tools]\n")


@pytest.mark.parametrize("policies, services, expected", [
    pytest.param([], [service("shop", "api", type="ClusterIP")],
                 {(LABELS_RULE, "Service", "shop", "api")}, id="service-without-owner"),
    pytest.param([policy("shop", "deny", DENY_INGRESS)], [service("shop", "web", owner="sre")],
                 {(LABELS_RULE, "NetworkPolicy", "shop", "deny")}, id="policy-without-owner"),
    pytest.param([policy("shop", "deny", DENY_INGRESS, owner="sre")], [service("shop", "web", owner="sre")],
                 set(), id="all-labelled"),
    pytest.param([], [service("tools", "api", type="ClusterIP")], set(), id="configured-exempt-namespace"),
    pytest.param([], [service("kube-system", "api", type="ClusterIP")],
                 {(LABELS_RULE, "Service", "kube-system", "api")},
                 id="exempt-list-replaced-so-kube-system-is-checked"),
])
def test_required_labels(policies, services, expected):
    assert found(scan([], policies, services, REQUIRE_OWNER)) == expected


def test_required_labels_message_lists_missing_keys():
    settings = parse_settings("labels: {required: [owner, app.kubernetes.io/part-of]}\n")
    [v] = scan([], [], [service("shop", "api", type="ClusterIP", owner="sre")], settings)
    assert v.rule == LABELS_RULE and "app.kubernetes.io/part-of" in v.message and "owner" not in v.message


def test_results_are_sorted_by_namespace_kind_name():
    violations = scan([], [policy("b", "deny", DENY_INGRESS), policy("b", "open", ALLOW_ALL)],
                      [service("b", "x"), service("a", "z"), service("a", "y")], default_settings())
    assert [(v.namespace, v.kind, v.name) for v in violations] == [
        ("a", "Service", "y"), ("a", "Service", "z"), ("b", "NetworkPolicy", "open")]


def test_scan_views_matches_scan_on_an_offline_inventory():
    """The server's periodic scan from its inventory finds what scan finds, labels aside."""
    namespaces = [namespace("a"), namespace("b"), namespace("c"), namespace("kube-system")]
    policies = [policy("b", "deny", DENY_INGRESS), policy("b", "open", ALLOW_ALL),
                policy("c", "deny", DENY_INGRESS)]
    services = [service("a", "web"), service("c", "web"), service("kube-system", "lb")]
    inventory = OfflineInventory([*namespaces, *policies, *services])
    from_inventory = scan_views([inventory.view(ns["metadata"]["name"]) for ns in namespaces],
                                REQUIRE_OWNER)
    from_objects = [v for v in scan(namespaces, policies, services, REQUIRE_OWNER) if v.rule != LABELS_RULE]
    assert from_inventory == from_objects
    assert found(from_inventory) == {(LB_RULE, "Service", "a", "web"),
                                     (CANCELLED_RULE, "NetworkPolicy", "b", "open"),
                                     (LB_RULE, "Service", "kube-system", "lb")}


def test_build_views_keeps_namespace_labels_and_objects_of_unlisted_namespaces():
    views = build_views([namespace("shop", team="payments")], [policy("other", "deny", DENY_INGRESS)],
                        [service("shop", "web")])
    assert dict(views["shop"].labels) == {"team": "payments"} and views["shop"].known
    assert views["shop"].load_balancers == {"web"}
    assert views["other"].default_deny_policies() == ["deny"] and not views["other"].known


@pytest.mark.parametrize("module", ["webhook.cli.audit", "webhook.cli.check", "webhook.cli.report"])
def test_importing_does_not_load_flask_or_kubernetes(module):
    code = (f"import sys, {module}; "
            "loaded = [m for m in ('flask', 'kubernetes') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- a fake API server


def _strip_kind(obj: dict[str, Any]) -> dict[str, Any]:
    """List items as the API serves them: without kind and apiVersion."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class FakeApi:
    """kube-apiserver's three list endpoints on 127.0.0.1, paged `page_size` items at a time
    (ignoring ?limit, as a server may), or answering `status` to everything when set."""

    PATHS = {
        "/api/v1/namespaces": "NamespaceList",
        "/apis/networking.k8s.io/v1/networkpolicies": "NetworkPolicyList",
        "/api/v1/services": "ServiceList",
    }

    DISCOVERY = ("/apis/cilium.io", "/apis/policy.networking.k8s.io", "/apis/projectcalico.org")

    def __init__(self, namespaces=(), policies=(), services=(), page_size: int = 2,
                 status: int = 200, served=None) -> None:
        """`served`: {"GROUP/VERSION": {(plural, kind): [objects]}}, discovery answered for them."""
        self.items = dict(zip(self.PATHS, (list(namespaces), list(policies), list(services))))
        self.PATHS = dict(self.PATHS)
        self.discovery: dict[str, dict[str, Any]] = {}
        for group_version, resources in (served or {}).items():
            group, version = group_version.split("/")
            self.discovery[f"/apis/{group}"] = {"kind": "APIGroup", "name": group, "versions": [
                {"groupVersion": group_version, "version": version}],
                "preferredVersion": {"groupVersion": group_version, "version": version}}
            self.discovery[f"/apis/{group_version}"] = {"kind": "APIResourceList", "resources": [
                {"name": plural, "kind": kind, "namespaced": False} for plural, kind in resources]}
            for (plural, kind), objects in resources.items():
                self.PATHS[f"/apis/{group_version}/{plural}"] = f"{kind}List"
                self.items[f"/apis/{group_version}/{plural}"] = list(objects)
        self.page_size = page_size
        self.status = status
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []  # path, query, Authorization
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                api.requests.append((url.path, query, self.headers.get("Authorization", "")))
                if api.status == 200 and url.path in api.discovery:
                    self._send(200, api.discovery[url.path])
                    return
                if api.status != 200 or url.path not in api.PATHS:
                    code = api.status if api.status != 200 else 404
                    self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "code": code, "reason": "Forbidden" if code == 403 else "NotFound"})
                    return
                items = api.items[url.path]
                start = int(query.get("continue", ["0"])[0])
                end = start + api.page_size
                metadata: dict[str, Any] = {"resourceVersion": "42"}
                if end < len(items):
                    metadata["continue"] = str(end)
                self._send(200, {"kind": api.PATHS[url.path], "apiVersion": "v1", "metadata": metadata,
                                 "items": [_strip_kind(o) for o in items[start:end]]})

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeApi":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters:
        - name: fake
          cluster: {{server: "{server}"}}
        users:
        - name: fake
          user: {{token: test-token}}
        contexts:
        - name: fake
          context: {{cluster: fake, user: fake}}
        current-context: fake
        """), encoding="utf-8")
    return path


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- run_audit


CLUSTER = dict(
    namespaces=[namespace("shop"), namespace("exposed"), namespace("open"), namespace("kube-system")],
    policies=[policy("shop", "deny", DENY_INGRESS), policy("open", "deny", DENY_INGRESS),
              policy("open", "allow-all", ALLOW_ALL)],
    # 5 Services: three pages of 2; the exposed LoadBalancer is on the last page.
    services=[service("shop", "web"), service("kube-system", "lb"), service("shop", "api", type="ClusterIP"),
              service("open", "api", type="ClusterIP"), service("exposed", "public")],
)


def test_run_audit_reports_violations_and_exits_1(tmp_path, capsys):
    with FakeApi(**CLUSTER) as api:
        code = run_audit(["--kubeconfig", str(write_kubeconfig(tmp_path / "kubeconfig", api.url))])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{LB_RULE}: Service exposed/public:" in out
    assert f"{CANCELLED_RULE}: NetworkPolicy open/allow-all:" in out
    assert "shop/web" not in out and "kube-system" not in out
    assert "2 violation(s) in 2 namespace(s); 3 namespace(s) scanned" in out
    # Every collection was listed, the services page by page following `continue`.
    service_calls = [query for path, query, _ in api.requests if path == "/api/v1/services"]
    assert [q.get("continue") for q in service_calls] == [None, ["2"], ["4"]]
    assert all(q["limit"] == ["500"] for q in service_calls)
    assert {auth for _, _, auth in api.requests} == {"Bearer test-token"}


def test_run_audit_json(tmp_path, capsys):
    with FakeApi(**CLUSTER) as api:
        code = run_audit(["--format", "json", "--kubeconfig",
                          str(write_kubeconfig(tmp_path / "kubeconfig", api.url))])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert payload["summary"] == {"violations": 2, "namespaces": 3}
    assert {(v["rule"], v["kind"], v["namespace"], v["name"]) for v in payload["violations"]} == {
        (LB_RULE, "Service", "exposed", "public"), (CANCELLED_RULE, "NetworkPolicy", "open", "allow-all")}


def test_run_audit_clean_cluster_exits_0(tmp_path, capsys, monkeypatch):
    with FakeApi([namespace("shop")], [policy("shop", "deny", DENY_INGRESS)], [service("shop", "web")]) as api:
        # No --kubeconfig: the default loading honours $KUBECONFIG.
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", api.url)))
        code = run_audit([])
    out = capsys.readouterr().out
    assert code == 0
    assert "0 violation(s)" in out and "1 namespace(s) scanned" in out
    assert len([p for p in api.paths() if p not in FakeApi.DISCOVERY]) == 3


def test_run_audit_with_required_labels_from_config(tmp_path, capsys):
    config = tmp_path / "netguard.yaml"
    config.write_text("labels:\n  required: [owner]\n", encoding="utf-8")
    with FakeApi([namespace("shop")], [policy("shop", "deny", DENY_INGRESS, owner="sre")],
                 [service("shop", "web")]) as api:
        code = run_audit(["--config", str(config), "--kubeconfig",
                          str(write_kubeconfig(tmp_path / "kubeconfig", api.url))])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{LABELS_RULE}: Service shop/web:" in out and "NetworkPolicy" not in out


def test_run_audit_server_down_exits_2(tmp_path, capsys):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed_port()}")
    code = run_audit(["--kubeconfig", str(kubeconfig)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "netguard audit: cannot list the cluster: cannot reach the API server at http://127.0.0.1:" \
        in captured.err


def test_run_audit_forbidden_exits_2(tmp_path, capsys):
    with FakeApi(status=403) as api:
        code = run_audit(["--kubeconfig", str(write_kubeconfig(tmp_path / "kubeconfig", api.url))])
    err = capsys.readouterr().err
    assert code == 2
    assert "refused to list namespaces: HTTP 403" in err


@pytest.mark.parametrize("kubeconfig_text, expected", [
    pytest.param(None, "cannot load kubeconfig", id="missing-file"),
    pytest.param("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n", "cannot load kubeconfig",
                 id="no-context"),
])
def test_run_audit_bad_kubeconfig_exits_2(tmp_path, capsys, kubeconfig_text, expected):
    path = tmp_path / "kubeconfig"
    if kubeconfig_text is not None:
        path.write_text(kubeconfig_text, encoding="utf-8")
    assert run_audit(["--kubeconfig", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_run_audit_bad_config_exits_2_before_listing(tmp_path, capsys):
    config = tmp_path / "netguard.yaml"
    config.write_text("rules:\n  required-labels: {action: block}\n", encoding="utf-8")
    with FakeApi(**CLUSTER) as api:
        code = run_audit(["--config", str(config), "--kubeconfig",
                          str(write_kubeconfig(tmp_path / "kubeconfig", api.url))])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{config} line 2: rules.required-labels.action" in err
    assert api.requests == []
