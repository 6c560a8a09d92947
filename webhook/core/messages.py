"""The texts people read when netguard refuses or warns.

kubectl, Argo CD and Flux show a denial verbatim after their own prefix; CI annotations, JUnit
failure messages and narrow terminals show its first line. So every denial has one shape
(`denial`):

    what was refused and why, on one line of at most FIRST_LINE_CHARS
    how to fix it, with YAML that can be applied as it stands
    the Flux advice, only when the request comes from Flux (request.from_flux)
    the closing line, the same for every denial (CLOSING)

within MAX_MESSAGE_CHARS in all: the allow policy a LoadBalancer denial offers is shown only when
it fits, else a one-line pointer to `netguard fix` names it.

Every warning is one line of at most outcome.MAX_WARNING_CHARS that starts with the object it
is about (`Service shop/web: ...`): kubectl prints each as `Warning: <text>` on its own line.
Findings of the scans (`netguard audit`) use the same one-line texts.
"""

from __future__ import annotations

import functools

from typing import Iterable, NamedTuple

from webhook.core.egress import DnsTarget
from webhook.core.policytexts import (allow_from_ranges_yaml, allow_to_ranges_yaml, default_deny_fix_yaml,
                                      default_deny_name, default_deny_yaml, names_in_the_way)

MAX_LISTED = 5
FIRST_LINE_CHARS = 200
# A whole denial. kubectl, Argo CD and Flux's Ready condition show it all; a condition message
# holds 32768 bytes (https://pkg.go.dev/k8s.io/apimachinery/pkg/apis/meta/v1#Condition): 4096
# leaves room there for several denials, and keeps one to a screen of text (docs/design.md).
MAX_MESSAGE_CHARS = 4096
# A name is never cut shorter than this in a first line (it ends in "..." then).
SHORTEST_NAME = 8
CLOSING = ("Refused by netguard rule {rule}. `netguard check` gives the same verdicts on manifests "
           "before they are applied.")


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


class AllowOffer(NamedTuple):
    """The allow policy `netguard fix` writes for a LoadBalancer (webhook/core/fixpolicies.py):
    its name, its YAML as fix writes it, and what fix says about it (`warning: Service ...`)."""
    name: str
    text: str
    notes: tuple[str, ...] = ()


def loadbalancer_denied(namespace: str, name: str, operation: str, *, rule: str,
                        from_flux: bool = False, missing: tuple[str, ...] = INGRESS_ONLY,
                        dns: DnsTarget | None = None, labels_unknown: bool = False,
                        not_isolating: Iterable[tuple[str, str]] = (), allow: AllowOffer | None = None,
                        taken: Iterable[str] = ()) -> str:
    """`missing`: the directions the namespace lacks a default-deny for (Ingress, Egress);
    `labels_unknown`: netguard does not know the namespace's labels, so egress.namespaceSelector
    was taken to select it; `not_isolating`: (label, why) of cluster-wide and CNI policies that
    look like isolation but are not (webhook/core/clusterpolicy.py); `allow`: shown after the
    default-deny(s) when the whole denial fits MAX_MESSAGE_CHARS, else named by a pointer;
    `taken`: the names of the namespace's policies, which the offered policies do not reuse
    (kept by those that could be in their way only: policytexts.names_in_the_way).

    Remembered for the same arguments: a denied Service is sent again and again (a GitOps
    controller retrying its sync), and the text took 9 µs of a 13 µs decision."""
    return _loadbalancer_denied(namespace, name, operation, rule, from_flux, tuple(missing), dns,
                                labels_unknown, tuple(not_isolating), allow, names_in_the_way(taken))


@functools.lru_cache(maxsize=1024)
def _loadbalancer_denied(namespace: str, name: str, operation: str, rule: str, from_flux: bool,
                         missing: tuple[str, ...], dns: DnsTarget | None, labels_unknown: bool,
                         not_isolating: tuple[tuple[str, str], ...], allow: AllowOffer | None,
                         taken: frozenset[str]) -> str:
    what = ("Service {0}/{1} cannot change to type LoadBalancer" if operation == "UPDATE"
            else "Service {0}/{1} of type LoadBalancer was refused")
    first = fit(what + ": namespace {0} has no default-deny " + _MISSING[tuple(missing)] + ".",
                namespace, name)
    deny = default_deny_fix_yaml(namespace, missing, dns or DnsTarget(), taken)
    after = []
    if "Egress" in missing:
        after.append(_dns_note(dns or DnsTarget()) + (
            f" netguard does not know the labels of namespace {namespace}, so egress.namespaceSelector "
            "may select it: give netguard check its Namespace manifest." if labels_unknown else ""))
    counted = [f"Not counted: {label} applies to namespace {namespace}, but {why}."
               for label, why in list(not_isolating)[:MAX_LISTED]]
    flux = FLUX_ADVICE if from_flux else ""
    if allow is not None:
        shown = denial(first, f"To fix it, create these NetworkPolicies in namespace {namespace} before the "
                              f"Service, and apply again; the last, {allow.name}, admits the load balancer's "
                              "traffic to the Service's pods (`netguard fix` writes the same as files to "
                              f"commit; allow what else your pods need with further policies):\n{deny}---\n"
                       + allow.text + "".join(f"{line}\n" for line in [*(f"# {n}" for n in allow.notes),
                                                                          *after, *counted]), rule, flux)
        if len(shown) <= MAX_MESSAGE_CHARS:
            return shown
        after.append(f"`netguard fix` on your manifests (or --cluster) writes {allow.name}, the policy that "
                     "admits the load balancer's traffic to the Service's pods: too long to show here.")
    these = "this NetworkPolicy" if missing == INGRESS_ONLY else "these NetworkPolicies"
    fix = (f"To fix it, create {these} in namespace {namespace} before the Service "
           f"(then allow the traffic your pods need with further policies), and apply again:\n{deny}"
           + "".join(f"{line}\n" for line in [*after, *counted]))
    return denial(first, fix, rule, flux)


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


def guard_denied(namespace: str, policy: str, operation: str, services: Iterable[str], *,
                 rule: str, direction: str = "Ingress", taken: Iterable[str] = ()) -> str:
    """`taken`: the names of the namespace's policies (the guarded one among them): the example
    offered is named otherwise, or applying it would change that policy instead."""
    word = direction.lower()
    verb = "deleted" if operation == "DELETE" else f"changed to stop denying {word} by default"
    services = list(services)
    first = fit(f"NetworkPolicy {{0}}/{{1}} cannot be {verb}: it is the last default-deny {word} "
                f"policy in namespace {{0}}, and {len(services)} LoadBalancer Service(s) depend on it.",
                namespace, policy)
    why = " (egress.required in netguard's configuration)" if direction == "Egress" else ""
    fix = (f"They are: {listing(services)}{why}. To remove it, first change those Services to another "
           f"type or delete them, or create another default-deny {word} policy in the namespace, "
           f"such as:\n{default_deny_yaml(namespace, direction, default_deny_name(direction, {policy, *taken}))}")
    return denial(first, fix, rule)


def guard_summary(namespace: str, policy: str, count: int, direction: str = "Ingress") -> str:
    return (f"NetworkPolicy {namespace}/{policy}: the last default-deny {direction.lower()}; "
            f"{count} LoadBalancer(s) depend on it")


def cluster_guard_denied(policy: str, operation: str, namespaces: list[str], services: int,
                         cancels: bool, *, rule: str, directions: tuple[str, ...] = INGRESS_ONLY,
                         dns: DnsTarget | None = None, taken: Iterable[str] = ()) -> str:
    """A cluster-wide or CNI policy whose change would leave namespaces with LoadBalancers open
    to outside traffic, or (`directions` with Egress: egress.required) their pods' egress open to
    outside addresses (webhook/core/clusterguard.py). `taken`: the policy names of the first of
    `namespaces`, whose fix is shown: the policies offered do not reuse them."""
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
           f"{default_deny_fix_yaml(namespaces[0], directions, dns or DnsTarget(), taken)}")
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
