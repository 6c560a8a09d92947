"""The two webhook configurations, and which requests kube-apiserver sends to them, derived from
netguard's configuration (`Settings`), so that a netguard outage blocks as little as possible:

- `namespaceSelector`: never called for the configuration's `exemptNamespaces` (netguard's own
  namespace always among them): netguard would let those requests through untouched anyway.
- `matchConditions` (CEL, Kubernetes >= 1.28 on by default, GA in 1.30) on the Service webhook:
  called only for the Services a rule can act on (see `service_condition`). Without the field (an
  older apiserver drops it) every Service is sent again: the conditions only ever narrow.
- A request a rule can only warn on or audit never blocks a write through an outage: with
  `labels.required` set, the Services that required-labels would only warn on or audit go to a
  webhook of their own that fails open (`service-labels.netguard.io`, failurePolicy Ignore).
- `matchPolicy: Equivalent`: a request through another version of the same resource is converted
  and sent too, so a future `v2` cannot sidestep the rules (it is the v1 default; explicit here).

Rendered with the other objects by webhook/cli/manifests.py; docs/deploy.md explains the choices.
"""

from __future__ import annotations

from typing import Any

from webhook.core.options import Action
from webhook.core.settings import Settings

NAME = "netguard"
LABELS = {"app.kubernetes.io/name": NAME}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
SERVICES_WEBHOOK = "services.netguard.io"
SERVICE_LABELS_WEBHOOK = "service-labels.netguard.io"
NETWORKPOLICIES_WEBHOOK = "networkpolicies.netguard.io"
LABELS_WEBHOOK = "labels.netguard.io"
CLUSTER_POLICIES_WEBHOOK = "clusterpolicies.netguard.io"
# The cluster-wide and CNI policies that can isolate (webhook/core/clusterpolicy.py GUARDED), as
# (group, version, resource, scope): protect-default-deny guards them. A rule naming a resource
# the cluster does not serve matches nothing (docs/clusterpolicies.md).
CLUSTER_POLICY_RULES = (
    ("projectcalico.org", "v3", "globalnetworkpolicies", "Cluster"),
    ("projectcalico.org", "v3", "networkpolicies", "Namespaced"),
    ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies", "Cluster"),
    ("cilium.io", "v2", "ciliumnetworkpolicies", "Namespaced"),
)
# The kinds that isolate egress only (clusterpolicy.EGRESS_GUARDED): guarded where egress.required.
EGRESS_CLUSTER_POLICY_RULES = (
    ("policy.networking.k8s.io", "v1alpha1", "adminnetworkpolicies", "Cluster"),
    ("policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies", "Cluster"),
    ("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "Cluster"),
)

# `object` is null on DELETE and `oldObject` on CREATE, and a condition that fails to evaluate
# fails the request as the webhook's failurePolicy says (Fail): every step is guarded.
_IS_LB = "({o} != null && has({o}.spec) && has({o}.spec.type) && {o}.spec.type == 'LoadBalancer')"
LOADBALANCER = f"{_IS_LB.format(o='object')} || {_IS_LB.format(o='oldObject')}"


def namespace_selector(settings: Settings) -> dict[str, Any]:
    """Every namespace but the exempt ones (the configuration's list; ownNamespace is in it)."""
    return {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "NotIn",
                                  "values": sorted(settings.exempt_namespaces)}]}


def _lacks(variable: str) -> str:
    return f"(!has({variable}.metadata.labels) || !(k in {variable}.metadata.labels))"


def _label_conditions(required: tuple[str, ...]) -> tuple[str, str]:
    """(the object lacks a required label, it lacks one its old object had or it is created):
    required-labels denies the second, and only warns on an UPDATE of an object that lacked
    them already (webhook/core/rules/required_labels.py)."""
    keys = "[" + ", ".join(f"'{key}'" for key in required) + "]"  # label keys hold no quotes (config.py)
    lacks = f"(object != null && {keys}.exists(k, {_lacks('object')}))"
    refused = (f"(object != null && {keys}.exists(k, {_lacks('object')} && "
               f"(oldObject == null || (has(oldObject.metadata.labels) && k in oldObject.metadata.labels))))")
    return lacks, refused


def _labels_refuse(settings: Settings) -> bool:
    """Whether required-labels can refuse a request (its action is deny)."""
    return settings.rule("required-labels").action == Action.DENY


def service_condition(settings: Settings) -> dict[str, str]:
    """The one match condition of the fail-closed Service webhook (conditions are ANDed, so it is
    one OR): the requests a rule can refuse, and the LoadBalancers.

    - loadbalancer-requires-default-deny acts on a Service that is a LoadBalancer after the
      request (created as one, turned into one, or edited while one). A Service that stops being
      one is sent too: no rule refuses it, but the offline inventory (`--url` setups) must learn
      that the LoadBalancer is gone, or protect-default-deny would guard a Service that no longer
      needs it.
    - required-labels, when `labels.required` is set and its action is deny, refuses a Service
      created without a required label, or losing one, whatever its type.
    """
    required = settings.labels.required
    if required and _labels_refuse(settings):
        refused = _label_conditions(required)[1]
        return {"name": "loadbalancer-or-refused-labels", "expression": f"{LOADBALANCER} || {refused}"}
    return {"name": "loadbalancer", "expression": LOADBALANCER}


def service_labels_condition(settings: Settings) -> dict[str, str] | None:
    """The condition of the fail-open webhook: the Services that required-labels only warns on
    or audits (every one lacking a label when its action is warn or audit; with deny, an UPDATE
    of one that lacked it already), unless a LoadBalancer (the fail-closed webhook answers for
    both rules then). None when `labels.required` is empty: no such webhook."""
    required = settings.labels.required
    if not required:
        return None
    lacks, refused = _label_conditions(required)
    expression = f"!({LOADBALANCER}) && {lacks}"
    if _labels_refuse(settings):
        expression += f" && !{refused}"
    return {"name": "warned-labels", "expression": expression}


def _client_config(ns: str, path: str, ca_bundle: str, url: str | None) -> dict[str, Any]:
    if url is not None:
        return {"url": f"{url}{path}", "caBundle": ca_bundle}
    return {"service": {"name": NAME, "namespace": ns, "path": path, "port": 443}, "caBundle": ca_bundle}


def _rule(group: str, resource: str, operations: list[str], version: str = "v1",
          scope: str = "Namespaced") -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": [version], "operations": list(operations),
            "resources": [resource], "scope": scope}


def _webhook(name: str, client_config: dict[str, Any], rules: list[dict[str, Any]],
             settings: Settings, failure_policy: str, timeout: int) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": client_config,
        "rules": rules,
        "matchPolicy": "Equivalent",
        "namespaceSelector": namespace_selector(settings),
        "failurePolicy": failure_policy,
        "sideEffects": "None",
        "timeoutSeconds": timeout,
        "admissionReviewVersions": ["v1"],
    }


def webhook_configurations(settings: Settings, ca_bundle: str, url: str | None,
                           timeout: int) -> list[dict[str, Any]]:
    """The ValidatingWebhookConfiguration and the MutatingWebhookConfiguration `netguard`."""
    ns = settings.own_namespace

    def hook(name: str, path: str, rules: list[dict[str, Any]], failure_policy: str) -> dict[str, Any]:
        return _webhook(name, _client_config(ns, path, ca_bundle, url), rules, settings, failure_policy, timeout)

    create_update = ["CREATE", "UPDATE"]
    # loadbalancer-requires-default-deny (CREATE, UPDATE), required-labels (CREATE, UPDATE).
    services = hook(SERVICES_WEBHOOK, "/validate", [_rule("", "services", create_update)], "Fail")
    services["matchConditions"] = [service_condition(settings)]
    extra = []
    labels_only = service_labels_condition(settings)
    if labels_only is not None:
        # required-labels only warns or audits these: an outage must not block them.
        service_labels = hook(SERVICE_LABELS_WEBHOOK, "/validate", [_rule("", "services", create_update)], "Ignore")
        service_labels["matchConditions"] = [labels_only]
        extra.append(service_labels)
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "webhooks": [
            services,
            # protect-default-deny (CREATE, UPDATE, DELETE), required-labels (CREATE, UPDATE):
            # every NetworkPolicy request can be refused, so no condition.
            hook(NETWORKPOLICIES_WEBHOOK, "/validate",
                 [_rule("networking.k8s.io", "networkpolicies", ["CREATE", "UPDATE", "DELETE"])], "Fail"),
            # protect-default-deny for Calico's and Cilium's isolating policies (matchPolicy
            # Equivalent: their other served versions too). A namespaceSelector does not apply
            # to the cluster-scoped ones: every one is sent.
            hook(CLUSTER_POLICIES_WEBHOOK, "/validate",
                 [_rule(g, r, ["CREATE", "UPDATE", "DELETE"], v, scope) for g, v, r, scope in
                  CLUSTER_POLICY_RULES + (EGRESS_CLUSTER_POLICY_RULES if settings.egress.required else ())],
                 "Fail"),
            *extra,
        ],
    }
    # Mutation only adds informational labels: an outage must not block every Service and
    # NetworkPolicy write on its account (the validating webhooks are the guard and fail closed).
    labels = hook(LABELS_WEBHOOK, "/mutate",
                  [_rule("", "services", create_update),
                   _rule("networking.k8s.io", "networkpolicies", create_update),
                   # netguard/policy-type on the cluster-wide and CNI policies, served or not
                   *(_rule(g, r, create_update, v, scope) for g, v, r, scope in
                     CLUSTER_POLICY_RULES + EGRESS_CLUSTER_POLICY_RULES)], "Ignore")
    labels["reinvocationPolicy"] = "Never"
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "webhooks": [labels],
    }
    return [validating, mutating]
