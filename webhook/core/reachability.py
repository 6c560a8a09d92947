"""Would a LoadBalancer's traffic get through? Warnings for what netguard can see in advance.

Behind a default-deny, a LoadBalancer Service only works if some policy selecting its pods
admits traffic from outside the cluster on the Service's target ports. Pure functions over the
Service dict and the namespace's policy summaries.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping  # not typing's: isinstance on it is slow
from typing import Any

from webhook.core import netpol
from webhook.core.kept import keep
from webhook.core.outcome import MAX_WARNING_CHARS
from webhook.core.view import NamespaceView

EVERYWHERE = ("0.0.0.0/0", "::/0")


def target_ports(service: Mapping[str, Any]) -> list[tuple[str, int | str]]:
    """(protocol, target port) of each Service port; targetPort defaults to port."""
    return _target_ports(netpol.spec_of(service))


def _target_ports(spec: Mapping[str, Any]) -> list[tuple[str, int | str]]:
    found = []
    for p in spec.get("ports") or ():
        if type(p) is dict or isinstance(p, Mapping):  # the ABC test alone is slow
            target = p.get("targetPort", p.get("port"))
            if target is not None:
                found.append((str(p.get("protocol") or "TCP"), target))
    return found


def unreachable_ports(service: Mapping[str, Any], view: NamespaceView) -> list[str]:
    """Target ports no policy selecting the Service's pods admits outside traffic on.

    Empty when the Service has no selector (its endpoints are managed by hand, so its pods are
    unknown) or when every target port is admitted.
    """
    spec = netpol.spec_of(service)
    selector = spec.get("selector")
    if view.cluster_may_allow():
        return []  # their allows name ports netguard does not compare (docs/clusterpolicies.md)
    if not selector or not (type(selector) is dict or isinstance(selector, Mapping)):
        return []
    ports = _target_ports(spec)
    key = (id(view), tuple(selector.items()), tuple(ports))
    try:
        known = _ANSWERS.get(key)
    except TypeError:  # a list or map where a label value or port belongs: not hashable
        return list(_unreachable(selector, ports, view))
    if known is None or known[0]() is not view:  # an id is only unique while its view lives
        known = keep(_ANSWERS, key, (weakref.ref(view), _unreachable(selector, ports, view)), ANSWERS_KEPT)
    return list(known[1])


# Answers already worked out, per view: every re-apply of a LoadBalancer (a GitOps sync) asks the
# same question of the same view. Kept beside the views, not in them (views are values); a view
# never changes, so neither does an answer worked out from it. Bounded, and each entry refers to
# its view weakly: superseded views are not kept alive, and a later view that gets a dead one's id
# finds a dead reference, not the dead view's answer. Threads that race here store equal answers.
ANSWERS_KEPT = 256
_ANSWERS: dict[tuple, tuple[weakref.ref[NamespaceView], tuple[str, ...]]] = {}


def _unreachable(selector: Mapping[str, Any], ports: list[tuple[str, int | str]],
                 view: NamespaceView) -> tuple[str, ...]:
    labels = {str(k): str(v) for k, v in selector.items()}
    rules = [rule for policy in view.policies.values() if policy.external_ingress
             and netpol.selector_matches(policy.pod_selector, labels)
             for rule in policy.external_ingress]
    return tuple(f"{port}/{protocol}" for protocol, port in ports
                 if not netpol.port_admitted(rules, protocol, port))


def unreachable_warning(namespace: str, name: str, ports: list[str]) -> str:
    """The warning for ports no policy opens: it points to `netguard fix`, which writes the
    policy that opens them, where the pointer fits MAX_WARNING_CHARS (else it says the traffic
    will be dropped, and is cut to fit as every warning is)."""
    what = f"Service {namespace}/{name}: no NetworkPolicy admits outside traffic to its pods on {', '.join(ports)}"
    pointed = f"{what} (netguard fix writes one)"
    return pointed if len(pointed) <= MAX_WARNING_CHARS else f"{what}; it will be dropped"


def open_source_ranges(service: Mapping[str, Any]) -> bool:
    """No loadBalancerSourceRanges, or one that admits every address."""
    ranges = netpol.spec_of(service).get("loadBalancerSourceRanges") or []
    return not ranges or any(str(r).strip() in EVERYWHERE for r in ranges)


def source_ranges_warning(namespace: str, name: str) -> str:
    return (f"Service {namespace}/{name}: open to every address; "
            "set spec.loadBalancerSourceRanges to the clients that need it")
