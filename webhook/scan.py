"""`netguard audit`: find what is already wrong in a cluster, with the rules the webhook enforces.

An admission webhook only sees changes. Objects created before it was installed, while it was
failing open, or in a namespace that was exempt at the time are never reviewed; this scan finds
them. Three kinds of violation:

- ``loadbalancer-requires-default-deny``: a LoadBalancer Service in a namespace without a
  default-deny ingress NetworkPolicy (the webhook would refuse to create it);
- ``cancelled-default-deny``: a NetworkPolicy that selects every pod and admits every source,
  which cancels the namespace's default-deny (policies are additive, DESIGN.md section 1);
- ``required-labels``: a Service or NetworkPolicy without a label of ``labels.required``.

Exempt namespaces are skipped. Every rule is reported whatever its configured action: the audit
says what is true, the action only says how admission answers.

`scan` and `scan_views` are pure: no flask, no kubernetes client, no I/O. `list_cluster` imports
the kubernetes client when it is called, and reads the API's raw JSON (`_preload_content=False`,
paged with limit/continue), never client model objects (DESIGN.md section 4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from webhook import messages
from webhook.config import ConfigError, Settings, load_settings_or_default
from webhook.labels import is_load_balancer, metadata_map
from webhook.rules import LABELS_RULE, LOADBALANCER_RULE
from webhook.state import NamespaceView

CANCELLED_RULE = "cancelled-default-deny"

# What one LIST page may hold, and how long to wait for the API: (connect, read) seconds.
PAGE_SIZE = 500
REQUEST_TIMEOUT = (10.0, 60.0)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    namespace: str
    name: str
    kind: str  # of the object to fix: Service or NetworkPolicy
    message: str


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _namespace_of(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("namespace") or "default")


def _name_of(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("name") or "")


def _sort_key(v: Violation) -> tuple[str, str, str, str]:
    return (v.namespace, v.kind, v.name, v.rule)


def build_views(namespaces: Iterable[Mapping[str, Any]], policies: Iterable[Mapping[str, Any]],
                services: Iterable[Mapping[str, Any]]) -> dict[str, NamespaceView]:
    """One NamespaceView per namespace that holds an object or was listed itself.

    The lists say what each object is (list items from the API carry no `kind`).
    """
    views: dict[str, NamespaceView] = {}

    def view(name: str) -> NamespaceView:
        return views.get(name) or NamespaceView(name=name)

    for ns in namespaces:
        name = _name_of(ns)
        old = view(name)
        views[name] = NamespaceView(name=name, labels=dict(metadata_map(ns, "labels")),
                                    policies=old.policies, load_balancers=old.load_balancers,
                                    known=True)
    for policy in policies:
        name = _namespace_of(policy)
        views[name] = view(name).with_policy(policy)
    for service in services:
        name = _namespace_of(service)
        if is_load_balancer(service):
            views[name] = view(name).with_load_balancer(_name_of(service), True)
    return views


def scan_views(views: Iterable[NamespaceView], settings: Settings) -> list[Violation]:
    """The violations an inventory's namespace views can show.

    For the server's periodic scan. A NamespaceView keeps no object labels, so this covers
    loadbalancer-requires-default-deny and cancelled-default-deny only, not required-labels;
    `scan` covers all three.
    """
    found: list[Violation] = []
    for view in views:
        ns = view.name
        if ns in settings.exempt_namespaces:
            continue
        guards = view.default_deny_policies()
        if not guards:
            found.extend(Violation(LOADBALANCER_RULE, ns, name, "Service",
                                   messages.loadbalancer_summary(ns, name))
                         for name in sorted(view.load_balancers))
            continue
        # A cancelling policy matters only where a default-deny exists to be cancelled.
        found.extend(Violation(CANCELLED_RULE, ns, name, "NetworkPolicy",
                               messages.cancelled_default_deny(ns, [name]))
                     for name in view.cancelling_policies())
    return sorted(found, key=_sort_key)


def _missing_labels(kind: str, objects: Iterable[Mapping[str, Any]], settings: Settings) -> list[Violation]:
    required = settings.labels.required
    found = []
    for obj in objects:
        ns, name = _namespace_of(obj), _name_of(obj)
        if not required or ns in settings.exempt_namespaces:
            continue
        labels = metadata_map(obj, "labels")
        missing = [key for key in required if key not in labels]
        if missing:
            found.append(Violation(LABELS_RULE, ns, name, kind,
                                   messages.labels_summary(kind, ns, name, missing)))
    return found


def scan(namespaces: Iterable[Mapping[str, Any]], policies: Iterable[Mapping[str, Any]],
         services: Iterable[Mapping[str, Any]], settings: Settings) -> list[Violation]:
    """Every violation among these raw objects (as the API serves them), sorted by namespace,
    kind and name."""
    policies, services = list(policies), list(services)
    found = scan_views(build_views(namespaces, policies, services).values(), settings)
    found += _missing_labels("Service", services, settings)
    found += _missing_labels("NetworkPolicy", policies, settings)
    return sorted(found, key=_sort_key)


# --------------------------------------------------------------------------- the live cluster


class ClusterError(RuntimeError):
    """The cluster cannot be reached or read; the message says which and why."""


@dataclass(frozen=True)
class ClusterObjects:
    """Raw objects as the API serves them, each given back its `kind` and `apiVersion`."""

    namespaces: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    services: list[dict[str, Any]]


def _api_client(kubeconfig: str | None) -> Any:
    """An ApiClient from `kubeconfig`, else the default kubeconfig ($KUBECONFIG, ~/.kube/config),
    else the in-cluster service account (for an audit run as a CronJob)."""
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    problems = (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, KeyError)
    if kubeconfig:
        try:
            # persist_config=False: never write refreshed tokens back into the user's file.
            return config.new_client_from_config(config_file=kubeconfig, persist_config=False)
        except problems as exc:
            raise ClusterError(f"cannot load kubeconfig {kubeconfig}: {exc}") from None
    # $KUBECONFIG is read now, not when the client was imported (it reads it once, at import).
    default = os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        return config.new_client_from_config(config_file=default, persist_config=False)
    except problems as kube_exc:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except problems as cluster_exc:
            raise ClusterError(f"no usable kubeconfig ({kube_exc}) and not running in a cluster "
                               f"({cluster_exc}); pass --kubeconfig") from None
        return client.ApiClient(configuration)


def _list_all(call: Callable[..., Any], kind: str, api_version: str) -> list[dict[str, Any]]:
    """Every item of one collection, page by page; list items come without kind/apiVersion."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE}
        if token:
            kwargs["_continue"] = token
        response = call(**kwargs, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        try:
            page = json.loads(response.data)
        finally:
            response.release_conn()
        for item in page.get("items") or []:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
            items.append(item)
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def list_cluster(kubeconfig: str | None = None) -> ClusterObjects:
    """All Namespaces, NetworkPolicies and Services of the cluster. Raises ClusterError."""
    import urllib3.exceptions
    from kubernetes import client

    api_client = _api_client(kubeconfig)
    host = api_client.configuration.host
    what = "namespaces"
    try:
        core, networking = client.CoreV1Api(api_client), client.NetworkingV1Api(api_client)
        namespaces = _list_all(core.list_namespace, "Namespace", "v1")
        what = "networkpolicies"
        policies = _list_all(networking.list_network_policy_for_all_namespaces,
                             "NetworkPolicy", "networking.k8s.io/v1")
        what = "services"
        services = _list_all(core.list_service_for_all_namespaces, "Service", "v1")
        return ClusterObjects(namespaces, policies, services)
    except client.ApiException as exc:
        raise ClusterError(f"the API server at {host} refused to list {what}: "
                           f"HTTP {exc.status} {exc.reason}".rstrip()) from None
    except urllib3.exceptions.MaxRetryError as exc:
        raise ClusterError(f"cannot reach the API server at {host}: {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterError(f"cannot reach the API server at {host}: {exc}") from None
    except ValueError as exc:  # the body is not JSON: not an API server
        raise ClusterError(f"the answer of {host} to a list of {what} is not JSON: {exc}") from None
    finally:
        api_client.close()


# --------------------------------------------------------------------------- the command


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
    from webhook import report

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
    violations = scan(objects.namespaces, objects.policies, objects.services, settings)
    scanned = len({_name_of(ns) for ns in objects.namespaces} - settings.exempt_namespaces)
    render = report.audit_json if args.format == "json" else report.audit_text
    sys.stdout.write(render(violations, scanned))
    return 1 if violations else 0
