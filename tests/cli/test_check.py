"""`netguard check`: manifests evaluated offline with the server's rules, in the apiserver's order
(mutate, apply the patch, validate), reported as text, JSON, JUnit XML or GitHub annotations.

Manifest sets: tests/fixtures/manifests (see its README). Most runs call run_check in-process;
stdin goes through a subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonpatch
import pytest

from tests.cli.test_scan import DENY_INGRESS, FakeApi, closed_port, namespace, policy, write_kubeconfig
from tests.reviews import view_of
from webhook.core import decide, fix, fixpolicies, messages
from webhook.core.config import parse_settings
from webhook.core.patches import apply_patch
from webhook.cli.check import run_check
from webhook.core.settings import default_settings
from webhook.core.view import NamespaceView
from webhook.inventory.offline import read_objects
from webhook.core.messages import first_line
from webhook.wire.review import parse_review

FIXTURES = Path(__file__).parent.parent / "fixtures"
MANIFESTS = FIXTURES / "manifests"
REVIEWS = FIXTURES / "apiserver-reviews"
SCENARIO = REVIEWS / "scenario-shop.yaml"
LB_RULE = "loadbalancer-requires-default-deny"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = run_check([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, err = run(capsys, "--format", "json", *argv)
    assert code != 2, err
    return code, json.loads(out)


def by_name(payload: dict) -> dict[str, dict]:
    return {f"{r['kind']} {r['namespace']}/{r['name']}": r for r in payload["results"]}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def public_lb_offer(settings=None):
    """The allow policy a denial of the `denied` set's LoadBalancer offers."""
    [service] = read_objects(MANIFESTS / "denied")
    return fixpolicies.offer(service, NamespaceView("exposed"), fix.fix_settings(settings or default_settings()))


# --------------------------------------------------------------------------- manifest sets


def test_allowed_set(capsys):
    code, payload = run_json(capsys, MANIFESTS / "allowed")
    results = by_name(payload)
    assert code == 0
    assert {name: r["decision"] for name, r in results.items()} == {
        "NetworkPolicy shop/default-deny-ingress": "allow",
        "NetworkPolicy shop/allow-web": "allow",
        "Service shop/web": "allow",
    }
    web = results["Service shop/web"]
    assert web["rule"] == LB_RULE and "default-deny-ingress" in web["reason"]
    assert web["message"] == "" and web["warnings"] == []
    assert [s["kind"] for s in payload["skipped"]] == ["Namespace"]


def test_denied_set(capsys):
    code, payload = run_json(capsys, MANIFESTS / "denied")
    [result] = payload["results"]
    assert code == 1
    assert (result["decision"], result["allowed"], result["rule"]) == ("deny", False, LB_RULE)
    # The full denial, exactly as the server sends it, with the allow policy `netguard fix` writes.
    offered = public_lb_offer()
    assert result["message"] == messages.loadbalancer_denied("exposed", "public-lb", "CREATE", rule=LB_RULE,
                                                             allow=offered)
    assert offered is not None and offered.name in result["message"]
    assert payload["summary"]["denied"] == 1


def test_mixed_set(capsys):
    code, payload = run_json(capsys, MANIFESTS / "mixed")
    results = by_name(payload)
    assert code == 1
    assert {name: r["decision"] for name, r in results.items()} == {
        "NetworkPolicy shop/default-deny": "allow",
        "Service shop/web": "allow",  # allow-all is refused, so it never cancels the default-deny
        "Service exposed/public-lb": "deny",
        "Service exposed/backend": "allow",
        "Service exposed/debug": "allow",  # from a tab-indented JSON file
        # It admits every source to every pod while LoadBalancer web depends on the default-deny:
        # refused like deleting the default-deny would be.
        "NetworkPolicy shop/allow-all": "deny",
    }
    assert results["NetworkPolicy shop/allow-all"]["rule"] == "protect-default-deny"
    assert results["Service shop/web"]["warnings"] == []
    assert payload["summary"] == {"reviewed": 6, "denied": 2, "warned": 0, "audited": 0, "allowed": 4,
                                  "skipped": 3, "warnings": 0, "errors": 0}  # set warnings: --flux


def test_each_object_is_located_at_the_start_of_its_document(capsys):
    _, payload = run_json(capsys, MANIFESTS / "mixed")
    where = {f"{r['kind']} {r['name']}": (Path(r["file"]).name, r["line"])
             for r in payload["results"] + payload["skipped"]}
    assert where == {
        "Namespace shop": ("01-namespaces.yaml", 4),  # items of a kind: List, unwrapped
        "Namespace exposed": ("01-namespaces.yaml", 7),
        "NetworkPolicy default-deny": ("10-shop.yaml", 1),
        "Service web": ("10-shop.yaml", 7),
        "ConfigMap web-config": ("10-shop.yaml", 14),
        "Service public-lb": ("20-exposed.yaml", 1),
        "Service backend": ("20-exposed.yaml", 10),
        "Service debug": ("30-nodeport.json", 1),
        "NetworkPolicy allow-all": ("40-allow-all.yaml", 1),
    }


def test_other_kinds_are_skipped_in_json_only(capsys):
    _, payload = run_json(capsys, MANIFESTS / "mixed")
    assert {(s["kind"], s["name"]) for s in payload["skipped"]} == {
        ("Namespace", "shop"), ("Namespace", "exposed"), ("ConfigMap", "web-config")}
    config_map = next(s for s in payload["skipped"] if s["kind"] == "ConfigMap")
    assert "does not review ConfigMap" in config_map["reason"]
    for fmt in ("text", "junit", "github"):
        _, out, _ = run(capsys, "--format", fmt, MANIFESTS / "mixed")
        assert "web-config" not in out, fmt


def test_labels_mutation_would_add(capsys):
    _, payload = run_json(capsys, MANIFESTS / "mixed", MANIFESTS / "allowed")
    labels = {name: r["labels"] for name, r in by_name(payload).items()}
    assert labels["NetworkPolicy shop/default-deny"] == {"netguard/policy-type": "default-deny-ingress"}
    assert labels["NetworkPolicy shop/allow-all"] == {"netguard/policy-type": "allow"}
    assert labels["Service exposed/public-lb"] == {"netguard/exposure": "public"}
    assert labels["Service exposed/debug"] == {"netguard/exposure": "node"}
    assert labels["Service exposed/backend"] == {}  # already carries netguard/exposure: cluster


def test_labels_copied_from_a_namespace_of_the_set_satisfy_required_labels(tmp_path, capsys):
    """Validation sees the mutated object, as on the server: the copied label counts."""
    config = write(tmp_path / "netguard.yaml", "labels: {fromNamespace: [team], required: [team]}\n")
    code, payload = run_json(capsys, "--config", config, MANIFESTS / "allowed")
    web = by_name(payload)["Service shop/web"]
    assert code == 0
    assert web["labels"] == {"netguard/exposure": "public", "team": "payments"}
    assert web["decision"] == "allow"


def test_required_labels_denied_without_a_namespace_to_copy_from(tmp_path, capsys):
    config = write(tmp_path / "netguard.yaml", "labels: {fromNamespace: [team], required: [team]}\n")
    code, payload = run_json(capsys, "--config", config, MANIFESTS / "denied")
    [result] = payload["results"]
    assert code == 1
    assert result["rule"].split(",") == [LB_RULE, "required-labels"]
    offered = public_lb_offer(parse_settings("labels: {fromNamespace: [team], required: [team]}\n"))
    assert "lacks the required label(s) team" in offered.notes[-1]
    assert result["message"] == messages.loadbalancer_denied("exposed", "public-lb", "CREATE", rule=LB_RULE,
                                                             allow=offered)  # the first denial
    assert "lacks required label(s) team" in result["reason"]


def test_a_refused_policy_does_not_protect_the_services(tmp_path, capsys):
    """A policy netguard refuses is never persisted, so it cannot be the namespace's default-deny."""
    config = write(tmp_path / "netguard.yaml", "labels: {required: [owner]}\n")
    manifests = write(tmp_path / "set.yaml", """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny, namespace: shop}
        spec: {podSelector: {}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop, labels: {owner: sre}}
        spec: {type: LoadBalancer}
        """)
    code, payload = run_json(capsys, "--config", config, manifests)
    results = by_name(payload)
    assert code == 1
    assert results["NetworkPolicy shop/deny"]["rule"] == "required-labels"
    assert results["Service shop/web"]["rule"] == LB_RULE and not results["Service shop/web"]["allowed"]


def test_exempt_namespace_is_allowed_without_labels(tmp_path, capsys):
    manifests = write(tmp_path / "lb.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: dns, namespace: kube-system}
        spec: {type: LoadBalancer}
        """)
    code, payload = run_json(capsys, manifests)
    [result] = payload["results"]
    assert code == 0
    assert result["reason"] == "namespace kube-system is exempt" and result["labels"] == {}


def test_object_without_namespace_lands_in_default(tmp_path, capsys):
    manifests = write(tmp_path / "lb.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
                                            "spec: {type: LoadBalancer}\n")
    _, payload = run_json(capsys, manifests)
    assert payload["results"][0]["namespace"] == "default"
    assert "namespace default has no default-deny" in payload["results"][0]["message"]


def test_network_policy_of_another_api_group_is_not_reviewed_nor_counted(tmp_path, capsys):
    manifests = write(tmp_path / "set.yaml", """
        apiVersion: crd.projectcalico.org/v1
        kind: NetworkPolicy
        metadata: {name: deny, namespace: shop}
        spec: {selector: all(), types: [Ingress]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {type: LoadBalancer}
        """)
    code, payload = run_json(capsys, manifests)
    assert code == 1
    assert [r["kind"] + " " + r["name"] for r in payload["results"]] == ["Service web"]
    assert payload["skipped"][0]["reason"] == "netguard does not review NetworkPolicy (crd.projectcalico.org/v1)"


# --------------------------------------------------------------------------- unreadable input


def test_malformed_yaml_exits_2_naming_file_and_line_and_evaluates_nothing(capsys):
    code, out, err = run(capsys, MANIFESTS / "malformed")
    assert code == 2
    assert out == ""
    assert f"{MANIFESTS / 'malformed' / 'bad.yaml'} line 3: invalid YAML: mapping values are not allowed here" in err
    assert "fine" not in err  # good.yaml was read, never evaluated nor reported


def test_every_input_problem_is_reported_at_once(tmp_path, capsys):
    write(tmp_path / "a-labels.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: web, labels: {version: 1.0}}
        """)
    write(tmp_path / "b-nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n")
    write(tmp_path / "c-scalar.yaml", "---\njust a string\n")
    write(tmp_path / "d-bad.json", '{\n  "kind": "Service",\n  "apiVersion": "v1",\n}\n')
    code, out, err = run(capsys, tmp_path, tmp_path / "missing.yaml", MANIFESTS / "denied")
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert f"netguard check: {tmp_path / 'missing.yaml'}: no such file or directory" in lines
    assert f"netguard check: {tmp_path / 'd-bad.json'} line 4: invalid JSON: " \
           "Expecting property name enclosed in double quotes" in lines
    assert f"netguard check: {tmp_path / 'c-scalar.yaml'} line 2: not a Kubernetes object (got a string)" in lines
    assert f"netguard check: {tmp_path / 'b-nokind.yaml'} line 1: object has no kind" in lines
    assert f"netguard check: {tmp_path / 'a-labels.yaml'} line 1: Service default/web: " \
           "metadata.labels['version'] must be a string" in lines
    assert len(lines) == 5


def test_dates_stay_strings_as_with_kubectl(tmp_path, capsys):
    manifests = write(tmp_path / "svc.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop, annotations: {released: 2024-01-01}}
        spec: {type: ClusterIP}
        """)
    code, payload = run_json(capsys, manifests)
    assert code == 0 and payload["results"][0]["decision"] == "allow"


def test_hidden_folders_are_not_read(tmp_path, capsys):
    write(tmp_path / ".github" / "workflows" / "ci.yml", "on: push\njobs: {}\n")
    write(tmp_path / "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n")
    code, payload = run_json(capsys, tmp_path)
    assert code == 0 and len(payload["results"]) == 1


@pytest.mark.parametrize("config, expected", [
    pytest.param("rules:\n  nope: {}\n", "line 2: rules.nope: unknown key", id="unknown-rule"),
    pytest.param("failureMode: sometimes\n", "line 1: failureMode: must be one of closed, open", id="bad-value"),
])
def test_bad_config_exits_2(tmp_path, capsys, config, expected):
    path = write(tmp_path / "netguard.yaml", config)
    code, out, err = run(capsys, "--config", path, MANIFESTS / "allowed")
    assert code == 2 and out == ""
    assert f"netguard check: config: {path} {expected}" in err


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("args, expected", [
    pytest.param(["allowed"], 0, id="allowed"),
    pytest.param(["denied"], 1, id="denied"),
    pytest.param(["mixed"], 1, id="mixed"),
    pytest.param(["malformed"], 2, id="malformed"),
    pytest.param(["allowed", "denied"], 1, id="allowed-and-denied"),
    pytest.param(["staged/apps"], 1, id="service-without-its-policy-stage"),
    pytest.param(["staged"], 0, id="both-stages"),
])
def test_exit_codes(capsys, args, expected):
    code, _, _ = run(capsys, *(MANIFESTS / a for a in args))
    assert code == expected


@pytest.mark.parametrize("action, decision", [
    pytest.param("warn", "warn", id="warn"),
    pytest.param("audit", "audit", id="audit"),
])
def test_a_rule_that_does_not_deny_exits_0(tmp_path, capsys, action, decision):
    config = write(tmp_path / "netguard.yaml", f"rules:\n  {LB_RULE}: {{action: {action}}}\n")
    code, payload = run_json(capsys, "--config", config, MANIFESTS / "denied")
    assert code == 0
    assert payload["results"][0]["decision"] == decision and payload["results"][0]["allowed"]


# --------------------------------------------------------------------------- stdin


def run_stdin(text: str, *argv: str) -> subprocess.CompletedProcess:
    code = f"from webhook.cli.check import run_check; raise SystemExit(run_check({list(argv)!r}))"
    return subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent.parent, timeout=60)


def test_stdin_yaml():
    result = run_stdin((MANIFESTS / "denied" / "lb.yaml").read_text(), "--format", "json", "-")
    payload = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr
    assert payload["results"][0]["file"] == "<stdin>" and payload["results"][0]["decision"] == "deny"


def test_stdin_json_list_with_a_file():
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "deny", "namespace": "exposed"}, "spec": {"podSelector": {}}}]}
    result = run_stdin(json.dumps(listing, indent=1), "--format", "json", "-",
                       str(MANIFESTS / "denied"))
    payload = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    # Admitted; warned only because no policy opens the pods to outside traffic.
    assert [(r["file"], r["line"], r["decision"]) for r in payload["results"]] == [
        ("<stdin>", 5, "allow"), (str(MANIFESTS / "denied" / "lb.yaml"), 1, "warn")]
    assert "no NetworkPolicy admits outside traffic" in payload["results"][1]["warnings"][0]


def test_stdin_malformed_exits_2():
    result = run_stdin("kind: Service\n  bad: indent\n", "-")
    assert result.returncode == 2 and result.stdout == ""
    assert "<stdin> line 2: invalid YAML" in result.stderr


# --------------------------------------------------------------------------- formats


def test_text_format(capsys):
    code, out, _ = run(capsys, MANIFESTS / "mixed")
    blocks = out.split("\n\n")
    denied = next(b for b in blocks if "exposed/public-lb" in b)
    assert code == 1
    assert denied.startswith("DENY  Service exposed/public-lb")
    assert "  rule: loadbalancer-requires-default-deny" in denied
    # The denial is shown whole, every line indented, its YAML included.
    message = messages.loadbalancer_denied("exposed", "public-lb", "CREATE", rule=LB_RULE)
    assert [f"    {line}".rstrip() for line in message.splitlines()] == \
        [line for line in denied.splitlines() if line.startswith("    ")]
    assert "  labels added: netguard/exposure=public" in denied
    guard = next(b for b in blocks if "shop/allow-all" in b)
    assert guard.startswith("DENY  NetworkPolicy shop/allow-all") and "  rule: protect-default-deny" in guard
    assert out.rstrip().splitlines()[-1] == ("netguard check: 6 object(s) reviewed: 2 denied, 0 warned, "
                                             "4 allowed; 3 not reviewed")


def test_junit_format(capsys):
    code, out, _ = run(capsys, "--format", "junit", "--flux", MANIFESTS / "mixed")
    root = ET.fromstring(out.encode())
    [suite] = root.iter("testsuite")
    cases = suite.findall("testcase")
    failures = [(c.get("name"), c.find("failure")) for c in cases if c.find("failure") is not None]
    assert code == 1
    assert (suite.get("tests"), suite.get("failures")) == ("6", "2") and len(cases) == 6
    [(name, failure), (guard_name, guard)] = failures
    message = messages.loadbalancer_denied("exposed", "public-lb", "CREATE", rule=LB_RULE, from_flux=True)
    assert name == "Service exposed/public-lb"
    # File and line in the message: the common JUnit schema has no attributes for them.
    assert failure.get("message") == (f"{MANIFESTS / 'mixed' / '20-exposed.yaml'} line 1: Service "
                                      "exposed/public-lb of type LoadBalancer was refused: namespace exposed "
                                      "has no default-deny ingress NetworkPolicy, so outside traffic would "
                                      "reach its pods.")
    assert failure.text == message and failure.get("type") == LB_RULE
    assert guard_name == "NetworkPolicy shop/allow-all" and guard.get("type") == "protect-default-deny"
    assert guard.get("message").endswith("40-allow-all.yaml line 1: NetworkPolicy shop/allow-all cannot be "
                                         "created: it admits every IPv4 and IPv6 address to every pod on every "
                                         "port, cancelling the default-deny ingress that 1 "
                                         "LoadBalancer(s) depend on.")
    web = next(c for c in cases if c.get("name") == "Service shop/web")
    assert "Flux dry-runs a whole stage" in web.find("system-out").text
    assert web.find("system-out").text.startswith(f"{MANIFESTS / 'mixed' / '10-shop.yaml'} line 7: warning: ")
    assert web.get("classname").endswith("10-shop.yaml") and web.get("file") is None


def test_junit_format_all_passing(capsys):
    code, out, _ = run(capsys, "--format", "junit", MANIFESTS / "staged")
    suite = next(ET.fromstring(out.encode()).iter("testsuite"))
    assert code == 0
    assert (suite.get("tests"), suite.get("failures")) == ("2", "0")
    assert not list(suite.iter("failure"))


ANNOTATION = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),title=([^:]+)::(.*)$")


def test_github_format(capsys):
    code, out, _ = run(capsys, "--format", "github", "--flux", MANIFESTS / "mixed")
    commands = [ANNOTATION.match(line) for line in out.splitlines() if line.startswith("::")]
    assert code == 1
    assert all(commands), out
    parsed = [(m[1], Path(m[2]).name, int(m[3]), m[4], m[5]) for m in commands]
    error, guard = [p for p in parsed if p[0] == "error"]
    assert guard[1:4] == ("40-allow-all.yaml", 1, "netguard denied NetworkPolicy shop/allow-all")
    assert error[1:4] == ("20-exposed.yaml", 1, "netguard denied Service exposed/public-lb")
    message = messages.loadbalancer_denied("exposed", "public-lb", "CREATE", rule=LB_RULE, from_flux=True)
    assert error[4] == message.replace("\n", "%0A")
    warnings = [(p[1], p[2], p[3]) for p in parsed if p[0] == "warning"]
    assert warnings == [("10-shop.yaml", 7, "netguard Flux dry-run")]
    assert out.rstrip().splitlines()[-1].startswith("netguard check: 6 object(s) reviewed")


def test_github_format_escapes_properties(tmp_path, capsys):
    manifests = write(tmp_path / "a,b:c%.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
                                                "spec: {type: LoadBalancer}\n")
    _, out, _ = run(capsys, "--format", "github", manifests)
    assert f"::error file={str(manifests)[:-len('a,b:c%.yaml')]}a%2Cb%3Ac%25.yaml,line=1," in out


def test_first_line():
    assert first_line("Refused: 10.0.0.0/8 is open. Fix it.\nmore") == "Refused: 10.0.0.0/8 is open. Fix it."
    assert first_line("\n  one line  ") == "one line" and first_line("") == ""


# --------------------------------------------------------------------------- Flux: one set, one dry-run


def test_flux_warning_when_service_and_its_only_default_deny_share_a_set(capsys):
    code, payload = run_json(capsys, "--flux", MANIFESTS / "allowed")
    [warning] = payload["warnings"]
    assert code == 0  # a warning does not change the exit code (unless --warn-exit-code)
    assert (warning["kind"], warning["namespace"], warning["name"]) == ("Service", "shop", "web")
    assert warning["file"].endswith("service.yaml") and warning["line"] == 1
    assert warning["message"] == ("Service shop/web: denied at Flux's dry-run: its namespace's only "
                                  "default-deny is in the same set")
    text = warning["detail"]
    assert "Service shop/web" in text and "NetworkPolicy shop/default-deny-ingress" in text
    assert "dependsOn" in text and "rules.loadbalancer-requires-default-deny.dryRun: warn" in text


def test_no_flux_warning_without_flux(capsys):
    code, payload = run_json(capsys, MANIFESTS / "allowed")
    assert code == 0 and payload["warnings"] == []


def test_flux_warning_when_both_stages_are_given_as_one_set(capsys):
    _, payload = run_json(capsys, "--flux", MANIFESTS / "staged" / "policies", MANIFESTS / "staged" / "apps")
    assert [w["name"] for w in payload["warnings"]] == ["web"]


def test_no_flux_warning_when_the_policy_is_already_in_the_cluster(tmp_path, capsys):
    with FakeApi([namespace("shop")], [policy("shop", "default-deny", DENY_INGRESS)]) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        code, payload = run_json(capsys, "--flux", "--cluster", "--kubeconfig", kubeconfig,
                                 MANIFESTS / "staged" / "apps")
    assert code == 0
    assert payload["warnings"] == []
    assert by_name(payload)["Service shop/web"]["decision"] == "allow"


def test_no_flux_warning_when_the_policy_is_in_another_set(capsys):
    code, payload = run_json(capsys, "--flux", MANIFESTS / "staged" / "apps")
    assert code == 1 and payload["warnings"] == []  # the Service is simply denied


def test_no_flux_warning_when_dry_run_only_warns(tmp_path, capsys):
    config = write(tmp_path / "netguard.yaml", f"rules:\n  {LB_RULE}: {{dryRun: warn}}\n")
    code, payload = run_json(capsys, "--flux", "--config", config, MANIFESTS / "allowed")
    assert code == 0 and payload["warnings"] == []


def test_flux_warning_names_every_default_deny_of_the_set(tmp_path, capsys):
    second = write(tmp_path / "second.yaml", """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: shop}
        spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
        """)
    _, payload = run_json(capsys, "--flux", MANIFESTS / "allowed", second)
    [warning] = payload["warnings"]
    assert "NetworkPolicies shop/default-deny-ingress" in warning["detail"]
    assert "shop/deny-all" in warning["detail"] and "the only default-deny ingress policies" in warning["detail"]


# --------------------------------------------------------------------------- --cluster


def test_cluster_policy_admits_a_service_of_the_set(tmp_path, capsys):
    with FakeApi([namespace("shop", team="payments")], [policy("shop", "default-deny", DENY_INGRESS)]) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        config = write(tmp_path / "netguard.yaml", "labels: {fromNamespace: [team]}\n")
        code, payload = run_json(capsys, "--cluster", "--kubeconfig", kubeconfig, "--config", config,
                                 MANIFESTS / "staged" / "apps")
    web = by_name(payload)["Service shop/web"]
    assert code == 0
    assert "default-deny" in web["reason"]
    assert web["labels"] == {"netguard/exposure": "public", "team": "payments"}  # the cluster's namespace
    # The three lists, and the discovery of the cluster-wide and CNI policy groups (none served).
    assert {path for path, _, _ in api.requests} == set(FakeApi.PATHS) | {
        "/apis/cilium.io", "/apis/policy.networking.k8s.io", "/apis/projectcalico.org"}


def test_manifest_overrides_the_cluster_object_of_the_same_name(tmp_path, capsys):
    manifests = write(tmp_path / "set.yaml", """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny, namespace: shop}
        spec:
          podSelector: {}
          ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {type: LoadBalancer}
        """)
    with FakeApi([namespace("shop")], [policy("shop", "default-deny", DENY_INGRESS)]) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        code, payload = run_json(capsys, "--cluster", "--kubeconfig", kubeconfig, manifests)
    assert code == 1
    assert by_name(payload)["Service shop/web"]["decision"] == "deny"


def test_cluster_unreachable_exits_2(tmp_path, capsys):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed_port()}")
    code, out, err = run(capsys, "--cluster", "--kubeconfig", kubeconfig, MANIFESTS / "allowed")
    assert code == 2 and out == ""
    assert "netguard check: --cluster: cannot list the cluster: cannot reach the API server" in err


def test_kubeconfig_without_cluster_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run_check(["--kubeconfig", "k", str(MANIFESTS / "allowed")])
    assert exc.value.code == 2
    assert "--kubeconfig is only used with --cluster" in capsys.readouterr().err


# --------------------------------------------------------------------------- same verdicts as the server


def recorded(stage: str) -> list[str]:
    """Recorded Service requests of `stage` that carry an object (a DELETE has none to check)."""
    names = []
    for path in sorted(REVIEWS.glob(f"*-{stage}-Service-*.json")):
        if json.loads(path.read_text())["body"]["request"].get("object") is not None:
            names.append(path.name)
    return names


@pytest.mark.parametrize("with_policies", [pytest.param(True, id="shop-policies"),
                                           pytest.param(False, id="no-policies")])
@pytest.mark.parametrize("fixture", [pytest.param(n, id=n.removesuffix(".json")) for n in recorded("validate")])
def test_verdict_equals_the_servers(tmp_path, capsys, fixture, with_policies):
    body = json.loads((REVIEWS / fixture).read_text())["body"]
    req = parse_review(body)
    scenario = read_objects(SCENARIO)
    server = decide.validate(req, view_of(scenario if with_policies else [], req.namespace),
                             default_settings())

    inputs = [write(tmp_path / "object.json", json.dumps(body["request"]["object"]))]
    if with_policies:
        policies = [o for o in scenario if o["kind"] == "NetworkPolicy"]
        inputs.append(write(tmp_path / "policies.json", json.dumps({"apiVersion": "v1", "kind": "List",
                                                                    "items": policies})))
    _, payload = run_json(capsys, *inputs)
    mine = by_name(payload)[f"Service {req.namespace}/{req.name}"]
    assert (mine["decision"], mine["allowed"]) == (server.verdict, server.allowed)
    if req.operation == "CREATE":
        assert mine["message"] == server.message
        assert mine["warnings"] == list(server.warnings)
    assert server.allowed is (with_policies or "LoadBalancer" != body["request"]["object"]["spec"]["type"])


@pytest.mark.parametrize("fixture", [pytest.param(n, id=n.removesuffix(".json")) for n in recorded("mutate")
                                     if "-CREATE-" in n])
def test_labels_equal_the_servers_patch(tmp_path, capsys, fixture):
    body = json.loads((REVIEWS / fixture).read_text())["body"]
    req = parse_review(body)
    server = decide.mutate(req, view_of(read_objects(SCENARIO), req.namespace), default_settings())
    patched = jsonpatch.apply_patch(body["request"]["object"], list(server.patch))

    _, payload = run_json(capsys, write(tmp_path / "object.json", json.dumps(body["request"]["object"])))
    labels = by_name(payload)[f"Service {req.namespace}/{req.name}"]["labels"]
    assert labels == dict(server.patched_labels)
    assert {k: patched["metadata"]["labels"][k] for k in labels} == labels and labels


# --------------------------------------------------------------------------- the patch applier


@pytest.mark.parametrize("obj, ops", [
    pytest.param({"metadata": {"name": "a", "labels": {"app": "web"}}},
                 [{"op": "add", "path": "/metadata/labels/netguard~1exposure", "value": "public"}],
                 id="add-key-with-slash"),
    pytest.param({"metadata": {"name": "a"}},
                 [{"op": "add", "path": "/metadata/labels", "value": {"netguard/exposure": "node"}}],
                 id="add-whole-labels-map"),
    pytest.param({"kind": "Service"},
                 [{"op": "add", "path": "/metadata", "value": {"labels": {"a": "b"}}}], id="add-metadata"),
    pytest.param({"metadata": {"labels": {"netguard/exposure": "public", "x~y": "1"}}},
                 [{"op": "replace", "path": "/metadata/labels/netguard~1exposure", "value": "private"},
                  {"op": "replace", "path": "/metadata/labels/x~0y", "value": "2"}], id="replace-with-tilde"),
])
def test_apply_patch_agrees_with_jsonpatch(obj, ops):
    original = json.loads(json.dumps(obj))
    assert apply_patch(obj, ops) == jsonpatch.apply_patch(obj, ops)
    assert obj == original  # the input is not changed


@pytest.mark.parametrize("ops", [
    pytest.param([{"op": "remove", "path": "/metadata/labels/a"}], id="unsupported-op"),
    pytest.param([{"op": "replace", "path": "/metadata/labels/missing", "value": "x"}], id="replace-missing"),
    pytest.param([{"op": "add", "path": "/spec/ports/0", "value": 1}], id="through-non-object"),
])
def test_apply_patch_refuses_what_it_cannot_apply(ops):
    with pytest.raises(ValueError):
        apply_patch({"metadata": {"labels": {"a": "b"}}, "spec": {"ports": [1]}}, ops)


def test_a_typed_list_is_reviewed_item_by_item(tmp_path, capsys):
    # kubectl get services -o yaml writes a ServiceList; its LoadBalancer must be denied here as
    # the server would deny it (it was skipped, and CI passed).
    path = tmp_path / "services.yaml"
    path.write_text("apiVersion: v1\nkind: ServiceList\nitems:\n"
                    "- metadata: {name: edge, namespace: open}\n  spec: {type: LoadBalancer, ports: [{port: 80}]}\n")
    code, payload = run_json(capsys, path)
    assert code == 1
    assert [(r["kind"], r["name"], r["decision"]) for r in payload["results"]] == [("Service", "edge", "deny")]
    assert payload["skipped"] == []
