"""manifests/monitoring/prometheusrule.yaml: `promtool check rules` and `promtool test rules` on the
PrometheusRule's own `spec`, so the shipped rules and the tested ones cannot drift apart.

promtool comes from Debian's `prometheus` package (the README's test command installs it). These
tests fail, never skip, without it: CI must not pass because the alerts went unchecked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring import alerts, rule_spec

ROOT = Path(__file__).resolve().parents[2]
UNIT_TESTS = Path(__file__).parent / "promtool" / "netguard_test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, ("promtool is not on PATH: install Debian's prometheus package "
                  "(apt-get install prometheus), as the README's test command does")
    return path


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rules_beside_the_unit_tests(folder: Path, spec: dict) -> Path:
    """rules.yaml (the spec) and a copy of the unit tests, which name it, in `folder`."""
    (folder / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(UNIT_TESTS, folder / UNIT_TESTS.name)
    return folder / UNIT_TESTS.name


def test_promtool_check_rules(promtool, tmp_path):
    rules_beside_the_unit_tests(tmp_path, rule_spec())
    result = run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in rule_spec()["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_test_rules(promtool, tmp_path):
    rules_beside_the_unit_tests(tmp_path, rule_spec())
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not():
    cases = [case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    names = {alert["alert"] for alert in alerts()}
    assert {c["alertname"] for c in cases if c.get("exp_alerts")} == names
    assert {c["alertname"] for c in cases if not c.get("exp_alerts")} == names


def test_the_unit_tests_catch_an_alert_that_never_fires(promtool, tmp_path):
    spec = rule_spec()
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule["expr"] = "vector(1) > 2"  # never true
    rules_beside_the_unit_tests(tmp_path, spec)
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+),", result.stdout + result.stderr))
    assert failed == {alert["alert"] for alert in alerts()}


def test_each_alert_says_what_to_do_and_has_a_runbook_section():
    runbook = OPERATIONS.read_text()
    headings = set(re.findall(r"^#+ +`?(\w+)`?\s*$", runbook, flags=re.MULTILINE))
    for alert in alerts():
        name, annotations = alert["alert"], alert["annotations"]
        assert set(annotations) == {"summary", "description"}, name
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert f"docs/operations.md, {name}" in annotations["description"], name
        assert name in headings, f"docs/operations.md has no section {name}"
