"""Egress control (docs/design.md, Egress control): which namespaces must be default-deny for
egress as well as for ingress, and what their pods then still need to reach (DNS).

Configured under `egress:` (webhook/core/egressconfig.py reads it). With `required: true`, a
namespace that holds LoadBalancer Services must also have a NetworkPolicy that selects every
pod, has Egress among its effective policyTypes and no egress rules; `namespaceSelector`, a
Kubernetes LabelSelector, narrows that to the namespaces it selects:
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/
(matchLabels and matchExpressions are ANDed; an empty selector selects every namespace).

Off by default: nothing about egress is required then, and every rule answers as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from webhook.core import netpol
from webhook.core.view import NamespaceView

# The DNS service of a kubeadm, kind, GKE, EKS or AKS cluster: CoreDNS pods labelled
# k8s-app=kube-dns in kube-system, serving on UDP and TCP 53 (DNS falls back to TCP for large
# answers: RFC 7766). https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/
DEFAULT_DNS_NAMESPACE = "kube-system"
DEFAULT_DNS_POD_LABELS: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
DEFAULT_DNS_PORTS: tuple[tuple[str, "int | str"], ...] = (("UDP", 53), ("TCP", 53))
# Set by the API server on every namespace since Kubernetes 1.22, and immutable: the one label
# a namespaceSelector can name a namespace by.
# https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class DnsTarget:
    """What pods behind an egress default-deny must still reach: the DNS pods (their namespace
    and labels) and ports, written into the allowance the fix-it YAML carries."""

    namespace: str = DEFAULT_DNS_NAMESPACE
    pod_labels: tuple[tuple[str, str], ...] = DEFAULT_DNS_POD_LABELS
    ports: tuple[tuple[str, "int | str"], ...] = DEFAULT_DNS_PORTS


@dataclass(frozen=True)
class EgressSettings:
    required: bool = False
    # A frozen LabelSelector (netpol.frozen_selector); the empty one selects every namespace.
    namespace_selector: netpol.Selector = ((), ())
    dns: DnsTarget = field(default_factory=DnsTarget)

    def required_in(self, view: NamespaceView) -> bool:
        """Must this namespace be default-deny for egress (when it holds LoadBalancers)?

        A namespace whose labels netguard does not know (`netguard check` without its Namespace
        manifest; a namespace not yet seen) is held to the requirement: the selector may select
        it, and a check must not pass what the server would refuse."""
        if not self.required:
            return False
        return not view.known or netpol.selector_matches(self.namespace_selector, view.labels)

    def label_keys(self) -> tuple[str, ...]:
        """The namespace label keys the selector reads: the live inventory must keep them."""
        if not self.required:
            return ()
        match_labels, expressions = self.namespace_selector
        return tuple(dict.fromkeys([k for k, _ in match_labels] + [e[0] for e in expressions]))


_INGRESS: tuple[str, ...] = (netpol.INGRESS,)
_BOTH: tuple[str, ...] = (netpol.INGRESS, netpol.EGRESS)


def required_directions(view: NamespaceView, settings: EgressSettings) -> tuple[str, ...]:
    """The directions a namespace holding LoadBalancers must be default-deny for: Ingress
    always, Egress too where the configuration requires it."""
    return _BOTH if settings.required_in(view) else _INGRESS


def missing_directions(view: NamespaceView, settings: EgressSettings) -> tuple[str, ...]:
    """The required directions no policy of the namespace denies by default."""
    if not settings.required:  # the usual case, on every LoadBalancer admission: no tuple built
        return () if view.default_deny_policies() else _INGRESS
    return tuple(d for d in required_directions(view, settings) if not view.default_deny_policies(d))

