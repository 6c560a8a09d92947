"""`netguard fix`: write the NetworkPolicies that get each LoadBalancer Service admitted without
warnings (docs/fix.md).

It reads manifests as `netguard check` does (files, folders, `-` for stdin), and with `--cluster`
the live cluster's Namespaces, NetworkPolicies and Services underneath (a manifest replaces the
cluster object of the same kind, namespace and name), plus the workloads of the namespaces that
hold LoadBalancers, to resolve named target ports. What to write is decided by webhook/core/fix.py
(and fixpolicies.py, which also makes the allow policy a denial offers);
this module only reads, renders and writes.

Output: with `--out DIR`, one file per namespace, `DIR/<namespace>.yaml`, holding its default-deny
(when it needs one) and one allow policy per LoadBalancer Service; without it, the same documents on
stdout. Notes and warnings go to stderr, and into each file's header. The user's own files are
never changed: a file already at a target path is replaced only when every object in it is a
policy `netguard fix` wrote; otherwise nothing at all is written and the exit status is 2.

Exit status: 0 written (or nothing to write), 2 unreadable input or configuration, a cluster not
reachable, or an --out that would replace a file of the user's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from webhook.cli.check import PATHS_HELP, _key, check, read_inputs
from webhook.cli.configfile import load_settings_or_default
from webhook.core import fix, yamltext
from webhook.core.config import ConfigError
from webhook.core.settings import Settings
from webhook.inventory.kube import ClusterError, list_cluster, list_workloads
from webhook.inventory.objects import InputError, parse_manifests

PROG = "netguard fix"
_NAMESPACE_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")


class FixError(Exception):
    """Something that stops `netguard fix` before it writes anything."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the NetworkPolicies that get each LoadBalancer Service of the manifests "
                    "(or the cluster) admitted by netguard without warnings: the namespace's "
                    "default-deny ingress when it lacks one, and an allow policy for the Service's "
                    "pods from its loadBalancerSourceRanges on its target ports.")
    parser.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
    parser.add_argument("--out", metavar="DIR",
                        help="write DIR/<namespace>.yaml per namespace (default: print to stdout)")
    parser.add_argument("--config", help="YAML configuration file (default: built-in defaults)")
    parser.add_argument("--cluster", action="store_true",
                        help="add the live cluster's Namespaces, NetworkPolicies, Services and the "
                             "workloads of its LoadBalancers' namespaces to the manifests' own")
    parser.add_argument("--kubeconfig", help="kubeconfig for --cluster (default: $KUBECONFIG, "
                                             "~/.kube/config, then the in-cluster service account)")
    return parser


# --------------------------------------------------------------------------- inputs


def _objects(paths: Sequence[str], cluster: bool, kubeconfig: str | None,
             settings: Settings) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The objects to plan from (cluster underneath, manifests on top) and problems worth a
    warning that do not stop the run. A policy of the manifests that netguard itself refuses is
    left out, as `netguard check` leaves it out: it would never be persisted."""
    manifests = read_inputs(paths, prog=PROG) if paths else []
    merged: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    warnings: list[str] = []
    found = None
    if cluster:
        try:
            found = list_cluster(kubeconfig)
        except ClusterError as exc:
            raise FixError(f"--cluster: cannot list the cluster: {exc}") from None
        for obj in (*found.namespaces, *found.policies, *found.services):
            merged[_key(obj)] = obj
    refused = {(r.namespace, r.name): r.rule for r in check(manifests, settings, found).results
               if r.kind == "NetworkPolicy" and not r.allowed}
    for m in manifests:
        if m.kind == "NetworkPolicy" and (m.namespace, m.name) in refused:
            warnings.append(f"NetworkPolicy {m.namespace}/{m.name} ({m.where}): netguard refuses it "
                            f"({refused[m.namespace, m.name]}), so it does not count")
            continue
        merged[_key(m.obj)] = m.obj
    objects = list(merged.values())
    if cluster:
        namespaces = sorted({ns for kind, ns, _ in merged if kind == "Service"} - settings.exempt_namespaces)
        try:
            objects += list_workloads(namespaces, kubeconfig) if namespaces else []
        except ClusterError as exc:
            warnings.append(f"--cluster: cannot list workloads ({exc}): named target ports are "
                            "resolved from the manifests only")
    return objects, warnings


# --------------------------------------------------------------------------- output


def render(ns_fix: fix.NamespaceFix) -> str:
    """One namespace's file: a header saying what it is, its notes, then its policies."""
    services = ", ".join(ns_fix.services)
    lines = [f"# Written by `netguard fix` for the LoadBalancer Service(s) of namespace {ns_fix.namespace}: "
             f"{services}.",
             "# Ready to commit and apply; netguard fix rewrites this file on its next run (edit a "
             "copy under another name).",
             *(f"# {note}" for note in ns_fix.notes)]
    docs = "---\n".join(yamltext.dump(dict(p)) for p in ns_fix.policies)
    return "\n".join(lines) + "\n" + docs


def _target(out: Path, namespace: str) -> Path:
    if not _NAMESPACE_RE.fullmatch(namespace) or len(namespace) > 63:
        raise FixError(f"namespace {namespace!r} is not a valid namespace name: nothing written")
    return out / f"{namespace}.yaml"


def _refusal(path: Path, prefix: str) -> str | None:
    """Why the file at `path` may not be replaced (it is not all netguard fix output), or None."""
    if not path.exists():
        return None
    if not path.is_file():
        return f"{path} exists and is not a file"
    try:
        objects = [m.obj for m in parse_manifests(path.read_text(encoding="utf-8"), str(path))]
    except (InputError, OSError, UnicodeDecodeError, ValueError):
        objects = []
    if objects and all(fix.is_fix_output(obj, prefix) for obj in objects):
        return None
    return f"{path} exists and is not a file netguard fix wrote (one of yours?)"


def write(plan: fix.Plan, out: Path, prefix: str) -> list[Path]:
    """Every namespace's file under `out`, or FixError before anything is written."""
    if out.exists() and not out.is_dir():
        raise FixError(f"--out {out}: not a folder")
    files = {_target(out, ns.namespace): ns for ns in plan.namespaces if ns.policies}
    refused = [why for path in files if (why := _refusal(path, prefix))]
    if refused:
        raise FixError("--out: refusing to replace " + "; ".join(refused) + ": nothing written; "
                       "choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for path, ns_fix in files.items():
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(render(ns_fix), encoding="utf-8")
        os.replace(partial, path)  # a reader never sees half a file
    return list(files)


def run_fix(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.kubeconfig and not args.cluster:
        parser.error("--kubeconfig is only used with --cluster")
    if not args.paths and not args.cluster:
        parser.error("give the manifests to fix (PATH...), or --cluster")
    try:
        settings = load_settings_or_default(args.config)
        objects, warnings = _objects(args.paths, args.cluster, args.kubeconfig, settings)
        plan = fix.plan(objects, settings)
        for text in warnings:
            print(f"{PROG}: warning: {text}", file=sys.stderr)
        for note in plan.notes:
            print(f"{PROG}: {note}", file=sys.stderr)
        if not plan.namespaces:
            print(f"{PROG}: no LoadBalancer Service among the inputs: nothing to write", file=sys.stderr)
            return 0
        if args.out is None:
            sys.stdout.write("---\n".join(render(ns) for ns in plan.namespaces if ns.policies))
            return 0
        for path in write(plan, Path(args.out), settings.labels.prefix):
            count = len(next(ns for ns in plan.namespaces if path.stem == ns.namespace).policies)
            print(f"{PROG}: wrote {path} ({count} NetworkPolicy(s))", file=sys.stderr)
        if not plan.policies:
            print(f"{PROG}: every LoadBalancer Service is already covered: nothing to write", file=sys.stderr)
        return 0
    except ConfigError as exc:
        print(f"{PROG}: config: {exc}", file=sys.stderr)
    except InputError as exc:
        for problem in exc.located:
            print(f"{PROG}: {problem}", file=sys.stderr)
    except FixError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
    return 2
