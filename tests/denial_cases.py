"""LoadBalancer Services whose denial offers the allow policy `netguard fix` writes, row by row
with the API reference each row rests on: shared by tests/core/test_denial_allow.py (the
decision) and tests/cli/test_check_denial_allow.py (the round trip through `netguard check`).

SVC: https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec
NP:  https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from webhook.core.config import parse_settings
from webhook.core.settings import Settings, default_settings

SVC = "https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec"
NP = "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/"
EGRESS = "egress: {required: true}\n"
DENY_IN = {"podSelector": {}, "policyTypes": ["Ingress"]}


class Case(NamedTuple):
    cited: str
    spec: dict[str, Any]  # the Service's spec besides type and selector
    ports: list[tuple[str, Any]]  # (protocol, port) the allow policy opens
    cidrs: list[str]  # its ipBlock peers
    config: str = ""  # netguard's configuration
    state: tuple[dict[str, Any], ...] = ()  # the namespace's policies besides
    operation: str = "CREATE"  # UPDATE: from ClusterIP to LoadBalancer

    def settings(self) -> Settings:
        return parse_settings(self.config, "netguard.yaml") if self.config else default_settings()


EVERY = ["0.0.0.0/0", "::/0"]
CASES = {
    "port-without-targetPort": Case(SVC + " ports.targetPort (defaults to port)",
                                    {"ports": [{"port": 443}]}, [("TCP", 443)], EVERY),
    "targetPort-number": Case(SVC + " ports.targetPort", {"ports": [{"port": 80, "targetPort": 8080}]},
                              [("TCP", 8080)], EVERY),
    "named-targetPort-kept": Case(NP + "#NetworkPolicySpec ingress.ports.port (a named port on a pod)",
                                  {"ports": [{"port": 80, "targetPort": "http"}]}, [("TCP", "http")], EVERY),
    "udp": Case(SVC + " ports.protocol", {"ports": [{"port": 53, "protocol": "UDP"}]}, [("UDP", 53)], EVERY),
    "sctp-named": Case(NP + "#NetworkPolicyPort protocol (TCP, UDP or SCTP)",
                       {"ports": [{"port": 9000, "protocol": "SCTP", "targetPort": "sig"}]},
                       [("SCTP", "sig")], EVERY),
    "tcp-and-udp-on-one-number": Case(SVC + " ports.protocol",
                                      {"ports": [{"name": "t", "port": 53}, {"name": "u", "port": 53, "protocol": "UDP"},
                                                 {"name": "again", "port": 5353, "targetPort": 53}]},
                                      [("TCP", 53), ("UDP", 53)], EVERY),
    "source-ranges": Case(SVC + " loadBalancerSourceRanges; " + NP + "#IPBlock",
                          {"ports": [{"port": 443}], "loadBalancerSourceRanges": ["203.0.113.0/24", "2001:db8::/32"],
                           "externalTrafficPolicy": "Local"}, [("TCP", 443)], ["203.0.113.0/24", "2001:db8::/32"]),
    "source-range-with-host-bits": Case(NP + "#IPBlock cidr", {"ports": [{"port": 443}],
                                                              "loadBalancerSourceRanges": ["198.51.100.7/24"]},
                                        [("TCP", 443)], ["198.51.100.0/24"]),
    "dual-stack-without-ranges": Case(SVC + " ipFamilies", {"ports": [{"port": 443}], "ipFamilies": ["IPv6", "IPv4"],
                                                            "ipFamilyPolicy": "RequireDualStack"},
                                      [("TCP", 443)], ["::/0", "0.0.0.0/0"]),
    "ipv6-only": Case(SVC + " ipFamilies", {"ports": [{"port": 443}], "ipFamilies": ["IPv6"]}, [("TCP", 443)], ["::/0"]),
    "egress-required": Case("https://kubernetes.io/docs/concepts/services-networking/network-policies/ "
                            "(replies to allowed connections need no egress rule)",
                            {"ports": [{"port": 80, "targetPort": 8080}]}, [("TCP", 8080)], EVERY, config=EGRESS),
    "egress-required-ingress-deny-present": Case(SVC + " ports", {"ports": [{"port": 80, "targetPort": 8080}]},
                                                 [("TCP", 8080)], EVERY, config=EGRESS,
                                                 state=({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                                         "metadata": {"name": "deny"}, "spec": DENY_IN},)),
    "update-to-loadbalancer": Case(SVC + " type", {"ports": [{"port": 443}]}, [("TCP", 443)], EVERY,
                                   operation="UPDATE"),
}
PARAMS = [pytest.param(name, case, id=name) for name, case in CASES.items()]


def lb(case: Case, ns: str = "shop", name: str = "web", selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "LoadBalancer", "selector": selector or {"app": name, "tier": "front"}, **case.spec}}


def state(case: Case, ns: str = "shop") -> list[dict[str, Any]]:
    return [{**p, "metadata": {**p["metadata"], "namespace": ns}} for p in case.state]
