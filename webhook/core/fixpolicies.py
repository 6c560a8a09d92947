"""The NetworkPolicies `netguard fix` writes for one namespace, and the allow policy a denial
offers for one LoadBalancer Service: one generator for both (docs/fix.md).

For a namespace holding LoadBalancer Services (`namespace_fix`):

- the namespace's ingress default-deny, when none of its policies is one: the very policy the
  denial message offers (policytexts.default_deny_yaml);
- where the configuration requires egress default-deny (`egress.required` and its
  `namespaceSelector`, webhook/core/egress.py) and the namespace has none: the egress default-deny
  and the DNS allowance its pods need, the texts the denial offers (replies to the load
  balancer's traffic need no egress rule: NetworkPolicy allows the replies of allowed
  connections);
- per Service with a selector whose target ports its namespace's policies do not all admit from
  outside the cluster (reachability.unreachable_ports), `netguard-allow-lb-<service>`: it selects
  the Service's pods (spec.selector as podSelector.matchLabels), admits its
  `loadBalancerSourceRanges` as ipBlock peers -- or every address of its ipFamilies when it has
  none -- on its target ports and protocols (webhook/core/podports.py).

`offer` is what a denial of one LoadBalancer shows: the same plan for that Service alone, from
what admission sees (the Service and its namespace's view, no workloads: a named target port
stays a name, which a NetworkPolicy port may be), rendered as `netguard fix` renders it.

Pure: dicts and a view in, policy dicts and notes out.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson
import yaml

from webhook.core import labels as labelling
from webhook.core import egress, messages, netpol, podports, policytexts, reachability, yamltext
from webhook.core.egress import EgressSettings
from webhook.core.kept import keep
from webhook.core.options import LabelSettings
from webhook.core.view import NamespaceView

MANAGED_BY = "app.kubernetes.io/managed-by"  # https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/
MANAGER = "netguard"
FIX_FOR = "fix-for"  # annotation <prefix>/fix-for: what the policy was written for
ALLOW_PREFIX = "netguard-allow-lb-"
FALLBACK_DENY_NAME, MAX_NAME = policytexts.FALLBACK_DENY_NAME, policytexts.MAX_NAME
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
class FixSettings:
    """What the fix reads of the configuration: the label settings (prefix, required), the
    egress settings, and whether a LoadBalancer open to every address is warned about
    (rules.loadbalancer-requires-default-deny.sourceRanges: warn)."""

    labels: LabelSettings = field(default_factory=LabelSettings)
    egress: EgressSettings = field(default_factory=EgressSettings)
    warn_open_ranges: bool = False
    # Part of every offer's cache key, so hashed on every denial: the generated hash walked the
    # label and egress settings, dataclass by dataclass, each time. Frozen, so hashed once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.labels, self.egress, self.warn_open_ranges)))

    def __hash__(self) -> int:
        return self._hash


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name_of(obj: Mapping[str, Any]) -> str:
    return str(_mapping(obj.get("metadata")).get("name") or "")


def allow_name(service: str) -> str:
    """`netguard-allow-lb-<service>`: a Service name (a DNS label, at most 63 characters) always
    fits a policy name's 253; a longer one is cut and given a hash, so names stay distinct."""
    name = ALLOW_PREFIX + service
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(service.encode()).hexdigest()[:10]
    return f"{name[:MAX_NAME - 11].rstrip('-.')}-{digest}"


def offer(service: Mapping[str, Any], view: NamespaceView, settings: FixSettings) -> messages.AllowOffer | None:
    """The allow policy `netguard fix` writes for `service` behind the default-deny(s) its
    namespace lacks, with the notes about it, as a denial shows it; None when it needs none (or
    gets none: no selector, no ports, no usable ranges)."""
    if len(view.policies) > OFFER_VIEW_POLICIES:
        # Its key would hold the view's fingerprint, a frozenset of every policy: 256 of those
        # from a large namespace's superseded views are megabytes. Made each time instead.
        return _offer(service, view, settings)
    metadata = _mapping(service.get("metadata"))
    try:  # orjson: the key is made on every denial, and json.dumps took most of a cached offer's time
        canonical = orjson.dumps([metadata.get("name"), metadata.get("labels"), service.get("spec")],
                                 option=orjson.OPT_SORT_KEYS, default=str)
        # A large Service (source ranges, ports: up to megabytes) is kept under a digest, 256 of
        # them being too much to hold; a small one under its JSON, which costs nothing more to
        # make (a digest took a third of a kept offer's time). A tuple never equals bytes.
        ident = canonical if len(canonical) <= OFFER_KEY_BYTES else (
            len(canonical), hashlib.blake2b(canonical, digest_size=16).digest())
        key = (ident, view.fingerprint, view.name, settings)
        return _OFFERS[key]
    except TypeError:  # keys of mixed types (from YAML, for check), or past 64-bit ints: made each time
        return _offer(service, view, settings)
    except KeyError:
        pass
    made = _offer(service, view, settings)
    if made is not None and len(made.text) > messages.MAX_MESSAGE_CHARS:
        return made  # too long for any denial to show: not worth keeping
    return keep(_OFFERS, key, made, OFFERS_KEPT)


# Offers already made: a denied Service is sent again and again (a GitOps sync retries it), and
# rendering a policy with PyYAML's pure-Python emitter costs ~0.4 ms. Bounded; an offer is a
# value, and the key holds all it is made from. Threads that race here store equal offers.
OFFERS_KEPT = 256
OFFER_KEY_BYTES = 2048
# Offers are kept for views of at most this many policies (a denied Service's namespace has no
# default-deny, and seldom many policies); each kept key then holds at most a few KiB.
OFFER_VIEW_POLICIES = 64
_OFFERS: dict[tuple, messages.AllowOffer | None] = {}


def _offer(service: Mapping[str, Any], view: NamespaceView, settings: FixSettings) -> messages.AllowOffer | None:
    planned = namespace_fix(view, [service], None, settings)
    subject = f"Service {view.name}/{_name_of(service)}"
    key = f"{settings.labels.prefix}/{FIX_FOR}"
    allow = next((p for p in planned.policies if p["metadata"]["annotations"].get(key) == subject), None)
    if allow is None:
        return None
    name = allow["metadata"]["name"]
    about = (f"{subject}: ", f"NetworkPolicy {view.name}/{name}: ",  # and the name it could not have:
             f"NetworkPolicy {view.name}/{allow_name(_name_of(service))}: ")
    return messages.AllowOffer(name, yamltext.dump(dict(allow)),
                               tuple(str(n) for n in planned.notes if n.text.startswith(about)))


def namespace_fix(view: NamespaceView, services: list[Mapping[str, Any]],
                  workloads: Iterable[podports.Workload] | None, settings: FixSettings) -> NamespaceFix:
    """What to write in the namespace of `view` (its policies are what it already has) for its
    LoadBalancer `services`; `workloads` resolve named target ports (None: none are known)."""
    ns = view.name
    ns_labels = view.labels if view.known else None
    workloads = None if workloads is None else list(workloads)
    taken = set(view.policies)
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
    return NamespaceFix(ns, tuple(_name_of(s) for s in services), tuple(written), tuple(notes))


def _parsed(text: str) -> dict[str, Any]:
    """`text` parsed, a fresh copy each time (the caller labels it)."""
    return copy.deepcopy(_parse(text))


@functools.lru_cache(maxsize=1024)  # PyYAML's pure-Python parse of a policy costs ~0.3 ms
def _parse(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def _free_name(wanted: str, taken: set[str], ns: str, notes: list[Note], fallback: str = "") -> str:
    """policytexts.free_name, with a note when the name had to change."""
    name = policytexts.free_name(wanted, taken, fallback)
    if name == wanted:
        return name
    notes.append(Note(NOTE, ns, f"NetworkPolicy {ns}/{wanted}: the name is already taken by one of "
                                f"your policies: written as {name}"))
    return name


def _default_deny(ns: str, taken: set[str], services: list[Mapping[str, Any]],
                  ns_labels: Mapping[str, str] | None, settings: FixSettings, notes: list[Note]) -> dict[str, Any]:
    # The policy the denial message offers, parsed from the same text: the two never differ.
    deny = _parsed(policytexts.default_deny_yaml(ns))
    deny["metadata"]["name"] = _free_name(deny["metadata"]["name"], taken, ns, notes, FALLBACK_DENY_NAME)
    notes.append(Note(NOTE, ns, f"NetworkPolicy {ns}/{deny['metadata']['name']}: namespace {ns} had no "
                                "default-deny ingress policy: written (apply it before the Services)"))
    sources = [labelling.metadata_map(s, "labels") for s in services]
    return _labelled(deny, f"namespace {ns}", sources, ns_labels, settings, notes)


def _egress_default_deny(ns: str, taken: set[str], services: list[Mapping[str, Any]],
                         ns_labels: Mapping[str, str] | None, settings: FixSettings,
                         notes: list[Note]) -> list[dict[str, Any]]:
    """Where the configuration requires egress default-deny (egress.required, its
    namespaceSelector): the egress default-deny and the DNS allowance its pods need, parsed from
    the texts the denial offers (policytexts.default_deny_fix_yaml)."""
    sources = [labelling.metadata_map(s, "labels") for s in services]
    written = []
    for text, what in ((policytexts.default_deny_yaml(ns, netpol.EGRESS), "default-deny egress policy"),
                       (policytexts.dns_allowance_yaml(ns, settings.egress.dns), "DNS allowance for it")):
        policy = _parsed(text)
        policy["metadata"]["name"] = _free_name(policy["metadata"]["name"], taken | {p["metadata"]["name"] for p in written}, ns, notes)
        notes.append(Note(NOTE, ns, f"NetworkPolicy {ns}/{policy['metadata']['name']}: the configuration requires "
                                    f"egress default-deny in namespace {ns}: {what} written"))
        written.append(_labelled(policy, f"namespace {ns}", sources, ns_labels, settings, notes))
    return written


def _labelled(policy: dict[str, Any], purpose: str, sources: list[Mapping[str, Any]],
              ns_labels: Mapping[str, str] | None, settings: FixSettings, notes: list[Note]) -> dict[str, Any]:
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
           workloads: list[podports.Workload] | None, ns_labels: Mapping[str, str] | None,
           settings: FixSettings, notes: list[Note]) -> dict[str, Any] | None:
    name = _name_of(service)
    spec = _mapping(service.get("spec"))
    subject = f"Service {ns}/{name}"
    if settings.warn_open_ranges and reachability.open_source_ranges(service):
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
