"""webhook/core/fix.py and webhook/core/podports.py: what `netguard fix` writes, decided row by row
against the Kubernetes API reference each row cites.

SVC: https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec
NP:  https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/
POD: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from webhook.core import decide, fix, labels, messages, netpol, podports
from webhook.core.config import parse_settings
from webhook.core.settings import default_settings
from webhook.core.view import PolicySummary
from tests.reviews import make_request, view_of

SVC = "https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec"
NP = "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/"
POD = "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports"


def lb(name: str = "web", ns: str = "shop", ports: Any = ({"port": 80, "targetPort": 8080},),
       selector: Any = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "LoadBalancer", "selector": {"app": name} if selector is None else selector,
                     "ports": list(ports), **spec}}


def deployment(name: str = "web", ns: str = "shop", app: str = "web", ports: Any = (),
               kind: str = "Deployment", api_version: str = "apps/v1") -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": app, "tier": "front"}},
                "spec": {"containers": [{"name": "c", "image": "x", "ports": list(ports)}]}}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, **template["metadata"]},
                "spec": template["spec"]}
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"jobTemplate": {"spec": {"template": template}}}
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def policy(name: str, spec: dict[str, Any], ns: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


DENY = {"podSelector": {}, "policyTypes": ["Ingress"]}
HTTP = {"name": "http", "containerPort": 8080}


def ports_of(service, *objects) -> list[tuple[str, Any, str]]:
    workloads = [w for w in map(podports.workload, objects) if w is not None]
    return [(p.protocol, p.port, p.how) for p in podports.target_ports(service, workloads)]


# --------------------------------------------------------------------------- target ports

TARGET_PORT_ROWS = [
    # (why, cited, Service ports, workloads, expected (protocol, port, how))
    ("targetPort absent: the value of the 'port' field is used (an identity map)", SVC + " ports.targetPort",
     [{"port": 443}], [], [("TCP", 443, podports.IDENTITY)]),
    ("a number is the pods' port", SVC + " ports.targetPort",
     [{"port": 80, "targetPort": 8080}], [], [("TCP", 8080, podports.NUMBER)]),
    ("protocol defaults to TCP; UDP kept", SVC + " ports.protocol",
     [{"port": 53, "protocol": "UDP"}], [], [("UDP", 53, podports.IDENTITY)]),
    ("a name is looked up in the target Pod's container ports", SVC + " ports.targetPort; " + POD,
     [{"port": 80, "targetPort": "http"}], [deployment(ports=[HTTP])], [("TCP", 8080, podports.RESOLVED)]),
    ("a StatefulSet's pod template counts too", SVC + " ports.targetPort",
     [{"port": 80, "targetPort": "http"}], [deployment(ports=[HTTP], kind="StatefulSet")],
     [("TCP", 8080, podports.RESOLVED)]),
    ("a bare Pod's own ports", SVC + " ports.targetPort",
     [{"port": 80, "targetPort": "http"}], [deployment(ports=[HTTP], kind="Pod", api_version="v1")],
     [("TCP", 8080, podports.RESOLVED)]),
    ("a CronJob's job template", SVC + " ports.targetPort",
     [{"port": 80, "targetPort": "http"}], [deployment(ports=[HTTP], kind="CronJob", api_version="batch/v1")],
     [("TCP", 8080, podports.RESOLVED)]),
    ("a container port's protocol defaults to TCP: a UDP Service port does not match it", POD + " protocol",
     [{"port": 53, "targetPort": "http", "protocol": "UDP"}], [deployment(ports=[HTTP])],
     [("UDP", "http", podports.KEPT_NAME)]),
    ("no workload the selector selects: the name is kept (NetworkPolicyPort.port may be a named port)",
     NP + "#NetworkPolicySpec ingress.ports.port", [{"port": 80, "targetPort": "http"}],
     [deployment(app="other", ports=[HTTP])], [("TCP", "http", podports.KEPT_NAME)]),
    ("a workload of another namespace is not the Service's", SVC + " selector",
     [{"port": 80, "targetPort": "http"}], [deployment(ns="elsewhere", ports=[HTTP])],
     [("TCP", "http", podports.KEPT_NAME)]),
    ("two workloads number the name differently: kept, looked up per pod", NP + "#NetworkPolicySpec ingress.ports.port",
     [{"port": 80, "targetPort": "http"}],
     [deployment(ports=[HTTP]), deployment(name="web2", ports=[{"name": "http", "containerPort": 9090}])],
     [("TCP", "http", podports.KEPT_NAME)]),
    ("two Service ports on one target port: opened once", SVC + " ports",
     [{"port": 80, "targetPort": 8080, "name": "a"}, {"port": 8080, "name": "b"}], [],
     [("TCP", 8080, podports.NUMBER)]),
    ("the same number over TCP and UDP: both", SVC + " ports.protocol",
     [{"port": 53, "name": "t"}, {"port": 53, "protocol": "UDP", "name": "u"}], [],
     [("TCP", 53, podports.IDENTITY), ("UDP", 53, podports.IDENTITY)]),
]


@pytest.mark.parametrize("why, cited, ports, workloads, expected", TARGET_PORT_ROWS,
                         ids=[row[0] for row in TARGET_PORT_ROWS])
def test_target_ports(why, cited, ports, workloads, expected):
    assert cited.startswith("https://kubernetes.io/docs/reference/kubernetes-api/")
    assert ports_of(lb(ports=ports), *workloads) == expected


def test_named_port_detail_says_why_it_was_kept():
    [port] = podports.target_ports(lb(ports=[{"port": 80, "targetPort": "web"}]),
                                   [podports.workload(deployment(ports=[HTTP]))])
    assert port.detail == "no container of Deployment shop/web has a port named web over TCP"


def test_a_resolved_named_port_is_noted():
    service = lb(ports=[{"port": 80, "targetPort": "http"}])
    notes = [n.text for n in fix.plan([service, deployment(ports=[HTTP])], default_settings()).notes]
    assert ("Service shop/web: target port 8080/TCP is the container port named http in Deployment "
            "shop/web") in notes


def test_objects_without_a_pod_template_are_no_workloads():
    assert podports.workload({"apiVersion": "v1", "kind": "ConfigMap"}) is None
    # A Deployment of another group is not apps' Deployment.
    assert podports.workload({"apiVersion": "example.com/v1", "kind": "Deployment"}) is None


# --------------------------------------------------------------------------- sources

def allow_of(service, *others, settings=None) -> dict[str, Any]:
    found = fix.plan([service, *others], settings or default_settings()).policies
    [allow] = [p for p in found if p["metadata"]["name"].startswith(fix.ALLOW_PREFIX)]
    return allow


def cidrs(policy: dict[str, Any]) -> list[str]:
    [rule] = policy["spec"]["ingress"]
    return [peer["ipBlock"]["cidr"] for peer in rule["from"]]


SOURCE_ROWS = [
    # (why, cited, Service spec fields, expected CIDRs)
    ("loadBalancerSourceRanges become ipBlock peers", SVC + " loadBalancerSourceRanges; " + NP + "#IPBlock",
     {"loadBalancerSourceRanges": ["203.0.113.0/24", "2001:db8::/32"]}, ["203.0.113.0/24", "2001:db8::/32"]),
    ("a range with host bits is written in canonical form", NP + "#IPBlock cidr",
     {"loadBalancerSourceRanges": ["203.0.113.7/24"]}, ["203.0.113.0/24"]),
    ("a repeated range once", NP + "#IPBlock cidr",
     {"loadBalancerSourceRanges": ["10.0.0.0/8", " 10.0.0.0/8"]}, ["10.0.0.0/8"]),
    ("an entry that is no CIDR is left out", SVC + " loadBalancerSourceRanges",
     {"loadBalancerSourceRanges": ["office", "10.0.0.0/8"]}, ["10.0.0.0/8"]),
    ("no ranges and no ipFamilies: every address of both families", SVC + " ipFamilies",
     {}, ["0.0.0.0/0", "::/0"]),
    ("no ranges, IPv6 only: every IPv6 address", SVC + " ipFamilies",
     {"ipFamilies": ["IPv6"]}, ["::/0"]),
    ("no ranges, dual-stack: both, in the Service's order", SVC + " ipFamilies",
     {"ipFamilies": ["IPv6", "IPv4"]}, ["::/0", "0.0.0.0/0"]),
]


@pytest.mark.parametrize("why, cited, fields, expected", SOURCE_ROWS, ids=[row[0] for row in SOURCE_ROWS])
def test_sources(why, cited, fields, expected):
    assert cited.startswith("https://kubernetes.io/docs/reference/kubernetes-api/")
    assert cidrs(allow_of(lb(**fields))) == expected


def test_every_address_is_warned_about():
    notes = fix.plan([lb()], default_settings()).notes
    assert fix.Note(fix.WARNING, "shop", "Service shop/web: has no loadBalancerSourceRanges: its allow "
                    "policy admits every address (0.0.0.0/0, ::/0); set them to the clients that need "
                    "it and run netguard fix again") in notes


def test_only_invalid_ranges_write_no_allow():
    found = fix.plan([lb(loadBalancerSourceRanges=["office"])], default_settings())
    assert [p["metadata"]["name"] for p in found.policies] == ["default-deny-ingress"]
    assert any("no usable loadBalancerSourceRanges" in n.text for n in found.notes)


def test_client_ranges_without_local_traffic_policy_get_a_note():
    def said(**fields):
        return any("externalTrafficPolicy" in n.text for n in fix.plan([lb(**fields)], default_settings()).notes)

    assert said(loadBalancerSourceRanges=["10.0.0.0/8"])
    assert not said(loadBalancerSourceRanges=["10.0.0.0/8"], externalTrafficPolicy="Local")
    assert not said()  # every address: the node's too


# --------------------------------------------------------------------------- the allow policy


def test_the_allow_policy_selects_the_pods_on_the_target_ports():
    service = lb(ports=[{"port": 80, "targetPort": "http"}, {"port": 443, "targetPort": 8443}],
                 selector={"app": "web", "tier": "front"}, loadBalancerSourceRanges=["10.0.0.0/8"])
    allow = allow_of(service, deployment(ports=[HTTP]))
    assert allow["metadata"]["name"] == "netguard-allow-lb-web"
    assert allow["spec"] == {
        "podSelector": {"matchLabels": {"app": "web", "tier": "front"}},  # SVC selector
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
                     "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8443}]}],
    }


def test_labels_are_netguards_and_what_mutation_would_set():
    allow = allow_of(lb())
    assert allow["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "netguard",
                                           "netguard/policy-type": labels.policy_type(allow)}
    assert allow["metadata"]["annotations"] == {"netguard/fix-for": "Service shop/web"}
    assert fix.is_fix_output(allow, "netguard")
    # Mutation patches nothing: the labels already reflect the spec.
    assert labels.desired_changes("NetworkPolicy", allow, "netguard", (), {}) == {}


def test_the_configured_prefix_is_used():
    settings = parse_settings("labels: {prefix: guard.example.com}\n", "netguard.yaml")
    allow = allow_of(lb(), settings=settings)
    assert allow["metadata"]["labels"]["guard.example.com/policy-type"] == "allow"
    assert fix.is_fix_output(allow, "guard.example.com") and not fix.is_fix_output(allow, "netguard")


def test_the_allow_policy_neither_cancels_nor_is_a_default_deny():
    # NP: podSelector selects the Service's pods only, so it admits nothing to the other pods.
    spec = allow_of(lb())["spec"]
    assert netpol.opens_every_outside_address(spec) == frozenset()
    assert netpol.default_deny_directions(spec) == frozenset()


def test_a_service_without_selector_gets_no_allow_but_a_note():
    found = fix.plan([lb(selector={})], default_settings())
    assert [p["metadata"]["name"] for p in found.policies] == ["default-deny-ingress"]
    assert any(n.level == fix.WARNING and "has no selector" in n.text for n in found.notes)


def test_allow_name_limits():
    assert fix.allow_name("web") == "netguard-allow-lb-web"
    assert len(fix.allow_name("a" * 63)) == len(fix.ALLOW_PREFIX) + 63  # a Service name always fits
    long = fix.allow_name("b" * 300)
    assert len(long) == fix.MAX_NAME and long != fix.allow_name("b" * 301)


# --------------------------------------------------------------------------- the namespace


def test_the_default_deny_is_the_one_the_denial_offers():
    found = fix.plan([lb()], default_settings())
    deny = found.policies[0]
    offered = yaml.safe_load(messages.default_deny_yaml("shop"))
    assert deny["spec"] == offered["spec"] and deny["metadata"]["name"] == offered["metadata"]["name"]
    assert deny["metadata"]["labels"]["netguard/policy-type"] == "default-deny-ingress"
    assert PolicySummary.of(deny).default_deny == {netpol.INGRESS}


def test_a_namespace_with_its_own_default_deny_gets_none():
    found = fix.plan([lb(), policy("mine", DENY)], default_settings())
    assert [p["metadata"]["name"] for p in found.policies] == ["netguard-allow-lb-web"]


def test_a_name_the_user_has_is_not_replaced():
    allow_web = policy("netguard-allow-lb-web", {"podSelector": {"matchLabels": {"app": "x"}}})
    taken = policy("default-deny-ingress", {"podSelector": {"matchLabels": {"app": "x"}}})
    names = [p["metadata"]["name"] for p in fix.plan([lb(), allow_web, taken], default_settings()).policies]
    assert names == ["netguard-default-deny-ingress", "netguard-allow-lb-web-2"]


def test_policies_that_already_admit_the_ports_leave_nothing_to_write():
    mine = policy("allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 8080}]}]})
    found = fix.plan([lb(), policy("deny", DENY), mine], default_settings())
    assert found.policies == ()
    assert [n.text for n in found.notes] == ["Service shop/web: your policies already admit outside traffic "
                                             "on every target port: no allow policy needed"]


def test_a_second_run_over_the_first_runs_output_writes_the_same():
    first = fix.plan([lb()], default_settings())
    second = fix.plan([lb(), *first.policies], default_settings())
    assert second.policies == first.policies


def test_exempt_namespaces_get_nothing():
    found = fix.plan([lb(ns="kube-system")], default_settings())
    assert found.policies == () and "exempt" in found.notes[0].text


def test_a_cancelling_policy_is_reported_not_changed():
    allow_all = policy("allow-all", {"podSelector": {}, "ingress": [{}]})
    found = fix.plan([lb(), policy("deny", DENY), allow_all], default_settings())
    # The allow-all admits everything, but the allow policy is written as if it were gone, so the
    # traffic still gets through once the user narrows or removes it.
    assert [p["metadata"]["name"] for p in found.policies] == ["netguard-allow-lb-web"]
    assert any("cancelled" in n.text and "allow-all" in n.text for n in found.notes)


def test_required_labels_are_copied_or_reported():
    settings = parse_settings("labels: {required: [team, cost-center]}\n", "netguard.yaml")
    service = lb()
    service["metadata"]["labels"] = {"team": "payments"}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"cost-center": "42"}}}
    found = fix.plan([service, namespace], settings)
    for p in found.policies:
        assert p["metadata"]["labels"]["team"] == "payments" and p["metadata"]["labels"]["cost-center"] == "42"
    found = fix.plan([service], settings)
    assert any(n.level == fix.WARNING and "lacks the required label(s) cost-center" in n.text for n in found.notes)


def test_the_loadbalancer_is_admitted_without_warnings_once_the_policies_exist():
    # The same decision code the server and `check` run (decide.validate), on the plan's output.
    service = lb(ports=[{"port": 80, "targetPort": "http"}, {"port": 53, "protocol": "UDP"}],
                 loadBalancerSourceRanges=["10.0.0.0/8"])
    found = fix.plan([service, deployment(ports=[HTTP])], default_settings())
    request = make_request(obj=service)
    decision = decide.validate(request, view_of([*found.policies, service]), default_settings())
    assert decision.allowed and decision.warnings == ()
    # The controls: without the policies it is denied, with the default-deny alone it is warned.
    assert not decide.validate(request, view_of([service]), default_settings()).allowed
    deny_only = decide.validate(request, view_of([found.policies[0], service]), default_settings())
    assert deny_only.allowed and "no NetworkPolicy admits outside traffic" in deny_only.warnings[0]
