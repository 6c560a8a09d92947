"""What `netguard fix` writes: the NetworkPolicies that get each LoadBalancer Service admitted by
netguard's own rules without warnings (docs/fix.md).

For each namespace holding LoadBalancer Services (exempt namespaces left out: netguard does not
review them):

- the namespace's ingress default-deny, when none of its policies is one: the very policy the
  denial message offers (messages.default_deny_yaml);
- per Service with a selector whose target ports its namespace's policies do not all admit from
  outside the cluster (reachability.unreachable_ports), `netguard-allow-lb-<service>`: it selects
  the Service's pods (spec.selector as podSelector.matchLabels), admits its
  `loadBalancerSourceRanges` as ipBlock peers -- or every address of its ipFamilies when it has
  none -- on its target ports and protocols (webhook/core/podports.py).

- where the configuration requires egress default-deny (`egress.required` and its
  `namespaceSelector`, webhook/core/egress.py) and the namespace has none: the egress default-deny
  and the DNS allowance its pods need, the texts the denial offers (replies to the load
  balancer's traffic need no egress rule: NetworkPolicy allows the replies of allowed
  connections).

Policies that an earlier run of `netguard fix` wrote (`is_fix_output`) are left out of what the
namespace already has: the plan is always the whole output, so a second run over the manifests
plus the first run's output writes the same files.

Pure: object dicts in, a Plan of policy dicts and notes out (webhook/cli/fix.py writes the files).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from webhook.core import labels as labelling
from webhook.core import egress, messages, netpol, podports, reachability
from webhook.core.labels import is_load_balancer
from webhook.core.rules.loadbalancer import NAME as LOADBALANCER_RULE
from webhook.core.rules.loadbalancer import SourceRangesMode
from webhook.core.settings import Settings
from webhook.core.view import NamespaceView, PolicySummary

MANAGED_BY = "app.kubernetes.io/managed-by"  # https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/
MANAGER = "netguard"
FIX_FOR = "fix-for"  # annotation <prefix>/fix-for: what the policy was written for
ALLOW_PREFIX = "netguard-allow-lb-"
FALLBACK_DENY_NAME = "netguard-default-deny-ingress"
MAX_NAME = 253  # a NetworkPolicy name is a DNS subdomain
WARNING, NOTE = "warning", "note"


@dataclass(frozen=True)
class Note:
    """Something the user should read about what was (or was not) written; `text` starts with
    the object it is about, as netguard's warnings do."""

    level: str  # WARNING: the fixed manifests still need the user's attention; NOTE: for information
    namespace: str
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


@dataclass(frozen=True)
class NamespaceFix:
    namespace: str
    services: tuple[str, ...]  # the LoadBalancer Services considered, by name
    policies: tuple[Mapping[str, Any], ...]  # in apply order: the default-deny first
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Plan:
    namespaces: tuple[NamespaceFix, ...]  # sorted by namespace; also those with nothing to write

    @property
    def notes(self) -> tuple[Note, ...]:
        return tuple(n for ns in self.namespaces for n in ns.notes)

    @property
    def policies(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(p for ns in self.namespaces for p in ns.policies)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def _namespace_of(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("namespace") or "default")


def is_fix_output(obj: Mapping[str, Any], prefix: str) -> bool:
    """Whether `obj` is a NetworkPolicy that `netguard fix` wrote (its label and annotation)."""
    metadata = _metadata(obj)
    return (obj.get("kind") == "NetworkPolicy"
            and _mapping(metadata.get("labels")).get(MANAGED_BY) == MANAGER
            and f"{prefix}/{FIX_FOR}" in _mapping(metadata.get("annotations")))


def allow_name(service: str) -> str:
    """`netguard-allow-lb-<service>`: a Service name (a DNS label, at most 63 characters) always
    fits a policy name's 253; a longer one is cut and given a hash, so names stay distinct."""
    name = ALLOW_PREFIX + service
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(service.encode()).hexdigest()[:10]
    return f"{name[:MAX_NAME - 11].rstrip('-.')}-{digest}"


def plan(objects: Iterable[Mapping[str, Any]], settings: Settings) -> Plan:
    """The policies to write for every LoadBalancer Service among `objects` (which also give the
    namespaces' policies, labels and workloads)."""
    prefix = settings.labels.prefix
    services: dict[str, list[Mapping[str, Any]]] = {}
    policies: dict[str, list[Mapping[str, Any]]] = {}
    namespace_labels: dict[str, Mapping[str, str]] = {}
    workloads: list[podports.Workload] = []
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Service" and is_load_balancer(obj):
            services.setdefault(_namespace_of(obj), []).append(obj)
        elif kind == "NetworkPolicy" and not is_fix_output(obj, prefix):
            policies.setdefault(_namespace_of(obj), []).append(obj)
        elif kind == "Namespace":
            namespace_labels[str(_metadata(obj).get("name") or "")] = _mapping(_metadata(obj).get("labels"))
        else:
            found = podports.workload(obj)
            if found is not None:
                workloads.append(found)
    fixes = []
    for ns in sorted(services):
        ordered = sorted(services[ns], key=lambda s: str(_metadata(s).get("name") or ""))
        if ns in settings.exempt_namespaces:
            fixes.append(NamespaceFix(ns, tuple(str(_metadata(s).get("name")) for s in ordered), (), (
                Note(NOTE, ns, f"namespace {ns}: exempt from netguard's rules (exemptNamespaces): "
                               "nothing written"),)))
            continue
        fixes.append(_namespace_fix(ns, ordered, policies.get(ns, []), namespace_labels.get(ns),
                                    workloads, settings))
    return Plan(tuple(fixes))


def _namespace_fix(ns: str, services: list[Mapping[str, Any]], existing: list[Mapping[str, Any]],
                   ns_labels: Mapping[str, str] | None, workloads: list[podports.Workload],
                   settings: Settings) -> NamespaceFix:
    view = NamespaceView(name=ns, policies={p.name: p for p in map(PolicySummary.of, existing)},
                         labels=ns_labels or {}, known=ns_labels is not None)
    taken = {str(_metadata(p).get("name") or "") for p in existing}
    written: list[Mapping[str, Any]] = []
    notes: list[Note] = []
    if not view.default_deny_policies():
        deny = _default_deny(ns, taken, services, ns_labels, settings, notes)
        written.append(deny)
        taken.add(deny["metadata"]["name"])
        view = view.with_policy(deny)
    if netpol.EGRESS in egress.missing_directions(view, settings.egress):
        for policy in _egress_default_deny(ns, taken, services, ns_labels, settings, notes):
            written.append(policy)
            taken.add(policy["metadata"]["name"])
            view = view.with_policy(policy)
    cancelling = view.cancelling_policies()
    if cancelling:
        notes.append(Note(WARNING, ns, f"namespace {ns}: default-deny ingress is cancelled for "
                                       f"{messages.families(view.open_families())} by "
                                       f"{messages.listing(cancelling)} (netguard refuses such a policy "
                                       "while LoadBalancers depend on the default-deny, and warns about "
                                       "LoadBalancers admitted beside one): narrow or remove it; netguard "
                                       "fix does not change your policies"))
        # The allow policies are written as if those were gone: once they are narrowed or
        # removed, the LoadBalancers' traffic must still get through.
        for name in cancelling:
            view = view.without_policy(name)
    for service in services:
        allow = _allow(ns, service, view, taken, workloads, ns_labels, settings, notes)
        if allow is not None:
            written.append(allow)
            taken.add(allow["metadata"]["name"])
    return NamespaceFix(ns, tuple(str(_metadata(s).get("name")) for s in services), tuple(written), tuple(notes))


def _free_name(wanted: str, taken: set[str], ns: str, notes: list[Note], fallback: str = "") -> str:
    """`wanted`, or when a policy of the user's already has that name (applying would replace
    it) `fallback`, else `wanted-2`, `wanted-3`...: deterministic for the same inputs."""
    if wanted not in taken:
        return wanted
    candidates = [fallback] if fallback else []
    candidates += [f"{wanted[:MAX_NAME - 4]}-{n}" for n in range(2, len(taken) + 3)]
    name = next(c for c in candidates if c not in taken)
    notes.append(Note(NOTE, ns, f"NetworkPolicy {ns}/{wanted}: the name is already taken by one of "
                                f"your policies: written as {name}"))
    return name


def _default_deny(ns: str, taken: set[str], services: list[Mapping[str, Any]],
                  ns_labels: Mapping[str, str] | None, settings: Settings, notes: list[Note]) -> dict[str, Any]:
    # The policy the denial message offers, parsed from the same text: the two never differ.
    deny = yaml.safe_load(messages.default_deny_yaml(ns))
    deny["metadata"]["name"] = _free_name(deny["metadata"]["name"], taken, ns, notes, FALLBACK_DENY_NAME)
    notes.append(Note(NOTE, ns, f"NetworkPolicy {ns}/{deny['metadata']['name']}: namespace {ns} had no "
                                "default-deny ingress policy: written (apply it before the Services)"))
    sources = [labelling.metadata_map(s, "labels") for s in services]
    return _labelled(deny, f"namespace {ns}", sources, ns_labels, settings, notes)


def _egress_default_deny(ns: str, taken: set[str], services: list[Mapping[str, Any]],
                         ns_labels: Mapping[str, str] | None, settings: Settings,
                         notes: list[Note]) -> list[dict[str, Any]]:
    """Where the configuration requires egress default-deny (egress.required, its
    namespaceSelector): the egress default-deny and the DNS allowance its pods need, parsed from
    the texts the denial offers (messages.default_deny_fix_yaml)."""
    sources = [labelling.metadata_map(s, "labels") for s in services]
    written = []
    for text, what in ((messages.default_deny_yaml(ns, netpol.EGRESS), "default-deny egress policy"),
                       (messages.dns_allowance_yaml(ns, settings.egress.dns), "DNS allowance for it")):
        policy = yaml.safe_load(text)
        policy["metadata"]["name"] = _free_name(policy["metadata"]["name"], taken | {p["metadata"]["name"] for p in written}, ns, notes)
        notes.append(Note(NOTE, ns, f"NetworkPolicy {ns}/{policy['metadata']['name']}: the configuration requires "
                                    f"egress default-deny in namespace {ns}: {what} written"))
        written.append(_labelled(policy, f"namespace {ns}", sources, ns_labels, settings, notes))
    return written


def _labelled(policy: dict[str, Any], purpose: str, sources: list[Mapping[str, Any]],
              ns_labels: Mapping[str, str] | None, settings: Settings, notes: list[Note]) -> dict[str, Any]:
    """The policy with netguard's labels: managed-by, the policy-type mutation would set (so it
    patches nothing), and every required label (labels.required) that the namespace or all of
    `sources` give one value for."""
    prefix, ns = settings.labels.prefix, policy["metadata"]["namespace"]
    found: dict[str, str] = {MANAGED_BY: MANAGER}
    missing = []
    for key in settings.labels.required:
        if ns_labels and key in ns_labels:
            found[key] = str(ns_labels[key])
            continue
        values = {str(s[key]) for s in sources if key in s}
        if len(values) == 1 and all(key in s for s in sources):
            found[key] = values.pop()
        elif key not in found:
            missing.append(key)
    found[f"{prefix}/{labelling.POLICY_TYPE}"] = labelling.policy_type(policy)
    metadata = policy["metadata"]
    metadata["labels"] = found
    metadata["annotations"] = {f"{prefix}/{FIX_FOR}": purpose}
    if missing:
        notes.append(Note(WARNING, ns, f"NetworkPolicy {ns}/{metadata['name']}: lacks the required "
                                       f"label(s) {', '.join(missing)} (no single value to copy): add "
                                       "them before applying"))
    return policy


def _allow(ns: str, service: Mapping[str, Any], view: NamespaceView, taken: set[str],
           workloads: list[podports.Workload], ns_labels: Mapping[str, str] | None,
           settings: Settings, notes: list[Note]) -> dict[str, Any] | None:
    name = str(_metadata(service).get("name") or "")
    spec = _mapping(service.get("spec"))
    subject = f"Service {ns}/{name}"
    open_option = settings.rule(LOADBALANCER_RULE).source_ranges == SourceRangesMode.WARN
    if open_option and reachability.open_source_ranges(service):
        notes.append(Note(WARNING, ns, reachability.source_ranges_warning(ns, name)
                          + " (rules.loadbalancer-requires-default-deny.sourceRanges: warn; "
                            "netguard fix does not change your Service)"))
    selector = spec.get("selector")
    if not isinstance(selector, Mapping) or not selector:
        notes.append(Note(WARNING, ns, f"{subject}: has no selector, so its pods are not known (its "
                                       "endpoints are managed by hand): no allow policy written; "
                                       "admit its traffic with a policy of your own"))
        return None
    if not reachability.unreachable_ports(service, view):
        notes.append(Note(NOTE, ns, f"{subject}: your policies already admit outside traffic on "
                                    "every target port: no allow policy needed"))
        return None
    ports = podports.target_ports(service, workloads)
    if not ports:
        notes.append(Note(WARNING, ns, f"{subject}: has no ports: no allow policy written"))
        return None
    for port in ports:
        if port.how == podports.RESOLVED:
            notes.append(Note(NOTE, ns, f"{subject}: target port {port.port}/{port.protocol} is {port.detail}"))
        elif not port.resolved:
            notes.append(Note(NOTE, ns, f"{subject}: target port {port.port}/{port.protocol} left as a "
                                        f"named port ({port.detail})"))
    cidrs = _sources(ns, name, spec, notes)
    if not cidrs:
        return None
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": _free_name(allow_name(name), taken, ns, notes), "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {str(k): str(v) for k, v in selector.items()}},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
                "ports": [{"protocol": p.protocol, "port": p.port} for p in ports],
            }],
        },
    }
    return _labelled(policy, subject, [labelling.metadata_map(service, "labels")], ns_labels, settings, notes)


def _sources(ns: str, name: str, spec: Mapping[str, Any], notes: list[Note]) -> list[str]:
    """The ipBlock CIDRs: the Service's loadBalancerSourceRanges in canonical form, or every
    address of its ipFamilies (both families when it names none: the cluster's are unknown)."""
    subject = f"Service {ns}/{name}"
    ranges = spec.get("loadBalancerSourceRanges") or []
    if not ranges:
        families = [f for f in spec.get("ipFamilies") or () if f in netpol.EVERY_ADDRESS]
        cidrs = [str(netpol.EVERY_ADDRESS[f]) for f in families] or [str(n) for n in netpol.EVERY_ADDRESS.values()]
        notes.append(Note(WARNING, ns, f"{subject}: has no loadBalancerSourceRanges: its allow policy "
                                       f"admits every address ({', '.join(cidrs)}); set them to the "
                                       "clients that need it and run netguard fix again"))
        return cidrs
    cidrs: list[str] = []
    for text in ranges:
        try:
            cidr = str(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            notes.append(Note(WARNING, ns, f"{subject}: loadBalancerSourceRanges entry {text!r} is not a "
                                           "CIDR (the API server refuses it): left out"))
            continue
        if cidr != str(text).strip():
            notes.append(Note(NOTE, ns, f"{subject}: loadBalancerSourceRanges entry {text} written as {cidr}"))
        if cidr not in cidrs:
            cidrs.append(cidr)
    if not cidrs:
        notes.append(Note(WARNING, ns, f"{subject}: no usable loadBalancerSourceRanges: no allow policy written"))
    elif str(spec.get("externalTrafficPolicy") or "Cluster") != "Local":
        notes.append(Note(NOTE, ns, f"{subject}: the ipBlocks name the clients' addresses, which reach the "
                                    "pods only where the source address is kept: with "
                                    "externalTrafficPolicy Cluster (the default) it may be a node's "
                                    "(docs/fix.md, Source addresses)"))
    return cidrs
