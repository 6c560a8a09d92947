"""The texts people read when netguard refuses or warns.

kubectl, Argo CD and Flux show a denial verbatim, so its first sentence says what was refused and
why; the rest says how to fix it, with YAML that can be applied as it stands. Warnings fit on one
line (outcome.short cuts them at 119 characters).
"""

from __future__ import annotations

import functools
import json
from typing import Iterable

import yaml

MAX_LISTED = 5


@functools.lru_cache(maxsize=4096)  # PyYAML's pure-Python parse costs ~25 µs; names repeat
def yaml_string(value: str) -> str:
    """`value` as a YAML scalar that reads back as the same string: namespaces such as `123`,
    `true` or `null` are valid Kubernetes names but other types in YAML, so they get quotes."""
    return value if yaml.safe_load(value) == value else json.dumps(value)


def listing(names: Iterable[str]) -> str:
    """'a, b, c' or 'a, b, c, d, e and 7 more': a few names, then a count."""
    names = sorted(names)
    shown = ", ".join(names[:MAX_LISTED])
    rest = len(names) - MAX_LISTED
    return f"{shown} and {rest} more" if rest > 0 else shown


def default_deny_yaml(namespace: str) -> str:
    """A policy that makes `namespace` default-deny for ingress: it selects every pod and allows
    nothing, so only traffic another policy allows gets in."""
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        "  name: default-deny-ingress\n"
        f"  namespace: {yaml_string(namespace)}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes:\n"
        "  - Ingress\n"
    )


def loadbalancer_denied(namespace: str, name: str, operation: str) -> str:
    what = (f"Service {namespace}/{name} cannot change to type LoadBalancer"
            if operation == "UPDATE" else f"Service {namespace}/{name} of type LoadBalancer was refused")
    return (
        f"{what}: namespace {namespace} has no default-deny ingress NetworkPolicy, so its pods "
        "would accept traffic from anywhere the load balancer reaches. "
        f"To fix it, create this NetworkPolicy in namespace {namespace} before the Service "
        "(then allow the traffic your pods need with further policies), and apply again:\n"
        f"{default_deny_yaml(namespace)}"
        "With Flux, put the policy in a Kustomization that the Service's Kustomization dependsOn: "
        "a server-side dry-run of one stage does not see policies of the same stage."
    )


def loadbalancer_summary(namespace: str, name: str) -> str:
    return f"LoadBalancer {namespace}/{name}: no default-deny ingress NetworkPolicy in the namespace"


def existing_loadbalancer_summary(namespace: str, name: str) -> str:
    return f"existing violation: LoadBalancer {namespace}/{name} is in a namespace without default-deny ingress"


def dry_run_summary(summary: str) -> str:
    return f"dry-run, would be denied: {summary}"


def families(open_families: Iterable[str]) -> str:
    return " and ".join(sorted(open_families))


def cancelled_default_deny(namespace: str, cancelling: list[str], open_families: Iterable[str]) -> str:
    return (f"default-deny ingress in {namespace} is cancelled for {families(open_families)} by "
            f"{listing(cancelling)}: pods are not isolated")


def guard_cancel_denied(namespace: str, policy: str, operation: str, open_families: Iterable[str],
                        services: Iterable[str]) -> str:
    verb = "created" if operation == "CREATE" else "changed this way"
    services = list(services)
    return (
        f"NetworkPolicy {namespace}/{policy} cannot be {verb}: it admits every {families(open_families)} "
        f"address to every pod of namespace {namespace} on every port, which cancels the namespace's "
        f"default-deny ingress, and {len(services)} LoadBalancer Service(s) depend on it: "
        f"{listing(services)}. "
        "Admit only what the pods need instead: select the pods (podSelector), name the sources "
        "(ipBlock with the load balancer's or the clients' ranges) and the ports, for example:\n"
        f"{allow_from_ranges_yaml(namespace, policy)}"
    )


def guard_cancel_summary(namespace: str, policy: str, open_families: Iterable[str], count: int) -> str:
    return (f"NetworkPolicy {namespace}/{policy} would open every {families(open_families)} address; "
            f"{count} LoadBalancer(s) depend on the default-deny")


def allow_from_ranges_yaml(namespace: str, name: str) -> str:
    """An allow policy for the pods behind a LoadBalancer, from named ranges on named ports."""
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        f"  name: {yaml_string(name)}\n"
        f"  namespace: {yaml_string(namespace)}\n"
        "spec:\n"
        "  podSelector:\n"
        "    matchLabels:\n"
        "      app: <the Service's selector>\n"
        "  policyTypes:\n"
        "  - Ingress\n"
        "  ingress:\n"
        "  - from:\n"
        "    - ipBlock:\n"
        "        cidr: <the clients' range>\n"
        "    ports:\n"
        "    - protocol: TCP\n"
        "      port: <the target port>\n"
    )


def guard_denied(namespace: str, policy: str, operation: str, services: Iterable[str]) -> str:
    verb = "deleted" if operation == "DELETE" else "changed to stop denying ingress by default"
    services = list(services)
    return (
        f"NetworkPolicy {namespace}/{policy} cannot be {verb}: it is the last default-deny ingress "
        f"policy in namespace {namespace}, and {len(services)} LoadBalancer Service(s) depend on it: "
        f"{listing(services)}. "
        "To remove it, first change those Services to another type or delete them, or create "
        "another default-deny ingress policy in the namespace, such as:\n"
        f"{default_deny_yaml(namespace)}"
    )


def guard_summary(namespace: str, policy: str, count: int) -> str:
    return f"NetworkPolicy {namespace}/{policy} is the last default-deny ingress; {count} LoadBalancer(s) depend on it"


def labels_denied(kind: str, namespace: str, name: str, missing: list[str], copied: Iterable[str]) -> str:
    copied = [k for k in copied if k in missing]
    hint = (f" netguard copies {', '.join(copied)} from the namespace's labels when the namespace has them;"
            " label the namespace or the object." if copied else "")
    example = "".join(f"    {key}: <value>\n" for key in missing)
    return (
        f"{kind} {namespace}/{name} was refused: it lacks the required label(s) {', '.join(missing)}."
        f"{hint} Add them to the object's metadata:\n"
        f"metadata:\n  labels:\n{example}"
    )


def labels_summary(kind: str, namespace: str, name: str, missing: list[str]) -> str:
    return f"{kind} {namespace}/{name} lacks required label(s) {', '.join(missing)}"


def state_unknown(namespace: str, why: str) -> str:
    return (
        f"netguard could not confirm the NetworkPolicies of namespace {namespace}: {why}. "
        "The request was refused because netguard fails closed (failureMode: closed). "
        "Retry in a moment; if it persists, check netguard's connection to the API server."
    )


def state_unknown_warning(namespace: str) -> str:
    return f"netguard could not confirm the policies of namespace {namespace}; allowed (failureMode: open)"
