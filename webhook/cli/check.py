"""`netguard check`: what the webhook would answer for a set of manifests, before they are applied.

For CI and pre-commit: it reads manifests offline with webhook.inventory.objects (files, folders searched
recursively for *.yaml / *.yml / *.json, `-` for stdin; multi-document YAML; `kind: List`
unwrapped) and runs each Service and NetworkPolicy through the same sequence the apiserver
drives: `decide.mutate` on a synthetic CREATE request, the resulting JSON patch applied to the
object, then `decide.validate` on the mutated object. Same rules, same label derivation, same
messages as the server.

Cluster state comes from the set itself: its Namespaces, NetworkPolicies and LoadBalancer
Services. Every policy of the set counts for every Service of the set, because Helm and Argo CD
create NetworkPolicies before Services (docs/design.md, Delivery pipelines) -- except a policy netguard itself
would refuse, which never gets persisted. With `--cluster`, the live cluster's objects are added
underneath; a manifest replaces the cluster object of the same kind, namespace and name.
Every object is checked as a CREATE, even one that already exists in the cluster.

Flux is the exception to "policies first": it dry-runs a whole stage before applying any of it,
so a LoadBalancer Service in the same stage as its namespace's only default-deny policy is denied
at dry-run. With `--flux`, objects are checked as Flux's kustomize-controller sends them (its
denials carry the Flux advice) and such pairs are warned about.

Exit status (docs/ci.md): 0 nothing denied, 1 something denied, 2 unreadable input or
configuration, cluster not reachable, or nothing to check (no Service or NetworkPolicy among the
inputs, unless --allow-empty); `--warn-exit-code N` exits N when nothing is denied but something
warned, as Kyverno's CLI does. All inputs are read and parsed before anything is evaluated, so an
error never leaves half a report, and an error still writes a whole report in the format asked
for (an error test case, an error annotation, a SARIF notification).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Mapping, Sequence, TextIO

from webhook.cli.configfile import load_settings_or_default
from webhook.cli.results import CheckReport, Result, SetWarning, Skipped
from webhook.core import clusterpolicy, decide, messages
from webhook.core.config import ConfigError
from webhook.core.egress import required_directions
from webhook.core.labels import is_load_balancer
from webhook.core.options import Action
from webhook.core.outcome import MAX_WARNING_CHARS, Verdict
from webhook.core.patches import apply_patch
from webhook.core.request import FLUX_FIELD_MANAGER, AdmissionRequest
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.core.rules.loadbalancer import DryRunMode
from webhook.core.settings import Settings
from webhook.core.view import PolicySummary
from webhook.inventory.kube import ClusterError, ClusterObjects, list_cluster
from webhook.inventory.objects import InputError, Manifest, Problem, read_manifests
from webhook.inventory.offline import OfflineInventory
from webhook.inventory.views import STATE_KINDS
from webhook.wire.review import MalformedReview, parse_review

FORMATS = ("text", "json", "junit", "github", "sarif")
CHECK_FIELD_MANAGER = "netguard-check"


# --------------------------------------------------------------------------- inputs


def _reviewed(m: Manifest, settings: Settings | None = None) -> bool:
    """The policy.networking.k8s.io kinds are reviewed only where egress.required."""
    return (m.group, m.kind) in decide.REVIEWED or \
        (m.group, m.kind) in clusterpolicy.guarded(settings is not None and settings.egress.required)


def _namespace(m: Manifest) -> str:
    """Where the object lands: nowhere for a cluster-scoped policy (a GlobalNetworkPolicy)."""
    known = clusterpolicy.KINDS.get((m.group, m.kind))
    return "" if known is not None and not known[1] else m.namespace


def _is_state(m: Manifest) -> bool:
    return (m.group, m.kind) in STATE_KINDS or (m.group, m.kind) in clusterpolicy.KINDS


def _object_problems(m: Manifest) -> list[Problem]:
    """Why the apiserver would refuse this object before any webhook sees it (so it cannot be
    checked). Only for objects the reader found to have the shape of one."""
    if not (_reviewed(m) or _is_state(m)):
        return []
    name, namespace = m.metadata.get("name"), m.metadata.get("namespace")
    if not isinstance(name, str) or not name:
        return [m.problem(f"{m.kind} has no metadata.name")]
    if namespace is not None and not isinstance(namespace, str):
        return [m.problem(f"{m.kind} {name}: metadata.namespace must be a string")]
    if _reviewed(m):
        try:
            synthetic_request(m, "check-0")
        except MalformedReview as exc:
            what = str(exc).removeprefix("request.object.")
            return [m.problem(f"{m.kind} {m.namespace}/{m.name}: {what}")]
    return []


def read_inputs(paths: Sequence[str], stdin: TextIO | None = None,
                foreign: list[Manifest] | None = None, prog: str = "netguard check") -> list[Manifest]:
    """Every object of every input (webhook.inventory.objects.read_manifests), plus what would make the
    apiserver refuse a Service, NetworkPolicy or Namespace: all reported at once, before
    anything is evaluated. Documents that are no Kubernetes object at all (neither apiVersion
    nor kind: a Helm values file) are left out with a notice, and added to `foreign`."""
    def left_out(m: Manifest) -> None:
        print(f"{prog}: {m.where}: not a Kubernetes object (no apiVersion, no kind): "
              "left out", file=sys.stderr)
        if foreign is not None:
            foreign.append(m)

    return read_manifests(paths, stdin, vet=_object_problems, foreign=left_out,
                          notice=lambda message: print(f"{prog}: {message}", file=sys.stderr))


# --------------------------------------------------------------------------- evaluation


def synthetic_request(m: Manifest, uid: str, field_manager: str = CHECK_FIELD_MANAGER) -> AdmissionRequest:
    """The AdmissionRequest the apiserver would send for `kubectl create` of this object (or
    Flux's apply, by its field manager), through the same parser the server uses, so the same
    malformed objects are refused."""
    obj = dict(m.obj)
    # The apiserver fills in the namespace before admission.
    namespace = _namespace(m)
    obj["metadata"] = {**m.metadata, **({"namespace": namespace} if namespace else {})}
    _, _, version = m.api_version.rpartition("/")
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": m.group, "version": version, "kind": m.kind},
            "namespace": namespace,
            "name": m.name,
            "operation": "CREATE",
            "userInfo": {"username": "netguard-check"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                        "fieldManager": field_manager},
        },
    }
    return parse_review(body)


def review(m: Manifest, uid: str, inventory: OfflineInventory, settings: Settings,
           flux: bool = False) -> Result:
    """mutate, apply its patch, validate the result: the apiserver's order of webhook calls."""
    req = synthetic_request(m, uid, FLUX_FIELD_MANAGER if flux else CHECK_FIELD_MANAGER)
    view = inventory.view(req.namespace)
    mutated = decide.mutate(req, view, settings)
    final, warnings, warned_by = mutated, mutated.warnings, mutated.warned_by
    if mutated.allowed:
        obj = apply_patch(req.object or {}, mutated.patch) if mutated.patch else req.object
        final = decide.validate(req._replace(object=obj), view, settings)
        warnings, warned_by = mutated.warnings + final.warnings, mutated.warned_by + final.warned_by
    verdict = final.verdict
    if final.allowed and warnings and verdict == Verdict.ALLOW:
        verdict = Verdict.WARN
    return Result(kind=m.kind, namespace=req.namespace, name=req.name, source=m.source,
                  line=m.line, decision=verdict, allowed=final.allowed, rule=final.rule,
                  reason=final.reason, message=final.message if not final.allowed else "",
                  warnings=tuple(warnings), labels=dict(mutated.patched_labels),
                  warned_by=tuple(warned_by))


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    if clusterpolicy.is_cluster_policy(obj):  # Calico's NetworkPolicy is not networking.k8s.io's
        kind = f"{obj.get('apiVersion')}/{kind}"
    namespace = "" if kind == "Namespace" else str(metadata.get("namespace") or "default")
    return kind, namespace, str(metadata.get("name") or "")


def _inventory(cluster: Sequence[Mapping[str, Any]], manifests: Sequence[Manifest]) -> OfflineInventory:
    """Cluster objects overlaid with the manifests' (same kind, namespace and name: the manifest)."""
    merged: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for obj in cluster:
        merged[_key(obj)] = obj
    for m in manifests:
        merged[_key(m.obj)] = m.obj
    return OfflineInventory(merged.values())


def _default_denies(policy: Mapping[str, Any]) -> frozenset[str]:
    return PolicySummary.of(policy).default_deny


def _same_set_warnings(manifests: Sequence[Manifest], results: Mapping[int, Result],
                       settings: Settings, cluster: ClusterObjects | None) -> list[SetWarning]:
    """LoadBalancer Services admitted only thanks to a default-deny policy of the same set.

    Flux dry-runs a whole stage before applying it, and the dry-run sees the cluster as it
    stands: without a default-deny there, the Service is denied at dry-run.
    """
    rule = settings.rule(LOADBALANCER_RULE)
    if rule.action != Action.DENY or rule.dry_run != DryRunMode.SAME:
        return []  # dry-run requests are not denied: nothing to split
    guarded: dict[str, set[str]] = {}  # namespace -> the directions the cluster denies by default
    existing: set[tuple[str, str]] = set()
    if cluster is not None:
        for p in cluster.policies:
            guarded.setdefault(_key(p)[1], set()).update(_default_denies(p))
        # Already a LoadBalancer: the dry-run is an UPDATE, which only warns.
        existing = {_key(s)[1:] for s in cluster.services if is_load_balancer(s)}
    # The namespaces' labels, for egress.namespaceSelector: the directions each must deny.
    namespaces = OfflineInventory([*(cluster.namespaces if cluster else ()),
                                   *(m.obj for m in manifests if m.kind == "Namespace" and _is_state(m))])
    policies: dict[str, list[tuple[Manifest, frozenset[str]]]] = {}
    for index, m in enumerate(manifests):
        if m.kind == "NetworkPolicy" and _reviewed(m) and results[index].allowed and _default_denies(m.obj):
            policies.setdefault(m.namespace, []).append((m, _default_denies(m.obj)))
    found = []
    for index, m in enumerate(manifests):
        ns = m.namespace
        if m.kind != "Service" or not _reviewed(m) or not is_load_balancer(m.obj) \
                or not results[index].allowed or ns in settings.exempt_namespaces \
                or ns not in policies or (ns, m.name) in existing:
            continue
        lacking = [d for d in required_directions(namespaces.view(ns), settings.egress)
                   if d not in guarded.get(ns, ())]
        same_set = [p for p, denies in policies[ns] if denies & set(lacking)]
        if same_set:
            found.append(SetWarning(messages.fit(SAME_SET, ns, m.name, limit=MAX_WARNING_CHARS),
                                    m.source, m.line, m.kind, ns, m.name,
                                    detail=_same_set_detail(m, same_set, lacking)))
    return found


SAME_SET = "Service {0}/{1}: denied at Flux's dry-run: its namespace's only default-deny is in the same set"


def _same_set_detail(service: Manifest, policies: Sequence[Manifest], lacking: Sequence[str]) -> str:
    ns = service.namespace
    named = [f"{p.name} ({p.where})" for p in policies]
    words = messages.directions_words(lacking)
    which = (f"NetworkPolicy {ns}/{named[0]} is the only default-deny {words} policy"
             if len(named) == 1 else
             f"NetworkPolicies {messages.listing(f'{ns}/{n}' for n in named)} are the only "
             f"default-deny {words} policies")
    return (
        f"{which} of namespace {ns}, and LoadBalancer Service {ns}/{service.name} ({service.where}) "
        "is in the same set: Flux dry-runs a whole stage before applying any of it, so the Service "
        "would be denied at dry-run. Put the policy in an earlier Flux Kustomization that the "
        "Service's Kustomization dependsOn, or set "
        "rules.loadbalancer-requires-default-deny.dryRun: warn in netguard's configuration."
    )


def check(manifests: Sequence[Manifest], settings: Settings,
          cluster: ClusterObjects | None = None, flux: bool = False) -> CheckReport:
    """What the webhook would answer for each manifest. Pure: no I/O. With `flux`, as Flux's
    kustomize-controller would send them, and with the warnings about its dry-run of a stage.

    Raises InputError when an object cannot be evaluated at all (the server would answer 422).
    """
    cluster_objects = [*cluster.namespaces, *cluster.policies, *cluster.services,
                       *cluster.cluster_policies] if cluster else []
    state = [(i, m) for i, m in enumerate(manifests) if _is_state(m)]
    uids = {i: f"check-{n}" for n, i in enumerate(
        (i for i, m in enumerate(manifests) if _reviewed(m, settings)), start=1)}
    results: dict[int, Result] = {}
    problems: list[Problem] = []

    def run(kind: str, inventory: OfflineInventory) -> None:
        for index, m in enumerate(manifests):
            if _reviewed(m, settings) and (m.kind == "Service") == (kind == "Service"):
                try:
                    results[index] = review(m, uids[index], inventory, settings, flux)
                except Exception as exc:  # an object of an impossible shape trips a rule
                    problems.append(m.problem(f"{m.kind} {m.namespace}/{m.name} could not be "
                                              f"evaluated: {type(exc).__name__}: {exc}"))

    # Policies first, as Helm and Argo CD apply them; a policy netguard refuses is never
    # persisted, so it does not count for the Services.
    # (With them, the cluster-wide and CNI policies netguard guards.)
    run("NetworkPolicy", _inventory(cluster_objects, [m for _, m in state]))
    refused = {i for i, r in results.items() if not r.allowed}
    run("Service", _inventory(cluster_objects, [m for i, m in state if i not in refused]))
    if problems:
        raise InputError(problems)

    skipped = tuple(
        Skipped(m.kind, m.api_version, m.namespace if m.metadata.get("namespace") else "",
                m.name, m.source, m.line,
                "cluster state only: netguard does not review Namespaces" if _is_state(m) else
                f"netguard does not review {m.kind} ({m.api_version})")
        for m in manifests if not _reviewed(m, settings))
    set_warnings = _same_set_warnings(manifests, results, settings, cluster) if flux else []
    return CheckReport(results=tuple(results[i] for i in sorted(results)), skipped=skipped,
                       warnings=tuple(set_warnings))


# --------------------------------------------------------------------------- the command


def _exit_code(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 255, got {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be from 0 to 255, got {value}")
    return value


PATHS_HELP = "manifest file, folder (searched recursively for *.yaml, *.yml, *.json), or - for stdin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netguard check",
        description="Evaluate Kubernetes manifests offline with the webhook's rules: what would be "
                    "denied, warned, and which labels mutation would add. Exit 1 when something "
                    "is denied, 0 when nothing is, 2 for unreadable input or configuration or "
                    "when there is nothing to check.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help=PATHS_HELP)
    parser.add_argument("--config", help="YAML configuration file (default: built-in defaults)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), json, junit (JUnit XML), github (workflow "
                             "annotations), sarif (SARIF 2.1.0 for GitHub code scanning)")
    parser.add_argument("--cluster", action="store_true",
                        help="add the live cluster's Namespaces, NetworkPolicies and Services to "
                             "the manifests' own")
    parser.add_argument("--kubeconfig", help="kubeconfig for --cluster (default: $KUBECONFIG, "
                                             "~/.kube/config, then the in-cluster service account)")
    parser.add_argument("--flux", action="store_true",
                        help="check as Flux's kustomize-controller applies: denials carry the Flux "
                             "advice, and a LoadBalancer whose only default-deny is in the same set "
                             "is warned about (Flux dry-runs a whole stage first)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="exit 0 when the inputs hold no Service or NetworkPolicy (default: exit "
                             "2, so a wrong path cannot pass)")
    parser.add_argument("--warn-exit-code", type=_exit_code, default=0, metavar="N",
                        help="exit N when nothing is denied but something is warned (as Kyverno's "
                             "CLI; default 0: warnings do not change the exit code)")
    return parser


def _nothing_to_check(paths: Sequence[str], manifests: Sequence[Manifest],
                      foreign: Sequence[Manifest]) -> Problem:
    kinds = sorted({m.kind for m in manifests})
    read = (f"{len(manifests)} object(s) read, none netguard reviews ({', '.join(kinds)})"
            if manifests else "no Kubernetes object read")
    if foreign:
        read += f" ({len(foreign)} YAML document(s) without apiVersion and kind left out)"
    return Problem("", 0, f"nothing to check in {', '.join(paths)}: {read}; netguard reviews "
                          "Services and NetworkPolicies. Pass --allow-empty if that is expected")


def _fail(problems: Sequence[Problem], fmt: str, prefix: str = "") -> int:
    """Exit 2, with every problem on stderr and, for the machine formats, a whole report."""
    from webhook.cli import report

    for problem in problems:
        print(f"netguard check: {prefix}{problem}", file=sys.stderr)
    if fmt != "text":
        sys.stdout.write(report.render_errors(problems, fmt))
    return 2


def exit_status(outcome: CheckReport, warn_exit_code: int) -> int:
    """1 when something is denied; else `warn_exit_code` when something warned; else 0 (Kyverno's
    `kyverno apply --warn-exit-code`: failures win over warnings)."""
    if outcome.denied:
        return 1
    return warn_exit_code if outcome.warned else 0


def run_check(argv: Sequence[str]) -> int:
    from webhook.cli import report

    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.kubeconfig and not args.cluster:
        parser.error("--kubeconfig is only used with --cluster")
    try:
        settings = load_settings_or_default(args.config)
    except ConfigError as exc:
        return _fail([Problem(exc.path, max(exc.line, 0), f"{exc.key + ': ' if exc.key else ''}{exc.reason}")],
                     args.format, prefix="config: ")
    try:
        foreign: list[Manifest] = []
        manifests = read_inputs(args.paths, foreign=foreign)
        cluster = None
        if args.cluster:
            try:
                cluster = list_cluster(args.kubeconfig)
            except ClusterError as exc:
                return _fail([Problem("", 0, f"--cluster: cannot list the cluster: {exc}")], args.format)
        outcome = check(manifests, settings, cluster, flux=args.flux)
    except InputError as exc:
        return _fail(exc.located, args.format)
    if not outcome.results and not args.allow_empty:
        return _fail([_nothing_to_check(args.paths, manifests, foreign)], args.format)
    sys.stdout.write(report.render_check(outcome, args.format))
    return exit_status(outcome, args.warn_exit_code)
