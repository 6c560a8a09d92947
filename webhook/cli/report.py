"""Output of `netguard check` and `netguard audit`: text for people, JSON for scripts, JUnit XML
for CI test reports, GitHub workflow commands for annotations on the pull request, SARIF for
GitHub code scanning (webhook/cli/sarif.py).

Pure: each function takes a report (or the problems that stopped one) and returns the text to
print. A run that cannot read its inputs still gets a whole report in its format: an error test
case, an error annotation, a SARIF notification, each with the file and line.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from webhook.cli import sarif
from webhook.core.messages import first_line

if TYPE_CHECKING:
    from webhook.cli.results import CheckReport, Result
    from webhook.core.violations import Violation
    from webhook.inventory.objects import Problem

INDENT = "    "
SUITE = "netguard check"


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _summary(report: CheckReport) -> str:
    counts = [f"{report.count('deny')} denied", f"{report.count('warn')} warned"]
    if report.count("audit"):
        counts.append(f"{report.count('audit')} audited")
    counts.append(f"{report.count('allow')} allowed")
    text = f"netguard check: {len(report.results)} object(s) reviewed: {', '.join(counts)}"
    if report.skipped:
        text += f"; {len(report.skipped)} not reviewed"
    if report.warnings:
        text += f"; {len(report.warnings)} warning(s) about the set"
    return text


def _where(source: str, line: int) -> str:
    return f"{source} line {line}" if line else source


# --------------------------------------------------------------------------- check


def check_text(report: CheckReport) -> str:
    blocks = []
    for r in report.results:
        lines = [f"{r.decision.upper():<6}{r.kind} {r.namespace}/{r.name}  ({r.source} line {r.line})"]
        if r.rule:
            lines.append(f"  rule: {r.rule}")
        if r.allowed:
            lines.append(f"  reason: {r.reason}")
        else:
            lines.append("  message:")
            lines.extend(f"{INDENT}{line}".rstrip() for line in r.message.splitlines())
        lines.extend(f"  warning: {w}" for w in r.warnings)
        if r.labels:
            lines.append(f"  labels added: {_labels(r.labels)}")
        blocks.append("\n".join(lines))
    blocks.extend(f"warning: {w.message}" + (f"\n  {w.detail}" if w.detail else "") for w in report.warnings)
    blocks.append(_summary(report))
    return "\n\n".join(blocks) + "\n"


def _result_dict(r: Result) -> dict[str, Any]:
    return {"kind": r.kind, "namespace": r.namespace, "name": r.name, "file": r.source,
            "line": r.line, "decision": r.decision, "allowed": r.allowed, "rule": r.rule,
            "reason": r.reason, "message": r.message, "warnings": list(r.warnings),
            "labels": dict(r.labels)}


def check_json(report: CheckReport) -> str:
    payload = {
        "results": [_result_dict(r) for r in report.results],
        "skipped": [{"kind": s.kind, "apiVersion": s.api_version, "namespace": s.namespace,
                     "name": s.name, "file": s.source, "line": s.line, "reason": s.reason}
                    for s in report.skipped],
        "warnings": [{"message": w.message, "detail": w.detail, "kind": w.kind, "namespace": w.namespace,
                      "name": w.name, "file": w.source, "line": w.line} for w in report.warnings],
        "errors": [],
        "summary": {"reviewed": len(report.results), "denied": report.count("deny"),
                    "warned": report.count("warn"), "audited": report.count("audit"),
                    "allowed": report.count("allow"), "skipped": len(report.skipped),
                    "warnings": len(report.warnings), "errors": 0},
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _junit(cases: int, failures: int, errors: int) -> tuple[ET.Element, ET.Element]:
    """<testsuites> with its one <testsuite>, in the attributes the common JUnit schema knows
    (Jenkins' junit-10.xsd: tests/fixtures/junit-10.xsd), nothing of our own."""
    counts = {"tests": str(cases), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", name=SUITE, **counts)
    suite = ET.SubElement(root, "testsuite", name=SUITE, **counts, skipped="0", time="0")
    return root, suite


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def check_junit(report: CheckReport) -> str:
    """One testcase per reviewed object, its classname the file; a denial is a failure whose
    message is the file, line and first line of the denial and whose text is the whole denial;
    warnings go to system-out, each with its file and line."""
    root, suite = _junit(len(report.results), len(report.denied), 0)
    set_warnings: dict[tuple[str, str, str, str, int], list[str]] = {}
    for w in report.warnings:
        set_warnings.setdefault((w.kind, w.namespace, w.name, w.source, w.line), []).append(
            f"{w.message}\n{w.detail}" if w.detail else w.message)
    for r in report.results:
        where = _where(r.source, r.line)
        case = ET.SubElement(suite, "testcase", name=f"{r.kind} {r.namespace}/{r.name}",
                             classname=r.source, time="0")
        if not r.allowed:
            failure = ET.SubElement(case, "failure", message=f"{where}: {first_line(r.message)}",
                                    type=r.rule)
            failure.text = r.message
        output = [f"{where}: warning: {w}" for w in r.warnings]
        output += [f"{where}: warning: {m}" for m in set_warnings.get((r.kind, r.namespace, r.name, r.source, r.line), [])]
        if output:
            ET.SubElement(case, "system-out").text = "\n".join(output)
    return _xml(root)


def _escape_data(text: str) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts (escapeData)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, source: str, line: int, title: str, message: str) -> str:
    # An annotation needs a file of the repository: none for stdin or the command line. A
    # problem with a whole file (line 0) is shown on its first line.
    props = [] if not source or source.startswith("<") else \
        [f"file={_escape_property(source)}", f"line={max(line, 1)}"]
    props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def check_github(report: CheckReport) -> str:
    """GitHub Actions workflow commands: an error annotation per denial, a warning per warning,
    each on the line where the object's document starts."""
    lines = []
    for r in report.results:
        what = f"{r.kind} {r.namespace}/{r.name}"
        if not r.allowed:
            lines.append(_command("error", r.source, r.line, f"netguard denied {what}", r.message))
        lines.extend(_command("warning", r.source, r.line, f"netguard warning for {what}", w)
                     for w in r.warnings)
    lines.extend(_command("warning", w.source, w.line, "netguard Flux dry-run",
                          f"{w.message}\n{w.detail}" if w.detail else w.message)
                 for w in report.warnings)
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


RENDERERS = {"text": check_text, "json": check_json, "junit": check_junit, "github": check_github,
             "sarif": sarif.check_sarif}


def render_check(report: CheckReport, fmt: str) -> str:
    return RENDERERS[fmt](report)


# --------------------------------------------------------------------------- errors


def errors_json(problems: Sequence[Problem]) -> str:
    payload = {"results": [], "skipped": [], "warnings": [],
               "errors": [{"file": p.source, "line": p.line, "message": p.text} for p in problems],
               "summary": {"reviewed": 0, "denied": 0, "warned": 0, "audited": 0, "allowed": 0,
                           "skipped": 0, "warnings": 0, "errors": len(problems)}}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def errors_junit(problems: Sequence[Problem]) -> str:
    """One error test case per problem: CI shows the run as broken, not as passed with 0 tests."""
    root, suite = _junit(len(problems), 0, len(problems))
    for p in problems:
        case = ET.SubElement(suite, "testcase", name=_where(p.source, p.line) if p.source else "inputs",
                             classname=p.source or SUITE, time="0")
        ET.SubElement(case, "error", message=str(p), type="input").text = p.text
    return _xml(root)


def errors_github(problems: Sequence[Problem]) -> str:
    lines = [_command("error", p.source, p.line, "netguard check: cannot check", p.text if p.source else str(p))
             for p in problems]
    lines.append(f"netguard check: {len(problems)} problem(s) with the inputs; nothing was checked")
    return "\n".join(lines) + "\n"


ERROR_RENDERERS = {"json": errors_json, "junit": errors_junit, "github": errors_github,
                   "sarif": sarif.errors_sarif}


def render_errors(problems: Sequence[Problem], fmt: str) -> str:
    """The report of a run stopped by `problems` (text: nothing, they go to stderr)."""
    return ERROR_RENDERERS[fmt](problems) if fmt in ERROR_RENDERERS else ""


# --------------------------------------------------------------------------- audit


def audit_text(violations: Sequence[Violation], namespaces: int) -> str:
    lines = [f"{v.rule}: {v.message}" for v in violations]  # each message names its object
    touched = len({v.namespace for v in violations})
    lines.append(f"netguard audit: {len(violations)} violation(s) in {touched} namespace(s); "
                 f"{namespaces} namespace(s) scanned (exempt ones skipped)")
    return "\n".join(lines) + "\n"


def audit_json(violations: Iterable[Violation], namespaces: int) -> str:
    violations = list(violations)
    payload = {"violations": [asdict(v) for v in violations],
               "summary": {"violations": len(violations), "namespaces": namespaces}}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
