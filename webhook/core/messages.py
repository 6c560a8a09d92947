"""The texts people read when netguard refuses or warns.

kubectl, Argo CD and Flux show a denial verbatim after their own prefix; CI annotations, JUnit
failure messages and narrow terminals show its first line. So every denial has one shape
(`denial`):

    what was refused and why, on one line of at most FIRST_LINE_CHARS
    how to fix it, with YAML that can be applied as it stands
    the Flux advice, only when the request comes from Flux (request.from_flux)
    the closing line, the same for every denial (CLOSING)

Every warning is one line of at most outcome.MAX_WARNING_CHARS that starts with the object it
is about (`Service shop/web: ...`): kubectl prints each as `Warning: <text>` on its own line.
Findings of the scans (`netguard audit`) use the same one-line texts.
"""

from __future__ import annotations

import functools
import json
from typing import Iterable

import yaml

from webhook.core.egress import NAMESPACE_NAME_LABEL, DnsTarget

MAX_LISTED = 5
FIRST_LINE_CHARS = 200
# A name is never cut shorter than this in a first line (it ends in "..." then).
SHORTEST_NAME = 8
CLOSING = ("Refused by netguard rule {rule}. `netguard check` gives the same verdicts on manifests "
           "before they are applied.")


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


def fit(template: str, *names: str, limit: int = FIRST_LINE_CHARS) -> str:
    """`template.format(*names)` in at most `limit` characters: while it is longer, the longest
    name is cut (ending in "..."), never below SHORTEST_NAME. Kubernetes names reach 63
    characters (namespaces, Services) and 253 (NetworkPolicies); the full names follow in the
    rest of the message."""
    shown = list(names)
    text = template.format(*shown)
    while len(text) > limit:
        longest = max(range(len(shown)), key=lambda i: len(shown[i]))
        size = len(shown[longest])
        if size <= SHORTEST_NAME:
            break
        keep = max(SHORTEST_NAME, size - (len(text) - limit)) - 3
        shown[longest] = names[longest][:keep] + "..."
        text = template.format(*shown)
    return text


def denial(first: str, fix: str, rule: str, flux: str = "") -> str:
    """A denial in the one shape every denial has (module docstring)."""
    if "\n" in first:
        raise ValueError("the first line of a denial is one line")
    parts = [first, fix.rstrip("\n")]
    if flux:
        parts.append(flux)
    parts.append(closing(rule))
    return "\n".join(parts)


def closing(rule: str) -> str:
    """The last line of every denial; `rule` may be several, comma-separated (outcome.combine)."""
    return CLOSING.format(rule=rule)


def first_line(message: str) -> str:
    """What was refused and why: the first line of a denial."""
    return message.strip().split("\n", 1)[0] if message.strip() else ""


def default_deny_yaml(namespace: str, direction: str = "Ingress") -> str:
    """A policy that makes `namespace` default-deny for `direction` (Ingress or Egress): it
    selects every pod and allows nothing that way, so only what another policy allows passes."""
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        f"  name: default-deny-{direction.lower()}\n"
        f"  namespace: {yaml_string(namespace)}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes:\n"
        f"  - {direction}\n"
    )


def dns_allowance_yaml(namespace: str, dns: DnsTarget) -> str:
    """The egress every pod behind an egress default-deny needs to resolve names: to the DNS
    pods (`dns`: their namespace, named by its kubernetes.io/metadata.name label, their labels)
    on the DNS ports. A namespaceSelector with a podSelector in one peer selects those pods in
    that namespace only (NetworkPolicyPeer)."""
    labels = "".join(f"          {yaml_string(k)}: {yaml_string(v)}\n" for k, v in dns.pod_labels)
    pods = ("      podSelector:\n        matchLabels:\n" + labels) if labels else "      podSelector: {}\n"
    ports = "".join(f"    - protocol: {protocol}\n      port: {port if isinstance(port, int) else yaml_string(port)}\n"
                    for protocol, port in dns.ports)
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        "  name: allow-dns-egress\n"
        f"  namespace: {yaml_string(namespace)}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes:\n"
        "  - Egress\n"
        "  egress:\n"
        "  - to:\n"
        "    - namespaceSelector:\n"
        "        matchLabels:\n"
        f"          {NAMESPACE_NAME_LABEL}: {yaml_string(dns.namespace)}\n"
        + pods + ("    ports:\n" + ports if ports else "")
    )


def default_deny_fix_yaml(namespace: str, directions: Iterable[str], dns: DnsTarget) -> str:
    """The policies that make `namespace` default-deny for `directions`, as one multi-document
    YAML; an egress default-deny comes with the DNS allowance its pods need."""
    docs = [default_deny_yaml(namespace, d) for d in directions]
    if "Egress" in directions:
        docs.append(dns_allowance_yaml(namespace, dns))
    return "---\n".join(docs)


def _dns_note(dns: DnsTarget) -> str:
    ports = " and ".join(f"{protocol} {port}" for protocol, port in dns.ports)
    pods = ",".join(f"{k}={v}" for k, v in dns.pod_labels) or "every pod"
    return (f"allow-dns-egress lets the pods resolve names: {ports or 'every port'} to the pods "
            f"{pods} of namespace {dns.namespace} (egress.dns in netguard's configuration).")


# --------------------------------------------------------------------------- loadbalancer-requires-default-deny

FLUX_ADVICE = ("With Flux, put the policy in a Kustomization that the Service's Kustomization "
               "dependsOn: a server-side dry-run of one stage does not see the policies of the same stage.")


INGRESS_ONLY = ("Ingress",)
# Why each missing default-deny matters, for the first line of the denial.
_MISSING = {("Ingress",): "ingress NetworkPolicy, so outside traffic would reach its pods",
            ("Egress",): "egress NetworkPolicy (egress.required), so its pods could reach any address",
            ("Ingress", "Egress"): "ingress or egress NetworkPolicy (egress.required), so outside "
                                   "traffic would reach its pods"}


def directions_words(directions: Iterable[str]) -> str:
    """'ingress', 'egress' or 'ingress and egress'."""
    return " and ".join(d.lower() for d in directions)


def loadbalancer_denied(namespace: str, name: str, operation: str, *, rule: str,
                        from_flux: bool = False, missing: tuple[str, ...] = INGRESS_ONLY,
                        dns: DnsTarget | None = None, labels_unknown: bool = False,
                        not_isolating: Iterable[tuple[str, str]] = ()) -> str:
    """`missing`: the directions the namespace lacks a default-deny for (Ingress, Egress);
    `labels_unknown`: netguard does not know the namespace's labels, so egress.namespaceSelector
    was taken to select it; `not_isolating`: (label, why) of cluster-wide and CNI policies that
    look like isolation but are not (webhook/core/clusterpolicy.py)."""
    what = ("Service {0}/{1} cannot change to type LoadBalancer" if operation == "UPDATE"
            else "Service {0}/{1} of type LoadBalancer was refused")
    first = fit(what + ": namespace {0} has no default-deny " + _MISSING[tuple(missing)] + ".",
                namespace, name)
    these = "this NetworkPolicy" if missing == INGRESS_ONLY else "these NetworkPolicies"
    fix = (f"To fix it, create {these} in namespace {namespace} before the Service "
           "(then allow the traffic your pods need with further policies), and apply again:\n"
           f"{default_deny_fix_yaml(namespace, missing, dns or DnsTarget())}")
    if "Egress" in missing:
        fix += _dns_note(dns or DnsTarget())
        if labels_unknown:
            fix += (f" netguard does not know the labels of namespace {namespace}, so "
                    "egress.namespaceSelector may select it: give netguard check its Namespace manifest.")
    fix = fix.rstrip("\n") + "\n" + "".join(
        f"Not counted: {label} applies to namespace {namespace}, but {why}.\n"
        for label, why in list(not_isolating)[:MAX_LISTED]) if not_isolating else fix
    return denial(first, fix, rule, FLUX_ADVICE if from_flux else "")


def loadbalancer_summary(namespace: str, name: str, missing: Iterable[str] = INGRESS_ONLY) -> str:
    return (f"Service {namespace}/{name}: LoadBalancer without a default-deny {directions_words(missing)} "
            "NetworkPolicy in its namespace")


def existing_loadbalancer_summary(namespace: str, name: str, missing: Iterable[str] = INGRESS_ONLY) -> str:
    return (f"Service {namespace}/{name}: existing violation: LoadBalancer in a namespace without "
            f"default-deny {directions_words(missing)}")


def dry_run_summary(namespace: str, name: str, missing: Iterable[str] = INGRESS_ONLY) -> str:
    return (f"Service {namespace}/{name}: dry-run, would be denied: no default-deny "
            f"{directions_words(missing)} NetworkPolicy")


def families(open_families: Iterable[str]) -> str:
    return " and ".join(sorted(open_families))


# What a cancelled default-deny of each direction leaves, for the warnings.
_CANCELLED = {"Ingress": "pods are not isolated", "Egress": "pods can reach any address"}


def cancelled_default_deny(namespace: str, service: str, cancelling: list[str],
                           open_families: Iterable[str], direction: str = "Ingress") -> str:
    """The warning for an admitted LoadBalancer whose namespace's default-deny is cancelled."""
    return (f"Service {namespace}/{service}: default-deny {direction.lower()} is cancelled for "
            f"{families(open_families)} by {listing(cancelling)}; {_CANCELLED[direction]}")


def cancelling_finding(namespace: str, policy: str, open_families: Iterable[str],
                       direction: str = "Ingress") -> str:
    """What the scan reports about a policy that cancels its namespace's default-deny."""
    return (f"NetworkPolicy {namespace}/{policy}: cancels the default-deny {direction.lower()} for "
            f"{families(open_families)}; {_CANCELLED[direction]}")


# --------------------------------------------------------------------------- protect-default-deny

def guard_cancel_denied(namespace: str, policy: str, operation: str, open_families: Iterable[str],
                        services: Iterable[str], *, rule: str, direction: str = "Ingress") -> str:
    verb = "created" if operation == "CREATE" else "changed this way"
    services = list(services)
    if direction == "Egress":
        first = fit(f"NetworkPolicy {{0}}/{{1}} cannot be {verb}: it lets every pod reach every "
                    f"{families(open_families)} address on every port, cancelling the default-deny "
                    f"egress that {len(services)} LoadBalancer(s) require.", namespace, policy)
        fix = (f"The LoadBalancer Services of namespace {namespace}: {listing(services)} "
               "(egress.required in netguard's configuration). Allow only what the pods need "
               "instead: select the pods (podSelector), name the destinations (ipBlock with the "
               "ranges they call; namespaceSelector and podSelector for pods in the cluster) and "
               f"the ports, for example:\n{allow_to_ranges_yaml(namespace, policy)}")
        return denial(first, fix, rule)
    first = fit(f"NetworkPolicy {{0}}/{{1}} cannot be {verb}: it admits every {families(open_families)} "
                f"address to every pod on every port, cancelling the default-deny ingress that "
                f"{len(services)} LoadBalancer(s) depend on.", namespace, policy)
    fix = (f"The LoadBalancer Services of namespace {namespace}: {listing(services)}. "
           "Admit only what the pods need instead: select the pods (podSelector), name the sources "
           "(ipBlock with the load balancer's or the clients' ranges) and the ports, for example:\n"
           f"{allow_from_ranges_yaml(namespace, policy)}")
    return denial(first, fix, rule)


def guard_cancel_summary(namespace: str, policy: str, open_families: Iterable[str], count: int,
                         direction: str = "Ingress") -> str:
    if direction == "Egress":
        return (f"NetworkPolicy {namespace}/{policy}: would open egress to every {families(open_families)} "
                f"address; {count} LoadBalancer(s) need it closed")
    return (f"NetworkPolicy {namespace}/{policy}: would open every {families(open_families)} address; "
            f"{count} LoadBalancer(s) depend on the default-deny")


def allow_to_ranges_yaml(namespace: str, name: str) -> str:
    """An egress allow policy for some pods, to named ranges on named ports."""
    return _allow_ranges_yaml(namespace, name, "Egress", "the pods that call out",
                              "the range they call", "the port they call")


def allow_from_ranges_yaml(namespace: str, name: str) -> str:
    """An allow policy for the pods behind a LoadBalancer, from named ranges on named ports."""
    return _allow_ranges_yaml(namespace, name, "Ingress", "the Service's selector",
                              "the clients' range", "the target port")


def _allow_ranges_yaml(namespace: str, name: str, direction: str, pods: str, cidr: str, port: str) -> str:
    """The shape both allows share: some pods, one direction, an ipBlock peer, a TCP port."""
    peers = "to" if direction == "Egress" else "from"
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        f"  name: {yaml_string(name)}\n"
        f"  namespace: {yaml_string(namespace)}\n"
        "spec:\n"
        "  podSelector:\n"
        "    matchLabels:\n"
        f"      app: <{pods}>\n"
        "  policyTypes:\n"
        f"  - {direction}\n"
        f"  {direction.lower()}:\n"
        f"  - {peers}:\n"
        "    - ipBlock:\n"
        f"        cidr: <{cidr}>\n"
        "    ports:\n"
        "    - protocol: TCP\n"
        f"      port: <{port}>\n"
    )


def guard_denied(namespace: str, policy: str, operation: str, services: Iterable[str], *,
                 rule: str, direction: str = "Ingress") -> str:
    word = direction.lower()
    verb = "deleted" if operation == "DELETE" else f"changed to stop denying {word} by default"
    services = list(services)
    first = fit(f"NetworkPolicy {{0}}/{{1}} cannot be {verb}: it is the last default-deny {word} "
                f"policy in namespace {{0}}, and {len(services)} LoadBalancer Service(s) depend on it.",
                namespace, policy)
    why = " (egress.required in netguard's configuration)" if direction == "Egress" else ""
    fix = (f"They are: {listing(services)}{why}. To remove it, first change those Services to another "
           f"type or delete them, or create another default-deny {word} policy in the namespace, "
           f"such as:\n{default_deny_yaml(namespace, direction)}")
    return denial(first, fix, rule)


def guard_summary(namespace: str, policy: str, count: int, direction: str = "Ingress") -> str:
    return (f"NetworkPolicy {namespace}/{policy}: the last default-deny {direction.lower()}; "
            f"{count} LoadBalancer(s) depend on it")


def cluster_guard_denied(policy: str, operation: str, namespaces: list[str], services: int,
                         cancels: bool, *, rule: str, directions: tuple[str, ...] = INGRESS_ONLY,
                         dns: DnsTarget | None = None) -> str:
    """A cluster-wide or CNI policy whose change would leave namespaces with LoadBalancers open
    to outside traffic, or (`directions` with Egress: egress.required) their pods' egress open to
    outside addresses (webhook/core/clusterguard.py)."""
    verb = {"DELETE": "deleted", "CREATE": "created"}.get(operation, "changed so")
    if directions == ("Egress",):
        what = ("it would let their pods reach every outside address" if cancels
                else "it would leave their pods' egress to outside the cluster without a default-deny")
    else:
        what = ("it would admit every outside address there" if cancels
                else "it is the last policy isolating them from outside the cluster")
    first = fit(f"{{0}} cannot be {verb}: {what}, and {services} LoadBalancer Service(s) in "
                f"namespace(s) {{1}} depend on it.", policy, listing(namespaces))
    why = " (egress.required in netguard's configuration)" if "Egress" in directions else ""
    fix = (f"First give each of those namespaces a default-deny {directions_words(directions)} NetworkPolicy "
           f"of its own{why} (or change the Services to another type), such as:\n"
           f"{default_deny_fix_yaml(namespaces[0], directions, dns or DnsTarget())}")
    return denial(first, fix, rule)


def cluster_guard_summary(policy: str, namespaces: list[str], services: int,
                          directions: tuple[str, ...] = INGRESS_ONLY) -> str:
    what = "from outside the cluster" if directions == INGRESS_ONLY else \
        f"({directions_words(directions)}) from outside the cluster"
    return (f"{policy}: isolates namespace(s) {listing(namespaces)} {what}; "
            f"{services} LoadBalancer(s) depend on it")


# --------------------------------------------------------------------------- required-labels

def labels_denied(kind: str, namespace: str, name: str, missing: list[str], copied: Iterable[str], *,
                  rule: str) -> str:
    copied = [k for k in copied if k in missing]
    first = fit(f"{kind} {{0}}/{{1}} was refused: it lacks the required label(s) {{2}}.",
                namespace, name, ", ".join(missing))
    hint = (f"netguard copies {', '.join(copied)} from the namespace's labels when the namespace has "
            "them; label the namespace or the object. " if copied else "")
    example = "".join(f"    {key}: <value>\n" for key in missing)
    fix = f"{hint}Add them to the object's metadata:\nmetadata:\n  labels:\n{example}"
    return denial(first, fix, rule)


def labels_summary(kind: str, namespace: str, name: str, missing: list[str]) -> str:
    return f"{kind} {namespace}/{name}: lacks required label(s) {', '.join(missing)}"


def existing_labels_summary(kind: str, namespace: str, name: str, missing: list[str]) -> str:
    return f"{kind} {namespace}/{name}: existing violation: lacks required label(s) {', '.join(missing)}"


# --------------------------------------------------------------------------- cluster state unknown


def state_unknown(kind: str, namespace: str, name: str, why: str, *, rule: str) -> str:
    first = fit(f"{kind} {{0}}/{{1}} was refused: netguard could not confirm the NetworkPolicies of "
                "namespace {0}, and it fails closed.", namespace, name)
    fix = (f"Why: {why}. netguard refuses what it cannot check (failureMode: closed). "
           "Retry in a moment; if it persists, check netguard's connection to the API server.")
    return denial(first, fix, rule)


def state_unknown_warning(kind: str, namespace: str, name: str) -> str:
    return (f"{kind} {namespace}/{name}: allowed unchecked: netguard could not confirm the policies "
            "of its namespace (failureMode: open)")
