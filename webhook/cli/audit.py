"""`netguard audit`: what is already wrong in a live cluster, by the rules the webhook enforces.

It lists the cluster's Namespaces, NetworkPolicies and Services (webhook/inventory/kube.py),
builds namespace views the way the server's inventories do (webhook/inventory/views.py) and asks
each rule's scan (webhook/core/violations.py). Exit 1 when something violates a rule.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterable, Mapping, Sequence

from webhook.cli.configfile import load_settings_or_default
from webhook.core.config import ConfigError
from webhook.core.outcome import Violation
from webhook.core.settings import Settings
from webhook.core.violations import scan_objects, scan_views
from webhook.inventory.kube import ClusterError, list_cluster
from webhook.inventory.views import ClusterAttacher, build_views, cluster_summaries, name_of


def scan(namespaces: Iterable[Mapping[str, Any]], policies: Iterable[Mapping[str, Any]],
         services: Iterable[Mapping[str, Any]], settings: Settings,
         cluster_policies: Iterable[Mapping[str, Any]] = ()) -> list[Violation]:
    """Every violation among these raw objects (as the API serves them), sorted by namespace,
    kind and name; `cluster_policies` count as far as they isolate (webhook/core/clusterpolicy.py)."""
    policies, services = list(policies), list(services)
    summaries = cluster_summaries(cluster_policies)
    attach = ClusterAttacher(limit=0)
    views = [attach(v, summaries) for v in build_views(namespaces, policies, services).values()]
    found = scan_views(views, settings)
    found += scan_objects("Service", services, settings)
    found += scan_objects("NetworkPolicy", policies, settings)
    return sorted(found, key=Violation.sort_key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netguard audit",
        description="List the cluster's Namespaces, NetworkPolicies and Services and report what "
                    "violates netguard's rules. Exit 1 when something does, 0 when nothing does, "
                    "2 when the cluster cannot be read or the configuration is bad.")
    parser.add_argument("--config", help="YAML configuration file (default: built-in defaults)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, "
                                             "then the in-cluster service account)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def run_audit(argv: Sequence[str]) -> int:
    from webhook.cli import report

    args = build_parser().parse_args(list(argv))
    try:
        settings = load_settings_or_default(args.config)
    except ConfigError as exc:
        print(f"netguard audit: config: {exc}", file=sys.stderr)
        return 2
    try:
        objects = list_cluster(args.kubeconfig)
    except ClusterError as exc:
        print(f"netguard audit: cannot list the cluster: {exc}", file=sys.stderr)
        return 2
    violations = scan(objects.namespaces, objects.policies, objects.services, settings,
                      objects.cluster_policies)
    scanned = len({name_of(ns) for ns in objects.namespaces} - settings.exempt_namespaces)
    render = report.audit_json if args.format == "json" else report.audit_text
    sys.stdout.write(render(violations, scanned))
    return 1 if violations else 0
