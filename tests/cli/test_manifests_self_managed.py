"""manifests/self-managed-certs/: the Deployment runs `--manage-certs`, the serving pair lives in
an in-memory emptyDir, caBundle belongs to netguard, and the RBAC it adds is limited by
resourceNames to exactly what a rotation calls (checked against the requests a real round makes
on the local API test server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from tests.cli.test_manifests import MANIFESTS, NS, _json_patch, by_key, container, kubectl, needs_kubectl, one, parse
from tests.objectstore import MUTATING, SECRETS, VALIDATING
from tests.watchserver import WatchServer
from webhook.cli import deploy, managedcerts, manifests
from webhook.inventory.kube import ObjectApi
from webhook.serve.certrotator import CertRotator, Target

DIRECTORY = MANIFESTS / "self-managed-certs"
VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create"}


def overlay_docs() -> list[dict[str, Any]]:
    docs = _json_patch(manifests.objects(), DIRECTORY)
    return docs + parse((DIRECTORY / "secret.yaml").read_text()) + parse((DIRECTORY / "rbac.yaml").read_text())


def managed_secret(docs: list[dict[str, Any]]) -> str:
    args = container(docs)["args"]
    return args[args.index("--manage-certs") + 1]


def check_self_managed(docs: list[dict[str, Any]]) -> None:
    name = managed_secret(docs)
    secret = one(docs, "Secret", name)
    assert secret["metadata"]["namespace"] == NS and "data" not in secret and secret["type"] == "Opaque"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    [tls] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls == {"name": "tls", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    assert not any("secret" in v for v in pod["volumes"])  # no Secret volume: netguard writes the files
    [mount] = [m for m in container(docs)["volumeMounts"] if m["name"] == "tls"]
    assert mount["mountPath"] == deploy.CERTS_DIR and mount["readOnly"] is False
    args = container(docs)["args"]
    assert args[args.index("--certs") + 1] == deploy.CERTS_DIR
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        config = one(docs, kind)
        assert (kind, config["metadata"]["name"]) in managedcerts.WEBHOOKS  # the names the code writes
        assert all("caBundle" not in hook["clientConfig"] for hook in config["webhooks"])


def rules_of(docs: list[dict[str, Any]], kinds: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace or "", rule) of every role bound to netguard's ServiceAccount."""
    bound = set()
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if {"kind": "ServiceAccount", "name": deploy.NAME, "namespace": NS} in binding["subjects"]:
            bound.add((binding["roleRef"]["kind"], binding["roleRef"]["name"]))
    return [(role["metadata"].get("namespace", ""), rule) for role in docs
            if role["kind"] in kinds and (role["kind"], role["metadata"]["name"]) in bound
            for rule in role["rules"]]


def allowed(rules: list[tuple[str, dict[str, Any]]], verb: str, resource: str, name: str, namespace: str) -> bool:
    for where, rule in rules:
        if where and where != namespace:
            continue
        names = rule.get("resourceNames")
        if verb in rule["verbs"] and resource in rule["resources"] and (names is None or name in names):
            return True
    return False


def test_overlay_patches():
    check_self_managed(overlay_docs())


def test_the_added_rbac_is_limited_by_resource_names():
    docs = overlay_docs()
    base = {(d["kind"], d["metadata"]["name"]) for d in manifests.objects()}
    added = [d for d in docs if d["kind"] in ("Role", "ClusterRole") and (d["kind"], d["metadata"]["name"]) not in base]
    assert {d["kind"] for d in added} == {"Role", "ClusterRole"}
    for role in added:
        for rule in role["rules"]:
            assert rule.get("resourceNames"), (role["metadata"]["name"], rule)
            assert "create" not in rule["verbs"] and "*" not in rule["verbs"]  # create ignores resourceNames
            assert set(rule["verbs"]) <= {"get", "update", "patch"}


def test_a_rotation_calls_only_what_the_rbac_allows(tmp_path: Path):
    docs = overlay_docs()
    rules = rules_of(docs, ("Role", "ClusterRole"))
    secret = managed_secret(docs)
    with WatchServer() as server:
        for resource, obj in zip((VALIDATING, MUTATING), deploy.webhook_configurations(NS, "", None)):
            server.objects.put(resource, obj)
        server.objects.put(SECRETS, one(docs, "Secret", secret))  # as shipped
        api = ObjectApi(client.ApiClient(client.Configuration(host=server.url)))
        try:
            rotator = CertRotator(api, Target(NS, secret, managedcerts.WEBHOOKS,
                                              tuple(managedcerts.service_names(NS)), tmp_path))
            rotator.round()
            rotator.round()
        finally:
            api.close()
        calls = {(VERBS[r.method], r.resource, r.path.rsplit("/", 1)[1], r.namespace)
                 for r in server.recorded() if r.resource in (SECRETS, VALIDATING, MUTATING)}
    assert {c[0] for c in calls} == {"get", "update", "patch"}  # the round did write
    refused = [c for c in calls if not allowed(rules, *c)]
    assert not refused, refused


@needs_kubectl
def test_kubectl_kustomize_self_managed_overlay():
    result = kubectl("kustomize", "manifests/self-managed-certs/")
    assert result.returncode == 0, result.stderr
    built = parse(result.stdout)
    check_self_managed(built)
    assert by_key(built) == by_key(overlay_docs())


def test_the_rbac_check_can_fail():
    # Control: a call outside the named objects is refused by the same check.
    rules = rules_of(overlay_docs(), ("Role", "ClusterRole"))
    assert allowed(rules, "update", SECRETS, "netguard-certs", NS)
    assert not allowed(rules, "update", SECRETS, "other", NS)
    assert not allowed(rules, "create", SECRETS, "netguard-certs", NS)
    assert not allowed(rules, "patch", VALIDATING, "someone-else", "")
    assert not allowed(rules, "update", SECRETS, "netguard-certs", "kube-system")  # a Role is namespaced
