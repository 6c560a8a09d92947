"""What manifests/monitoring/ ships, read for the tests: the PrometheusRule's rule groups, its
alerts, the dashboard's queries, and the metric names a PromQL expression reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

MONITORING = Path(__file__).resolve().parent.parent / "manifests" / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "netguard-dashboard.json"
# PromQL words that are no metric name.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "Inf", "NaN"}


def rule_spec() -> dict[str, Any]:
    """The PrometheusRule's `spec`: exactly what promtool's rule files hold (`groups`)."""
    [rule] = [d for d in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if d]
    assert rule["kind"] == "PrometheusRule", PROMETHEUS_RULE
    return rule["spec"]


def alerts() -> list[dict[str, Any]]:
    return [r for group in rule_spec()["groups"] for r in group["rules"] if "alert" in r]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every templating query of the dashboard."""
    board = dashboard()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        # Grafana's label_values(SELECTOR, LABEL): the selector is PromQL, the label is not.
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query.strip())
        yield f"variable {variable['name']!r}", match.group(1) if match else query


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers left once strings, label
    matchers, ranges, grouping clauses, Grafana variables, function names and keywords are out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end():].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue  # a function call, or a keyword
        names.add(match.group())
    return names
