"""The NetworkPolicies netguard's messages offer, as YAML text that applies as it stands: the
default-deny(s) a LoadBalancer's namespace lacks, the DNS allowance an egress default-deny needs,
and the examples of a narrow allow the guard gives. webhook/core/messages.py puts them in its
texts; `netguard fix` parses the same texts (webhook/core/fixpolicies.py), so the two never differ.

Pure: names in, text out.
"""

from __future__ import annotations

import functools
import json
from typing import Iterable

import yaml

from webhook.core.egress import NAMESPACE_NAME_LABEL, DnsTarget

# What the ingress default-deny is called when its own name is one of the user's policies.
FALLBACK_DENY_NAME = "netguard-default-deny-ingress"
DNS_ALLOWANCE_NAME = "allow-dns-egress"
MAX_NAME = 253  # a NetworkPolicy name is a DNS subdomain


@functools.lru_cache(maxsize=4096)  # PyYAML's pure-Python parse costs ~25 µs; names repeat
def yaml_string(value: str) -> str:
    """`value` as a YAML scalar that reads back as the same string: namespaces such as `123`,
    `true` or `null` are valid Kubernetes names but other types in YAML, so they get quotes."""
    return value if yaml.safe_load(value) == value else json.dumps(value)


def default_deny_name(direction: str, taken: Iterable[str] = ()) -> str:
    """What a default-deny for `direction` is called where the namespace's policies are `taken`."""
    return free_name(f"default-deny-{direction.lower()}", taken, FALLBACK_DENY_NAME if direction == "Ingress" else "")


def default_deny_yaml(namespace: str, direction: str = "Ingress", name: str = "") -> str:
    """A policy that makes `namespace` default-deny for `direction` (Ingress or Egress): it
    selects every pod and allows nothing that way, so only what another policy allows passes."""
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        f"  name: {name or default_deny_name(direction)}\n"
        f"  namespace: {yaml_string(namespace)}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes:\n"
        f"  - {direction}\n"
    )


def dns_allowance_yaml(namespace: str, dns: DnsTarget, name: str = DNS_ALLOWANCE_NAME) -> str:
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
        f"  name: {name}\n"
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




def free_name(wanted: str, taken: Iterable[str], fallback: str = "") -> str:
    """`wanted`, or when a policy of the user's already has that name (applying would replace
    it) `fallback`, else `wanted-2`, `wanted-3`...: deterministic for the same inputs, so the
    denial and `netguard fix` (webhook/core/fixpolicies.py) name a policy alike."""
    taken = set(taken)
    if wanted not in taken:
        return wanted
    candidates = [fallback] if fallback else []
    candidates += [f"{wanted[:MAX_NAME - 4]}-{n}" for n in range(2, len(taken) + 3)]
    return next(c for c in candidates if c not in taken)


def default_deny_fix_yaml(namespace: str, directions: Iterable[str], dns: DnsTarget,
                          taken: Iterable[str] = ()) -> str:
    """The policies that make `namespace` default-deny for `directions`, as one multi-document
    YAML; an egress default-deny comes with the DNS allowance its pods need. Names the
    namespace's policies already have (`taken`) are not reused: applying the text would replace
    that policy. `netguard fix` names them the same way, in the same order."""
    names, docs = set(taken), []
    for direction in directions:
        name = default_deny_name(direction, names)
        names.add(name)
        docs.append(default_deny_yaml(namespace, direction, name))
    if "Egress" in directions:
        docs.append(dns_allowance_yaml(namespace, dns, free_name(DNS_ALLOWANCE_NAME, names)))
    return "---\n".join(docs)


def names_in_the_way(taken: Iterable[str]) -> frozenset[str]:
    """The names of `taken` that `default_deny_fix_yaml` could find in its way (every name it
    tries starts with one of these): its text is the same for them as for all of `taken`. A
    denial's text is kept by them, not by every policy name of the namespace (thousands, in a
    large one, and a new set on every change of it)."""
    return frozenset(name for name in taken if name.startswith(_DENY_FIX_PREFIXES))


_DENY_FIX_PREFIXES = ("default-deny-", FALLBACK_DENY_NAME, DNS_ALLOWANCE_NAME)


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
