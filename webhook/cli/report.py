"""Output of `netguard check` and `netguard audit`: text for people, JSON for scripts, JUnit XML
for CI test reports, GitHub workflow commands for annotations on the pull request.

Pure: each function takes a report and returns the text to print.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from webhook.cli.results import CheckReport, Result
    from webhook.core.violations import Violation

INDENT = "    "
_FIRST_SENTENCE = re.compile(r"(.+?[.!?])(?=\s|$)", re.DOTALL)


def first_sentence(message: str) -> str:
    """The part of a denial before its first full stop: what was refused and why (docs/design.md, Messages)."""
    match = _FIRST_SENTENCE.match(message.strip())
    return " ".join((match.group(1) if match else message.strip().splitlines()[0]).split())


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
    blocks.extend(f"warning: {w.message}" for w in report.warnings)
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
        "warnings": [{"message": w.message, "kind": w.kind, "namespace": w.namespace,
                      "name": w.name, "file": w.source, "line": w.line} for w in report.warnings],
        "summary": {"reviewed": len(report.results), "denied": report.count("deny"),
                    "warned": report.count("warn"), "audited": report.count("audit"),
                    "allowed": report.count("allow"), "skipped": len(report.skipped),
                    "warnings": len(report.warnings)},
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def check_junit(report: CheckReport) -> str:
    """One testsuite, one testcase per reviewed object; a denial is a failure whose message
    is the first sentence and whose text is the whole denial; warnings go to system-out."""
    failures = len(report.denied)
    root = ET.Element("testsuites", name="netguard check", tests=str(len(report.results)),
                      failures=str(failures), errors="0")
    suite = ET.SubElement(root, "testsuite", name="netguard check", tests=str(len(report.results)),
                          failures=str(failures), errors="0", skipped="0", time="0")
    set_warnings: dict[tuple[str, str, str, str, int], list[str]] = {}
    for w in report.warnings:
        set_warnings.setdefault((w.kind, w.namespace, w.name, w.source, w.line), []).append(w.message)
    for r in report.results:
        case = ET.SubElement(suite, "testcase", name=f"{r.kind} {r.namespace}/{r.name}",
                             classname=r.source, file=r.source, line=str(r.line), time="0")
        if not r.allowed:
            failure = ET.SubElement(case, "failure", message=first_sentence(r.message), type=r.rule)
            failure.text = r.message
        output = [f"warning: {w}" for w in r.warnings]
        output += [f"warning: {m}" for m in set_warnings.get((r.kind, r.namespace, r.name, r.source, r.line), [])]
        if output:
            ET.SubElement(case, "system-out").text = "\n".join(output)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _escape_data(text: str) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts (escapeData)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, source: str, line: int, title: str, message: str) -> str:
    props = [] if source.startswith("<") else [f"file={_escape_property(source)}", f"line={line}"]
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
    lines.extend(_command("warning", w.source, w.line, "netguard Flux dry-run", w.message)
                 for w in report.warnings)
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


RENDERERS = {"text": check_text, "json": check_json, "junit": check_junit, "github": check_github}


def render_check(report: CheckReport, fmt: str) -> str:
    return RENDERERS[fmt](report)


# --------------------------------------------------------------------------- audit


def audit_text(violations: Sequence[Violation], namespaces: int) -> str:
    lines = [f"{v.rule}: {v.kind} {v.namespace}/{v.name}: {v.message}" for v in violations]
    touched = len({v.namespace for v in violations})
    lines.append(f"netguard audit: {len(violations)} violation(s) in {touched} namespace(s); "
                 f"{namespaces} namespace(s) scanned (exempt ones skipped)")
    return "\n".join(lines) + "\n"


def audit_json(violations: Iterable[Violation], namespaces: int) -> str:
    violations = list(violations)
    payload = {"violations": [asdict(v) for v in violations],
               "summary": {"violations": len(violations), "namespaces": namespaces}}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
