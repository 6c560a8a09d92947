"""One row per semantic case of egress control (webhook/core/egress.py): which namespaces must be
default-deny for egress, what counts as an egress default-deny, what cancels one, and what the
guard protects. Each row cites the upstream document it rests on (`why`). The same rows run
through the decision core (tests/core/test_egress.py), a real server over TLS, `netguard check`
and `netguard audit` (tests/serve/test_egress_server.py).

Every row runs under CONFIG: egress required in the namespaces labelled exposure=public, except
those labelled tier=legacy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.reviews import make_review, namespace, policy, service

NP = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
NP_API = "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/"
SELECTOR = "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/"

CONFIG = """\
egress:
  required: true
  namespaceSelector:
    matchLabels: {exposure: public}
    matchExpressions:
    - {key: tier, operator: NotIn, values: [legacy]}
"""
SELECTED = {"exposure": "public"}
LEGACY = {"exposure": "public", "tier": "legacy"}
NOT_SELECTED = {"exposure": "internal"}

DENY_IN = ("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_EG = ("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
DENY_ALL = ("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
# The web pods admitted from outside on every port: no reachability warning for the LoadBalancer.
WEB_IN = ("web-from-outside", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                               "ingress": [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]})
DNS = ("allow-dns-egress", {
    "podSelector": {}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]})


def _egress(name: str, *rules: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return name, {"podSelector": {}, "policyTypes": ["Egress"], "egress": list(rules)}


def _to(*cidrs: str, ports: list[dict[str, Any]] | None = None, excepts: tuple[str, ...] = ()) -> dict[str, Any]:
    rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": c, **({"except": list(excepts)} if excepts else {})}}
                                   for c in cidrs]}
    if ports:
        rule["ports"] = ports
    return rule


LB = ("service", ("web", {"type": "LoadBalancer"}))
BEHIND_BOTH = (("policy", DENY_IN), ("policy", DENY_EG), ("policy", WEB_IN))


@dataclass(frozen=True)
class Case:
    id: str
    why: str  # the upstream rule the row rests on, with its document
    labels: dict[str, str]  # of the row's namespace
    state: tuple[tuple[str, Any], ...]  # ("policy", (name, spec)) | ("service", (name, kwargs))
    kind: str
    operation: str
    obj: tuple[str, Any] | None
    old: tuple[str, Any] | None = None
    refused_by: str = ""  # the rule that refuses, "" when admitted
    warned: tuple[str, ...] = ()  # each must appear in some warning
    no_warnings: bool = False

    @property
    def checkable(self) -> bool:  # `netguard check` reviews CREATEs of the object itself only
        return self.operation == "CREATE"


def _p(item: tuple[str, Any]) -> tuple[str, Any]:
    return ("policy", item)


LBR, GUARD = "loadbalancer-requires-default-deny", "protect-default-deny"

CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ which namespaces
    Case("selected-namespace-needs-an-egress-deny",
         f"matchLabels exposure=public selects the namespace, and tier NotIn [legacy] holds for a "
         f"namespace without tier: {SELECTOR}",
         SELECTED, (_p(DENY_IN), _p(WEB_IN)), "Service", "CREATE", LB, refused_by=LBR),
    Case("notin-excludes-a-legacy-namespace",
         f"NotIn: the selector does not select a namespace whose tier is legacy: {SELECTOR}",
         LEGACY, (_p(DENY_IN), _p(WEB_IN)), "Service", "CREATE", LB, no_warnings=True),
    Case("unselected-namespace-needs-ingress-only",
         f"matchLabels: every pair must match, exposure=internal is not exposure=public: {SELECTOR}",
         NOT_SELECTED, (_p(DENY_IN), _p(WEB_IN)), "Service", "CREATE", LB, no_warnings=True),
    Case("selected-namespace-needs-ingress-too",
         f"an egress default-deny does not isolate pods for ingress (two sorts of isolation): {NP}",
         SELECTED, (_p(DENY_EG), _p(WEB_IN)), "Service", "CREATE", LB, refused_by=LBR),
    # ------------------------------------------------------------------ what is an egress default-deny
    Case("two-policies-deny-both-directions",
         f"a policy selecting every pod with Egress in policyTypes and no egress rules denies all "
         f"egress (Default deny all egress traffic): {NP}",
         SELECTED, BEHIND_BOTH, "Service", "CREATE", LB, no_warnings=True),
    Case("one-policy-denies-both-directions",
         f"policyTypes [Ingress, Egress] with neither ingress nor egress rules denies both: {NP}",
         SELECTED, (_p(DENY_ALL), _p(WEB_IN)), "Service", "CREATE", LB, no_warnings=True),
    Case("empty-egress-list-without-policytypes-is-ingress-only",
         f"policyTypes omitted: Egress is included only if the policy has egress rules, and "
         f"egress: [] has none, so the policy covers Ingress only: {NP_API}",
         SELECTED, (_p(DENY_IN), _p(("empty-egress", {"podSelector": {}, "egress": []})), _p(WEB_IN)),
         "Service", "CREATE", LB, refused_by=LBR),
    Case("egress-rules-without-policytypes-allow",
         f"policyTypes omitted with egress rules: Egress is covered, but its rules allow what they "
         f"list, so it is no default-deny: {NP_API}",
         SELECTED, (_p(DENY_IN), _p(("some-egress", {"podSelector": {}, "egress": [_to("10.0.0.0/8")]})),
                    _p(WEB_IN)), "Service", "CREATE", LB, refused_by=LBR),
    Case("isolating-some-pods-is-no-default-deny",
         f"only an empty podSelector selects every pod of the namespace; app=web isolates those "
         f"pods only: {NP}",
         SELECTED, (_p(DENY_IN), _p(("web-egress", {"podSelector": {"matchLabels": {"app": "web"}},
                                                    "policyTypes": ["Egress"]})), _p(WEB_IN)),
         "Service", "CREATE", LB, refused_by=LBR),
    # ------------------------------------------------------------------ what cancels it
    Case("allow-all-egress-cancels-both-families",
         f"an egress rule with no `to` allows every destination, and policies are additive: {NP}",
         SELECTED, BEHIND_BOTH + (_p(_egress("open-egress", {})),), "Service", "CREATE", LB,
         warned=("default-deny egress is cancelled for IPv4 and IPv6 by open-egress",)),
    Case("split-ipv4-halves-cancel",
         f"ipBlock peers are a union: 0.0.0.0/1 and 128.0.0.0/1 are every IPv4 address: {NP_API}",
         SELECTED, BEHIND_BOTH + (_p(_egress("halves", _to("0.0.0.0/1", "128.0.0.0/1"))),),
         "Service", "CREATE", LB, warned=("default-deny egress is cancelled for IPv4 by halves",)),
    Case("dns-allowance-does-not-cancel",
         f"namespaceSelector with podSelector in one peer selects those pods of those namespaces, "
         f"never an outside address; ports limit it to 53: {NP_API}",
         SELECTED, BEHIND_BOTH + (_p(DNS),), "Service", "CREATE", LB, no_warnings=True),
    Case("one-port-everywhere-does-not-cancel",
         f"a rule with ports allows those ports only: egress on every other port stays denied: {NP_API}",
         SELECTED, BEHIND_BOTH + (_p(_egress("https-out", _to("0.0.0.0/0", "::/0",
                                                                ports=[{"protocol": "TCP", "port": 443}]))),),
         "Service", "CREATE", LB, no_warnings=True),
    Case("except-does-not-cancel",
         f"an ipBlock allows its cidr minus its excepts: 0.0.0.0/0 except one /32 is not every "
         f"address: {NP_API}",
         SELECTED, BEHIND_BOTH + (_p(_egress("most", _to("0.0.0.0/0", excepts=("169.254.169.254/32",)))),),
         "Service", "CREATE", LB, no_warnings=True),
    Case("every-namespace-does-not-cancel",
         f"a namespaceSelector {{}} peer selects every pod of the cluster, never an outside address: {NP}",
         SELECTED, BEHIND_BOTH + (_p(_egress("in-cluster", {"to": [{"namespaceSelector": {}}]})),),
         "Service", "CREATE", LB, no_warnings=True),
    # ------------------------------------------------------------------ the guard
    Case("guard-refuses-deleting-the-last-egress-deny",
         f"without a policy selecting them for Egress, pods are not isolated for egress: {NP}",
         SELECTED, BEHIND_BOTH + (LB,), "NetworkPolicy", "DELETE", None, old=_p(DENY_EG), refused_by=GUARD),
    Case("guard-allows-deleting-one-of-two-egress-denies",
         f"policies are additive: deny-all still isolates every pod for egress: {NP}",
         SELECTED, BEHIND_BOTH + (_p(DENY_ALL), LB), "NetworkPolicy", "DELETE", None, old=_p(DENY_EG)),
    Case("guard-refuses-adding-egress-rules",
         f"a policy with egress rules allows what they list: it stops being a default-deny: {NP_API}",
         SELECTED, BEHIND_BOTH + (LB,), "NetworkPolicy", "UPDATE",
         _p(_egress("deny-egress", _to("10.0.0.0/8"))), old=_p(DENY_EG), refused_by=GUARD),
    Case("guard-refuses-dropping-egress-from-policytypes",
         f"policyTypes [Ingress] covers ingress only: deny-all stops isolating pods for egress: {NP_API}",
         SELECTED, (_p(DENY_ALL), _p(WEB_IN), LB), "NetworkPolicy", "UPDATE",
         _p(("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]})), old=_p(DENY_ALL), refused_by=GUARD),
    Case("guard-refuses-omitting-policytypes",
         f"policyTypes omitted and no egress rules: the API defaults it to [Ingress]: {NP_API}",
         SELECTED, BEHIND_BOTH + (LB,), "NetworkPolicy", "UPDATE",
         _p(("deny-egress", {"podSelector": {}})), old=_p(DENY_EG), refused_by=GUARD),
    Case("guard-refuses-a-cancelling-egress-create",
         f"an egress rule with no `to` allows every destination, cancelling the default-deny: {NP}",
         SELECTED, BEHIND_BOTH + (LB,), "NetworkPolicy", "CREATE", _p(_egress("open-egress", {})),
         refused_by=GUARD),
    Case("guard-allows-the-dns-allowance",
         f"a peer of namespaceSelector and podSelector names pods in the cluster only: {NP_API}",
         SELECTED, BEHIND_BOTH + (LB,), "NetworkPolicy", "CREATE", _p(DNS)),
    Case("guard-allows-deleting-in-an-unselected-namespace",
         f"the selector does not select exposure=internal: no egress default-deny is required: {SELECTOR}",
         NOT_SELECTED, BEHIND_BOTH + (LB,), "NetworkPolicy", "DELETE", None, old=_p(DENY_EG)),
    Case("guard-allows-deleting-without-load-balancers",
         "only namespaces that hold LoadBalancers must be default-deny (netguard's egress.required)",
         SELECTED, BEHIND_BOTH, "NetworkPolicy", "DELETE", None, old=_p(DENY_EG)),
)


def namespace_of(index: int) -> str:
    return f"egress-{index}"


def _build(ns: str, item: tuple[str, Any]) -> dict[str, Any]:
    what, (name, spec) = item
    if what == "policy":
        return policy(name, spec, namespace=ns)
    return service(name, namespace=ns, **spec)


def state_objects(index: int, case: Case) -> list[dict[str, Any]]:
    ns = namespace_of(index)
    return [namespace(ns, labels=case.labels), *(_build(ns, item) for item in case.state)]


def request_object(index: int, case: Case, which: str = "obj") -> dict[str, Any] | None:
    item = getattr(case, which)
    return _build(namespace_of(index), item) if item is not None else None


def review(index: int, case: Case, *, dry_run: bool = False) -> dict[str, Any]:
    old = request_object(index, case, "old")
    return make_review(kind=case.kind, operation=case.operation, namespace=namespace_of(index),
                       obj=request_object(index, case), old=old, dry_run=dry_run,
                       name=(old or request_object(index, case) or {}).get("metadata", {}).get("name"))


def expect(case: Case, allowed: bool, rule: str, warnings: list[str]) -> None:
    """Assert an answer (from the core, the server or `check`) is the row's."""
    assert allowed is (not case.refused_by), (case.id, case.why, rule, warnings)
    if case.refused_by:
        assert case.refused_by in rule, (case.id, rule)
    for text in case.warned:
        assert any(text in w for w in warnings), (case.id, case.why, text, warnings)
    if case.no_warnings:
        assert warnings == [], (case.id, case.why, warnings)


INDEXED = list(enumerate(CASES))
IDS = [case.id for case in CASES]
