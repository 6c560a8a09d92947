"""The two webhook configurations, and which requests kube-apiserver sends to them, derived from
netguard's configuration (`Settings`), so that a netguard outage blocks as little as possible:

- `namespaceSelector`: never called for the configuration's `exemptNamespaces` (netguard's own
  namespace always among them): netguard would let those requests through untouched anyway.
- `matchConditions` (CEL, Kubernetes >= 1.28 on by default, GA in 1.30) on the Service webhook:
  called only for the Services a rule can act on (see `service_condition`). Without the field (an
  older apiserver drops it) every Service is sent again: the conditions only ever narrow.
- `matchPolicy: Equivalent`: a request through another version of the same resource is converted
  and sent too, so a future `v2` cannot sidestep the rules (it is the v1 default; explicit here).

Rendered with the other objects by webhook/cli/manifests.py; docs/deploy.md explains the choices.
"""

from __future__ import annotations

from typing import Any

from webhook.core.settings import Settings

NAME = "netguard"
LABELS = {"app.kubernetes.io/name": NAME}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
SERVICES_WEBHOOK = "services.netguard.io"
NETWORKPOLICIES_WEBHOOK = "networkpolicies.netguard.io"
LABELS_WEBHOOK = "labels.netguard.io"

# `object` is null on DELETE and `oldObject` on CREATE, and a condition that fails to evaluate
# fails the request as the webhook's failurePolicy says (Fail): every step is guarded.
_IS_LB = "({o} != null && has({o}.spec) && has({o}.spec.type) && {o}.spec.type == 'LoadBalancer')"


def namespace_selector(settings: Settings) -> dict[str, Any]:
    """Every namespace but the exempt ones (the configuration's list; ownNamespace is in it)."""
    return {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "NotIn",
                                  "values": sorted(settings.exempt_namespaces)}]}


def service_condition(settings: Settings) -> dict[str, str]:
    """The one match condition of the Service webhook (conditions are ANDed, so it is one OR).

    - loadbalancer-requires-default-deny acts on a Service that is a LoadBalancer after the
      request (created as one, turned into one, or edited while one). A Service that stops being
      one is sent too: no rule refuses it, but the offline inventory (`--url` setups) must learn
      that the LoadBalancer is gone, or protect-default-deny would guard a Service that no longer
      needs it.
    - required-labels, when `labels.required` is set, acts on a Service that lacks one of them
      (its action decides: deny, warn or audit), whatever its type.
    """
    expression = f"{_IS_LB.format(o='object')} || {_IS_LB.format(o='oldObject')}"
    name = "loadbalancer"
    required = settings.labels.required
    if required:
        keys = ", ".join(f"'{key}'" for key in required)  # label keys: no quotes (webhook/core/config.py)
        expression += (f" || (object != null && [{keys}].exists(k, !has(object.metadata.labels)"
                       f" || !(k in object.metadata.labels)))")
        name = "loadbalancer-or-missing-labels"
    return {"name": name, "expression": expression}


def _client_config(ns: str, path: str, ca_bundle: str, url: str | None) -> dict[str, Any]:
    if url is not None:
        return {"url": f"{url}{path}", "caBundle": ca_bundle}
    return {"service": {"name": NAME, "namespace": ns, "path": path, "port": 443}, "caBundle": ca_bundle}


def _rule(group: str, resource: str, operations: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": ["v1"], "operations": list(operations),
            "resources": [resource], "scope": "Namespaced"}


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
        ],
    }
    # Mutation only adds informational labels: an outage must not block every Service and
    # NetworkPolicy write on its account (the validating webhooks are the guard and fail closed).
    labels = hook(LABELS_WEBHOOK, "/mutate",
                  [_rule("", "services", create_update),
                   _rule("networking.k8s.io", "networkpolicies", create_update)], "Ignore")
    labels["reinvocationPolicy"] = "Never"
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "webhooks": [labels],
    }
    return [validating, mutating]
