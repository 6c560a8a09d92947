"""`netguard check --format sarif`: SARIF 2.1.0 for GitHub code scanning.

One run of the tool `netguard`, its rules the registered rules (webhook/core/registry.py), one
result per denial (level error) and per warning (level warning), each located at the file and
line where the object's document starts (region.startLine). Inputs that cannot be read give a
run without results whose invocation failed, with one notification per problem, located too.

Spec: https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html; what GitHub reads of it:
https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning
The tests validate the output against the OASIS schema (tests/cli/test_ci_formats.py).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import quote

from webhook.core.messages import closing
from webhook.core.registry import RULES
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.serve.version import version

if TYPE_CHECKING:
    from webhook.cli.results import CheckReport, Result
    from webhook.inventory.objects import Problem

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
RULE_INDEX = {rule.name: index for index, rule in enumerate(RULES)}


def _uri(source: str) -> str:
    """A file as a URI reference: relative paths stay relative to the checkout (what code
    scanning expects), absolute ones become file: URIs."""
    path = source.replace("\\", "/")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(source).is_absolute():
        return "file://" + quote(path if path.startswith("/") else "/" + path)
    return quote(path)


def _location(source: str, line: int) -> list[dict[str, Any]]:
    if not source or source.startswith("<"):  # stdin, the command line: no file to point at
        return []
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(source)}}
    if line > 0:
        physical["region"] = {"startLine": line}
    return [{"physicalLocation": physical}]


def _driver() -> dict[str, Any]:
    return {
        "name": "netguard",
        "version": version(),
        "rules": [{"id": rule.name, "name": rule.name,
                   "shortDescription": {"text": rule.summary},
                   "defaultConfiguration": {"level": "error"}} for rule in RULES],
    }


def _deciding_rule(r: Result) -> str:
    """The rule whose denial this is: every denial's last line names it (messages.closing)."""
    names = r.rule.split(",")
    last = r.message.rstrip().rsplit("\n", 1)[-1]
    return next((n for n in names if closing(n) == last), names[0])


def _result(rule: str, level: str, text: str, source: str, line: int) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": rule, "level": level, "message": {"text": text},
                              "locations": _location(source, line)}
    if rule in RULE_INDEX:
        result["ruleIndex"] = RULE_INDEX[rule]
    return result


def _results(r: Result) -> list[dict[str, Any]]:
    found = []
    if not r.allowed:
        found.append(_result(_deciding_rule(r), "error", r.message, r.source, r.line))
    found.extend(_result(rule, "warning", w, r.source, r.line) for w, rule in zip(r.warnings, r.warned_by))
    return found


def _log(results: list[dict[str, Any]], invocation: dict[str, Any]) -> str:
    log = {"$schema": SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": _driver()}, "invocations": [invocation], "results": results}]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def check_sarif(report: CheckReport) -> str:
    results = [found for r in report.results for found in _results(r)]
    results += [_result(LOADBALANCER_RULE, "warning", f"{w.message}\n{w.detail}" if w.detail else w.message,
                        w.source, w.line) for w in report.warnings]
    return _log(results, {"executionSuccessful": True})


def errors_sarif(problems: Sequence[Problem]) -> str:
    """Nothing was checked: the invocation failed, one error notification per problem."""
    notifications = []
    for p in problems:
        notification: dict[str, Any] = {"level": "error", "message": {"text": p.text if p.source else str(p)}}
        if _location(p.source, p.line):
            notification["locations"] = _location(p.source, p.line)
        notifications.append(notification)
    return _log([], {"executionSuccessful": False, "exitCode": 2,
                     "toolExecutionNotifications": notifications})

