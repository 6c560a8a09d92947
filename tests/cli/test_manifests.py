"""webhook.cli.manifests and the kustomize tree in manifests/: what is deployed, how it is secured,
which requests reach netguard, and that `render()` and the files never drift apart.

The kustomize checks use `kubectl kustomize` (offline) when kubectl is installed; the overlays'
JSON patches are also applied here with the `jsonpatch` test dependency, so they are checked
without kubectl too.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest
import yaml

from tests.reviews import view_of
from webhook.serve import certs
from webhook.core import clusterpolicy, decide, netpol
from webhook.cli import manifests
from webhook.core.settings import Settings, default_settings
from webhook.core.config import parse_settings
from webhook.core.labels import policy_type
from webhook.inventory.offline import OfflineInventory
from webhook.core.request import AdmissionRequest
from webhook.core.registry import RULES
from webhook.serve.version import version

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFESTS = ROOT / "manifests"
NS = manifests.DEFAULT_NAMESPACE
PEM_MARK = "-----BEGIN CERTIFICATE-----"

EXPECTED_KINDS = {
    "Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
    "ConfigMap": 1, "ResourceQuota": 1, "Deployment": 1, "Service": 1, "PodDisruptionBudget": 1,
    "NetworkPolicy": 5, "ValidatingWebhookConfiguration": 1, "MutatingWebhookConfiguration": 1,
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}

# What each rule must receive: (API group, resource, operation). Keyed by the rule functions'
# names, so a new rule fails test_every_rule_has_its_needs_listed until it is listed here.
RULE_NEEDS: dict[str, set[tuple[str, str, str]]] = {
    "loadbalancer_requires_default_deny": {("", "services", op) for op in ("CREATE", "UPDATE")},
    "protect_default_deny": {("networking.k8s.io", "networkpolicies", op) for op in ("UPDATE", "DELETE")} | {
        (g, r, op) for g, r in (("projectcalico.org", "globalnetworkpolicies"), ("projectcalico.org", "networkpolicies"),
                                ("cilium.io", "ciliumclusterwidenetworkpolicies"), ("cilium.io", "ciliumnetworkpolicies"))
        for op in ("CREATE", "UPDATE", "DELETE")},
    "required_labels": {(g, r, op) for g, r in (("", "services"), ("networking.k8s.io", "networkpolicies"))
                        for op in ("CREATE", "UPDATE")},
}
# The labels: Services and NetworkPolicies, and every cluster-wide and CNI policy kind
# (netguard/policy-type: what netguard counts it as), served or not.
MUTATION_NEEDS = {(g, r, op) for g, r in (("", "services"), ("networking.k8s.io", "networkpolicies"),
                                          *((g, r) for (g, _), (r, _) in clusterpolicy.KINDS.items()))
                  for op in ("CREATE", "UPDATE")}


# --------------------------------------------------------------------------- helpers


def parse(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def by_key(docs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str, str], Mapping[str, Any]]:
    docs = list(docs)
    keyed = {key(d): d for d in docs}
    assert len(keyed) == len(docs), "duplicate objects"
    return keyed


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def webhooks(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(d["kind"], w) for d in docs
            if d["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
            for w in d["webhooks"]]


def covered(hooks: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    return {(group, resource, op)
            for hook in hooks for rule in hook["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for op in rule["operations"]}


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector, as the API server evaluates it: netguard's own matcher."""
    return netpol.selector_matches(netpol.frozen_selector(selector), labels)


def namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}  # set by the API server on every namespace


def strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def kustomize_docs(directory: Path) -> list[dict[str, Any]]:
    """The base's objects by reading kustomization resources (files and folders), no patches."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        docs += kustomize_docs(path) if path.is_dir() else parse(path.read_text())
    return docs


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def named_port(ctr: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in ctr["ports"] if p["name"] == port)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return parse(manifests.render())


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    certs.generate(out, service="netguard", namespace=NS)
    return out


# --------------------------------------------------------------------------- render


def test_render_parses_to_the_objects(docs):
    assert docs == manifests.objects()
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc)
        assert doc["metadata"]["name"]
        assert ("namespace" in doc["metadata"]) == (doc["kind"] not in CLUSTER_SCOPED)
    assert "&id" not in manifests.render() and "*id" not in manifests.render()  # no YAML aliases


def test_every_kind_is_present(docs):
    counts: dict[str, int] = {}
    for doc in docs:
        counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    assert counts == EXPECTED_KINDS
    by_key(docs)  # no duplicates
    assert docs[0]["kind"] == "Namespace"  # applied first with `kubectl apply -f -`


def test_rbac_is_read_only(docs):
    role = one(docs, "ClusterRole")
    granted = {(group, resource, verb) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == {(g, r, v) for g, r in (("", "namespaces"), ("", "services"),
                                              ("networking.k8s.io", "networkpolicies"))
                       for v in ("get", "list", "watch")} | {
        (g, r, v) for (g, _), (r, _) in clusterpolicy.KINDS.items() for v in ("list", "watch")}
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    account = one(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NS}]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_deployment_security_settings(docs):
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    ctr = container(docs)
    effective = {**pod["securityContext"], **ctr["securityContext"]}  # container settings win
    assert effective["runAsNonRoot"] is True
    assert effective["runAsUser"] == 10001
    assert effective["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
    assert ctr["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in ctr["securityContext"]
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    labels = one(docs, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # Pinned, so a cluster upgrade never changes what is enforced: the oldest version supported.
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.28"
    assert (labels["pod-security.kubernetes.io/warn"], labels["pod-security.kubernetes.io/warn-version"]) == (
        "restricted", "latest")


def test_deployment_availability_and_probes(docs):
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    ctr = container(docs)
    assert spec["replicas"] == 2
    assert selector_matches(spec["selector"], pod_labels)
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    assert selector_matches(spread["labelSelector"], pod_labels)
    [anti] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert selector_matches(anti["podAffinityTerm"]["labelSelector"], pod_labels)
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    # Every probe on the plain-HTTP port the server is told to open (--metrics-bind), so that
    # mutual TLS on the webhook port (--client-ca) cannot break them.
    metrics_bind = next(a.split("=", 1)[1] for a in ctr["args"] if a.startswith("--metrics-bind="))
    assert metrics_bind == "0.0.0.0:8080"
    for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = ctr[probe]["httpGet"]
        assert (get["scheme"], get["path"], get["port"], named_port(ctr, get["port"])) == (
            "HTTP", path, "metrics", 8080), probe
    startup = ctr["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60  # a slow start is not killed
    assert ctr["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert ctr["resources"]["limits"]["memory"] == "256Mi"
    assert ctr["image"] == f"netguard:{version()}" and ctr["imagePullPolicy"] == "IfNotPresent"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    # The quota that lets a cluster limiting the system-* classes run those pods.
    quota = one(docs, "ResourceQuota")["spec"]
    assert quota["scopeSelector"]["matchExpressions"] == [
        {"operator": "In", "scopeName": "PriorityClass", "values": [pod["priorityClassName"]]}]
    assert int(quota["hard"]["pods"]) >= spec["replicas"] + spec["strategy"]["rollingUpdate"]["maxSurge"]


def test_deployment_mounts_and_args(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    ctr = container(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    tls = volumes[mounts["/etc/netguard/certs"]["name"]]
    assert tls["secret"]["secretName"] == "netguard-tls"
    assert mounts["/etc/netguard/certs"]["readOnly"] is True
    assert "subPath" not in mounts["/etc/netguard/certs"]  # rotated certificates must reach the pod
    config = volumes[mounts["/etc/netguard/config"]["name"]]
    assert config["configMap"]["name"] == "netguard-config"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert ctr["args"] == ["serve", "--bind", "0.0.0.0:8443", "--metrics-bind=0.0.0.0:8080",
                           "--certs", "/etc/netguard/certs",
                           "--config", "/etc/netguard/config/netguard.yaml", "--workers", "2"]
    # Every flag the Deployment passes is one `netguard serve` takes.
    from webhook.cli import main as cli
    parsed = cli.build_parser().parse_args(ctr["args"])
    assert (parsed.bind, parsed.metrics_bind, parsed.workers) == ("0.0.0.0:8443", "0.0.0.0:8080", 2)
    assert "command" not in ctr  # the image's ENTRYPOINT is `netguard`


def test_service_and_pdb_select_the_pods(docs):
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service")
    assert service["metadata"]["name"] == "netguard"
    assert all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items())
    https, metrics = service["spec"]["ports"]
    assert https["port"] == 443 and named_port(container(docs), https["targetPort"]) == 8443
    assert (metrics["name"], metrics["port"], metrics["targetPort"]) == ("metrics", 8080, "metrics")
    assert named_port(container(docs), metrics["targetPort"]) == 8080
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert selector_matches(pdb["spec"]["selector"], pod_labels)


def test_config_map_is_the_default_configuration(docs):
    config = one(docs, "ConfigMap", "netguard-config")["data"]["netguard.yaml"]
    assert parse_settings(config, "netguard.yaml") == default_settings()
    # Every top-level key is written out (all defaults shown), with comments.
    written = yaml.safe_load(config)
    assert set(written) == {"labels", "exemptNamespaces", "ownNamespace", "rules", "failureMode",
                            "maxBodyBytes", "scanIntervalSeconds", "egress"}
    assert set(written["rules"]) == {"loadbalancer-requires-default-deny", "protect-default-deny",
                                     "required-labels"}
    # Every option of every rule, with its default (these two were once left out).
    assert written["rules"]["loadbalancer-requires-default-deny"] == {
        "action": "deny", "dryRun": "same", "sourceRanges": "ignore"}
    assert written["scanIntervalSeconds"] == 60
    assert config.count("#") >= 5


# --------------------------------------------------------------------------- webhooks


def test_the_isolating_cluster_and_cni_policies_are_guarded(docs):
    [hook] = [w for _, w in webhooks(docs) if w["name"] == "clusterpolicies.netguard.io"]
    assert hook["failurePolicy"] == "Fail" and hook["clientConfig"]["service"]["path"] == "/validate"
    served = {(r["apiGroups"][0], r["resources"][0], r["scope"]) for r in hook["rules"]}
    assert served == {("projectcalico.org", "globalnetworkpolicies", "Cluster"),
                      ("projectcalico.org", "networkpolicies", "Namespaced"),
                      ("cilium.io", "ciliumclusterwidenetworkpolicies", "Cluster"),
                      ("cilium.io", "ciliumnetworkpolicies", "Namespaced")}
    assert all(r["operations"] == ["CREATE", "UPDATE", "DELETE"] for r in hook["rules"])


def test_webhook_common_settings(docs):
    hooks = webhooks(docs)
    assert {w["name"] for _, w in hooks} == {"services.netguard.io", "networkpolicies.netguard.io",
                                             "labels.netguard.io", "clusterpolicies.netguard.io"}
    for kind, hook in hooks:
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert 1 <= hook["timeoutSeconds"] <= 10
        assert hook["matchPolicy"] == "Equivalent"
        selector = hook["namespaceSelector"]
        # Exactly the configuration's exempt namespaces are never sent.
        for skipped in ("kube-system", "kube-public", "kube-node-lease", NS):
            assert not selector_matches(selector, namespace_labels(skipped)), (hook["name"], skipped)
        for reviewed in ("default", "demo", "kube-flannel"):
            assert selector_matches(selector, namespace_labels(reviewed)), (hook["name"], reviewed)
        service = hook["clientConfig"]["service"]
        assert (service["namespace"], service["name"], service["port"]) == (NS, "netguard", 443)
        assert service["path"] == ("/validate" if kind == "ValidatingWebhookConfiguration" else "/mutate")
        assert hook["clientConfig"]["caBundle"] == ""  # the placeholder
        core = [r for r in hook["rules"] if r["apiGroups"] in ([""], ["networking.k8s.io"])]
        assert all(rule["scope"] == "Namespaced" and rule["apiVersions"] == ["v1"] for rule in core)
        if hook["name"] in ("clusterpolicies.netguard.io", "labels.netguard.io"):
            # Calico's v3, Cilium's v2, some cluster-scoped: labelled all, guarded as far as they isolate
            families = {r["apiGroups"][0] for r in hook["rules"]} - {"", "networking.k8s.io"}
            assert {"projectcalico.org", "cilium.io"} <= families, hook["name"]
        else:
            assert len(core) == len(hook["rules"]), hook["name"]


def test_failure_policies(docs):
    for kind, hook in webhooks(docs):
        if kind == "ValidatingWebhookConfiguration":
            assert hook["failurePolicy"] == "Fail", hook["name"]
            assert "reinvocationPolicy" not in hook
        else:
            assert hook["failurePolicy"] == "Ignore", hook["name"]
            assert hook["reinvocationPolicy"] == "Never"


def test_every_rule_has_its_needs_listed():
    assert {rule.name.replace("-", "_") for rule in RULES} == set(RULE_NEEDS)


@pytest.mark.parametrize("rule", sorted(RULE_NEEDS))
def test_validating_webhooks_cover_each_rule(docs, rule):
    validating = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    missing = RULE_NEEDS[rule] - covered(validating)
    assert not missing, f"{rule} does not receive {sorted(missing)}"


def test_webhooks_send_only_what_netguard_reviews(docs):
    validating = covered(one(docs, "ValidatingWebhookConfiguration")["webhooks"])
    assert validating == set().union(*RULE_NEEDS.values())
    assert covered(one(docs, "MutatingWebhookConfiguration")["webhooks"]) == MUTATION_NEEDS
    resources = {"services": "Service", "networkpolicies": "NetworkPolicy"} | {
        r: k for (_, k), (r, _) in clusterpolicy.KINDS.items()}
    assert {(g, resources[r]) for g, r, _ in validating} == decide.REVIEWED | clusterpolicy.GUARDED
    assert {(g, resources[r]) for g, r, _ in MUTATION_NEEDS} == decide.REVIEWED | set(clusterpolicy.KINDS)


# --------------------------------------------------------------------------- parameters


def test_url_mode_has_only_webhooks_calling_the_url():
    docs = parse(manifests.render(url="https://127.0.0.1:8443/"))
    assert [d["kind"] for d in docs] == ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]
    assert not {d["kind"] for d in docs} & manifests.IN_CLUSTER_KINDS
    for kind, hook in webhooks(docs):
        path = "/validate" if kind == "ValidatingWebhookConfiguration" else "/mutate"
        assert "service" not in hook["clientConfig"]
        assert hook["clientConfig"]["url"] == f"https://127.0.0.1:8443{path}"
        assert not selector_matches(hook["namespaceSelector"], namespace_labels(NS))


def test_url_with_a_path_prefix():
    docs = parse(manifests.render(url="https://netguard.example.com/admission"))
    urls = {hook["clientConfig"]["url"] for _, hook in webhooks(docs)}
    assert urls == {"https://netguard.example.com/admission/validate",
                    "https://netguard.example.com/admission/mutate"}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "127.0.0.1:8443", "https://", "https://h/?a=1",
                                 "https://h/#x", "https://user:pw@h:8443"])
def test_bad_urls_are_refused(url):
    with pytest.raises(ValueError, match="url"):
        manifests.render(url=url)


def test_ca_bundle_round_trip(ca_dir):
    pem = manifests.load_ca_bundle(ca_dir)
    assert pem == (ca_dir / "ca.crt").read_bytes()
    for rendered in (manifests.render(ca_bundle_pem=pem),
                     manifests.render(ca_bundle_pem=pem, url="https://127.0.0.1:8443")):
        hooks = webhooks(parse(rendered))
        assert len(hooks) == 4
        for _, hook in hooks:
            assert base64.b64decode(hook["clientConfig"]["caBundle"], validate=True) == pem
    from cryptography import x509
    bundle = base64.b64decode(webhooks(parse(manifests.render(ca_bundle_pem=pem)))[0][1]["clientConfig"]["caBundle"])
    assert x509.load_pem_x509_certificate(bundle).subject.rfc4514_string() == "CN=netguard-ca"


def test_ca_bundle_errors(tmp_path):
    with pytest.raises(ValueError, match="ca.crt: no such file"):
        manifests.load_ca_bundle(tmp_path)
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        manifests.load_ca_bundle(tmp_path)
    with pytest.raises(ValueError, match="CA bundle"):
        manifests.render(ca_bundle_pem=b"garbage")


def test_namespace_is_applied_everywhere():
    docs = parse(manifests.render(namespace="guard"))
    assert not [s for s in strings(docs) if NS in s]
    assert one(docs, "Namespace")["metadata"]["name"] == "guard"
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"] == "guard", key(doc)
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["namespace"] == "guard"
    for _, hook in webhooks(docs):
        assert hook["clientConfig"]["service"]["namespace"] == "guard"
        assert not selector_matches(hook["namespaceSelector"], namespace_labels("guard"))
        assert not selector_matches(hook["namespaceSelector"], namespace_labels("kube-system"))
        assert selector_matches(hook["namespaceSelector"], namespace_labels(NS))
    settings = parse_settings(one(docs, "ConfigMap")["data"]["netguard.yaml"])
    assert settings.own_namespace == "guard" and "guard" in settings.exempt_namespaces
    assert settings == Settings(own_namespace="guard")


def test_image_parameter():
    docs = parse(manifests.render(image="registry.example.com/netguard:1.2.3"))
    assert container(docs)["image"] == "registry.example.com/netguard:1.2.3"


@pytest.mark.parametrize("namespace", ["", "Netguard", "-x", "x" * 64, "a_b", "a.b"])
def test_bad_namespaces_are_refused(namespace):
    with pytest.raises(ValueError, match="namespace"):
        manifests.render(namespace=namespace)


@pytest.mark.parametrize("image", ["netguard latest", "netguard", "netguard:latest", "registry:5000/netguard",
                                   "registry.example.com/netguard:latest"])
def test_bad_image_is_refused(image):
    with pytest.raises(ValueError, match="image"):
        manifests.render(image=image)


@pytest.mark.parametrize("image", ["registry:5000/netguard:1.2.3", "netguard@sha256:" + "a" * 64, "netguard:dev"])
def test_versioned_images_are_taken(image):
    assert container(parse(manifests.render(image=image)))["image"] == image


def test_default_image_follows_the_package_version(monkeypatch):
    from webhook.cli import deploy
    monkeypatch.setattr(deploy, "version", lambda: "2.5.0")
    assert container(manifests.objects())["image"] == "netguard:2.5.0"
    monkeypatch.setattr(deploy, "version", lambda: "0+unknown")  # never installed: '+' is no tag character
    assert manifests.default_image() == "netguard:0-unknown"


def test_priority_class_parameter():
    pod = lambda docs: one(docs, "Deployment")["spec"]["template"]["spec"]  # noqa: E731
    docs = manifests.objects(priority_class="netguard-high")
    assert pod(docs)["priorityClassName"] == "netguard-high"
    assert not [d for d in docs if d["kind"] == "ResourceQuota"]  # the quota is for system-cluster-critical
    docs = manifests.objects(priority_class="")
    assert "priorityClassName" not in pod(docs)
    with pytest.raises(ValueError, match="priority class"):
        manifests.objects(priority_class="Not_A_Name")


# --------------------------------------------------------------------------- netguard passes its own rule


def _lb_request(namespace: str) -> AdmissionRequest:
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "edge", "namespace": namespace},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}
    return AdmissionRequest(uid="u1", api_version="admission.k8s.io/v1", kind="Service", group="",
                            namespace=namespace, name="edge", operation="CREATE", user="tester",
                            dry_run=False, object=service, old_object=None, field_manager="kubectl")


def test_own_network_policies_by_netguards_own_code(docs):
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert netpol.default_deny_directions(netpol.spec_of(policies["default-deny"])) == {
        netpol.INGRESS, netpol.EGRESS}
    assert policy_type(policies["default-deny"]) == "default-deny-all"
    for name, policy in policies.items():
        if name != "default-deny":
            spec = netpol.spec_of(policy)
            assert netpol.default_deny_directions(spec) == frozenset(), name
            assert not netpol.opens_every_outside_address(spec), f"{name} would cancel the default-deny"
            # netguard's pods are all the pods of the namespace: read the policy as selecting
            # every pod, and it must still not open everything (it opens one port).
            widened = {**spec, "podSelector": {}}
            assert not netpol.opens_every_outside_address(widened), f"{name} opens every port to everyone"
            assert policy_type(policy) == "allow"
    view = view_of(docs, NS)
    assert view.default_deny_policies(netpol.INGRESS) == ["default-deny"]
    assert view.default_deny_policies(netpol.EGRESS) == ["default-deny"]
    assert view.cancelling_policies() == []


def test_netguard_would_admit_a_load_balancer_in_its_own_namespace(docs):
    # Not because the namespace is exempt: decide as for any other namespace.
    not_exempt = Settings(own_namespace="somewhere-else", exempt_namespaces=frozenset())
    assert NS not in not_exempt.exempt_namespaces
    inventory = OfflineInventory(docs)
    decision = decide.validate(_lb_request(NS), inventory.view(NS), not_exempt)
    assert decision.allowed and decision.rule == "loadbalancer-requires-default-deny"
    assert "default-deny" in decision.reason and not decision.warnings
    # The same request in a namespace without these policies is denied: the check has teeth.
    denied = decide.validate(_lb_request("bare"), inventory.view("bare"), not_exempt)
    assert not denied.allowed
    # With the shipped configuration the namespace is also exempt.
    shipped = parse_settings(one(docs, "ConfigMap")["data"]["netguard.yaml"])
    assert decide.validate(_lb_request(NS), inventory.view(NS), shipped).allowed


# --------------------------------------------------------------------------- the kustomize tree


def kustomizations() -> list[Path]:
    return sorted(MANIFESTS.rglob("kustomization.yaml"))


def test_kustomization_files_exist_and_parse():
    assert {p.parent.relative_to(MANIFESTS).as_posix() for p in kustomizations()} == {
        ".", "base", "cert-manager", "monitoring", "no-match-conditions", "self-managed-certs"}
    for path in kustomizations():
        kustomization = yaml.safe_load(path.read_text())
        assert kustomization["kind"] == "Kustomization", path
        for entry in kustomization.get("resources", []):
            target = (path.parent / entry).resolve()
            assert target.exists(), f"{path}: resource {entry} does not exist"
            if target.is_dir():
                assert (target / "kustomization.yaml").exists(), f"{path}: {entry} is not a kustomization"
                # kustomize refuses an overlay inside the folder it builds on.
                here = path.parent.resolve()
                assert target != here and target not in here.parents, f"{path}: {entry} contains it"
            else:
                assert parse(target.read_text()), f"{path}: {entry} holds no object"
        for patch in kustomization.get("patches", []):
            if "path" in patch:
                target = path.parent / patch["path"]
                assert target.exists(), f"{path}: patch {patch['path']} does not exist"
                assert yaml.safe_load(target.read_text()), target


def test_base_files_equal_render_defaults():
    files = kustomize_docs(MANIFESTS)
    rendered = manifests.objects()
    assert by_key(files) == by_key(rendered)
    assert [key(d) for d in files] == [key(d) for d in rendered]  # same order too


def _json_patch(docs: list[dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    """Apply a kustomization's JSON6902 patches (the only kind the overlays use)."""
    jsonpatch = pytest.importorskip("jsonpatch")
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    out = copy.deepcopy(docs)
    for patch in kustomization.get("patches", []):
        ops = yaml.safe_load((directory / patch["path"]).read_text())
        target = patch["target"]
        hits = [i for i, d in enumerate(out)
                if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        assert len(hits) == 1, target
        out[hits[0]] = jsonpatch.apply_patch(out[hits[0]], ops)
    return out


def _cert_manager_docs() -> list[dict[str, Any]]:
    directory = MANIFESTS / "cert-manager"
    docs = _json_patch(manifests.objects(), directory)
    return docs + parse((directory / "certificates.yaml").read_text())


def _no_match_conditions_docs(base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _json_patch(base, MANIFESTS / "no-match-conditions")


def check_cert_manager(docs: list[dict[str, Any]]) -> None:
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        config = one(docs, kind)
        assert config["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NS}/netguard"}
        assert all("caBundle" not in hook["clientConfig"] for hook in config["webhooks"])
    serving = one(docs, "Certificate", "netguard")["spec"]
    assert serving["secretName"] == "netguard-tls"
    assert {"netguard.netguard-system.svc", "netguard.netguard-system.svc.cluster.local"} <= set(serving["dnsNames"])
    assert serving["issuerRef"] == {"kind": "Issuer", "name": "netguard-ca"}
    assert one(docs, "Issuer", "netguard-ca")["spec"]["ca"]["secretName"] == \
        one(docs, "Certificate", "netguard-ca")["spec"]["secretName"]
    assert one(docs, "Certificate", "netguard-ca")["spec"]["isCA"] is True
    assert one(docs, "Issuer", "netguard-selfsigned")["spec"] == {"selfSigned": {}}
    for kind in ("Issuer", "Certificate"):
        assert all(d["metadata"]["namespace"] == NS for d in docs if d["kind"] == kind)


def check_no_match_conditions(docs: list[dict[str, Any]], layer_below: list[dict[str, Any]]) -> None:
    """The layer below with no matchConditions anywhere, and nothing else changed."""
    assert "matchConditions" not in str(docs)
    strip = copy.deepcopy(layer_below)
    for doc in strip:
        for hook in doc.get("webhooks", []):
            hook.pop("matchConditions", None)
    assert by_key(docs) == by_key(strip)


def test_base_match_conditions(docs):
    hooks = {hook["name"]: hook for hook in one(docs, "ValidatingWebhookConfiguration")["webhooks"]}
    [lb] = hooks["services.netguard.io"]["matchConditions"]
    assert lb["name"] == "loadbalancer"
    for variable in ("object", "oldObject"):  # null on DELETE / CREATE: guarded before use
        assert f"{variable} != null && has({variable}.spec) && has({variable}.spec.type)" in lb["expression"]
        assert f"{variable}.spec.type == 'LoadBalancer'" in lb["expression"]
    # Every NetworkPolicy request can be refused (protect-default-deny, required-labels).
    assert "matchConditions" not in hooks["networkpolicies.netguard.io"]
    assert "matchConditions" not in str(one(docs, "MutatingWebhookConfiguration"))  # labels every Service


def test_cert_manager_overlay_patches():
    check_cert_manager(_cert_manager_docs())


def test_no_match_conditions_overlay_patches():
    check_no_match_conditions(_no_match_conditions_docs(manifests.objects()), manifests.objects())


def test_no_match_conditions_on_top_of_cert_manager():
    docs = _no_match_conditions_docs(_cert_manager_docs())
    check_no_match_conditions(docs, _cert_manager_docs())
    check_cert_manager(docs)


# --------------------------------------------------------------------------- from the configuration


def _configmap_text() -> str:
    return one(kustomize_docs(MANIFESTS), "ConfigMap")["data"]["netguard.yaml"]


def test_base_equals_what_its_own_configuration_gives():
    # The ConfigMap of the base, given back as --config, renders the base again: the webhooks'
    # namespaceSelector and matchConditions are those its configuration asks for.
    text = _configmap_text()
    assert by_key(manifests.objects(config_text=text)) == by_key(kustomize_docs(MANIFESTS))
    assert by_key(manifests.objects(config_text=text)) == by_key(manifests.objects())


def test_namespace_selector_follows_exempt_namespaces():
    config = "exemptNamespaces: [kube-system, platform]\nownNamespace: guard\n"
    docs = manifests.objects(config_text=config, config_source="my.yaml")
    assert one(docs, "ConfigMap")["data"]["netguard.yaml"] == config  # the file as given
    for _, hook in webhooks(docs):
        assert hook["namespaceSelector"]["matchExpressions"] == [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["guard", "kube-system", "platform"]}]
        assert hook["clientConfig"]["service"]["namespace"] == "guard"
        # kube-public is no longer exempt in this configuration: it must be sent.
        assert selector_matches(hook["namespaceSelector"], namespace_labels("kube-public"))
    assert one(docs, "Namespace")["metadata"]["name"] == "guard"


def test_required_labels_widen_what_is_sent():
    docs = manifests.objects(config_text="labels:\n  required: [team, example.com/owner]\n")
    services, policies, _, labels = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    [condition] = services["matchConditions"]
    assert condition["name"] == "loadbalancer-or-refused-labels"
    assert "['team', 'example.com/owner'].exists(k, (!has(object.metadata.labels)" in condition["expression"]
    base = one(manifests.objects(), "ValidatingWebhookConfiguration")["webhooks"][0]["matchConditions"][0]
    assert condition["expression"].startswith(base["expression"] + " || ")
    # What required-labels only warns on goes to a webhook that fails open.
    assert (labels["name"], labels["failurePolicy"], labels["matchConditions"][0]["name"]) == (
        "service-labels.netguard.io", "Ignore", "warned-labels")
    assert {k: v for k, v in labels.items() if k not in ("name", "failurePolicy", "matchConditions")} == {
        k: v for k, v in services.items() if k not in ("name", "failurePolicy", "matchConditions")}


def test_config_errors_name_the_file_and_line():
    from webhook.core.config import ConfigError
    with pytest.raises(ConfigError, match=r"my\.yaml line 2: .*exemptNamespaces"):
        manifests.objects(config_text="ownNamespace: guard\nexemptNamespaces: nope\n", config_source="my.yaml")
    with pytest.raises(ValueError, match="namespace 'other' differs from ownNamespace 'guard' in my.yaml"):
        manifests.objects(namespace="other", config_text="ownNamespace: guard\n", config_source="my.yaml")


# --------------------------------------------------------------------------- with kubectl


def kubectl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def relative(target: Path, start: Path) -> str:
    return os.path.relpath(target, start)  # kustomize refuses absolute resource paths


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")


@needs_kubectl
def test_kubectl_kustomize_base_equals_render():
    result = kubectl("kustomize", "manifests/")
    assert result.returncode == 0, result.stderr
    assert by_key(parse(result.stdout)) == by_key(manifests.objects())


@needs_kubectl
def test_kubectl_kustomize_overlays():
    result = kubectl("kustomize", "manifests/cert-manager/")
    assert result.returncode == 0, result.stderr
    built = parse(result.stdout)
    check_cert_manager(built)
    assert by_key(built) == by_key(_cert_manager_docs())
    result = kubectl("kustomize", "manifests/no-match-conditions/")
    assert result.returncode == 0, result.stderr
    built = parse(result.stdout)
    check_no_match_conditions(built, manifests.objects())
    assert by_key(built) == by_key(_no_match_conditions_docs(manifests.objects()))


def readme_overlay(marker: str) -> str:
    """The kustomization.yaml block of manifests/README.md that contains `marker`."""
    text = (MANIFESTS / "README.md").read_text()
    blocks = [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith("yaml\n")]
    [block] = [b for b in blocks if marker in b]
    return block


def build_overlay(tmp_path: Path, name: str, text: str) -> list[dict[str, Any]]:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(text.replace("../manifests", relative(MANIFESTS, folder)))
    result = kubectl("kustomize", str(folder))
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


@needs_kubectl
def test_kubectl_kustomize_readme_recipes(tmp_path):
    # no-match-conditions on top of cert-manager (README: replace ../base with ../cert-manager).
    combined = tmp_path / "combined"
    shutil.copytree(MANIFESTS / "no-match-conditions", combined)
    text = (combined / "kustomization.yaml").read_text()
    (combined / "kustomization.yaml").write_text(
        text.replace("  - ../base\n", f"  - {relative(MANIFESTS / 'cert-manager', combined)}\n"))
    result = kubectl("kustomize", str(combined))
    assert result.returncode == 0, result.stderr
    check_no_match_conditions(parse(result.stdout), _cert_manager_docs())
    check_cert_manager(parse(result.stdout))
    # The README's ConfigMap patch changes no key the webhooks depend on: the result is what
    # `netguard manifests --config` gives for the same file.
    built = build_overlay(tmp_path, "configured", readme_overlay("op: replace"))
    config = one(built, "ConfigMap")["data"]["netguard.yaml"]
    assert parse_settings(config) != parse_settings("")  # the recipe does change something
    expected = manifests.objects(config_text=config, image="registry.example.com/netguard:0.1.0")
    assert by_key(built) == by_key(expected)
    # The README's overlay on rendered objects, for the keys that change the webhooks.
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    config = "labels:\n  required: [team]\n"
    (rendered / "netguard.yaml").write_text(manifests.render(config_text=config))
    (rendered / "kustomization.yaml").write_text(readme_overlay("resources:\n  - netguard.yaml"))
    result = kubectl("kustomize", str(rendered))
    assert result.returncode == 0, result.stderr
    assert by_key(parse(result.stdout)) == by_key(
        manifests.objects(config_text=config, image="registry.example.com/netguard:0.1.0"))
    # The kind recipe: an overlay that sets the image.
    kind = tmp_path / "kind"
    kind.mkdir()
    (kind / "kustomization.yaml").write_text(
        f"resources:\n  - {relative(MANIFESTS, kind)}\nimages:\n  - name: netguard\n    newTag: dev\n")
    result = kubectl("kustomize", str(kind))
    assert result.returncode == 0, result.stderr
    assert container(parse(result.stdout))["image"] == "netguard:dev"


@needs_kubectl
def test_kubectl_apply_dry_run_client():
    if kubectl("config", "current-context").returncode != 0:
        pytest.skip("kubectl apply --dry-run=client needs a cluster for discovery; no kubeconfig context "
                    "(the offline `kubectl kustomize` tests cover the build)")
    result = kubectl("apply", "-k", "manifests/", "--dry-run=client", "-o", "yaml", "--request-timeout=10s")
    if result.returncode != 0 and any(s in result.stderr for s in (
            "connection refused", "unable to recognize", "failed to download openapi", "i/o timeout",
            "no such host", "Unauthorized", "forbidden")):
        pytest.skip(f"no usable cluster for kubectl's discovery: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    applied = parse(result.stdout)
    items = applied[0]["items"] if len(applied) == 1 and applied[0]["kind"] == "List" else applied
    assert {(d["kind"], d["metadata"]["name"]) for d in items} == {
        (d["kind"], d["metadata"]["name"]) for d in manifests.objects()}


# --------------------------------------------------------------------------- image and CLI


def test_cli_manifests_when_wired(ca_dir, capsys):
    from webhook.cli import main as cli

    try:
        args = cli.build_parser().parse_args(["manifests", "--namespace", "guard", "--certs", str(ca_dir)])
    except SystemExit:
        pytest.skip("`netguard manifests` is not wired into webhook/cli/main.py yet")
    assert args.command == "manifests"
    capsys.readouterr()
    assert cli.main(["manifests", "--namespace", "guard", "--image", "x/netguard:1", "--certs", str(ca_dir)]) == 0
    out = capsys.readouterr().out
    assert parse(out) == manifests.objects(namespace="guard", image="x/netguard:1",
                                           ca_bundle_pem=(ca_dir / "ca.crt").read_bytes())
    assert cli.main(["manifests", "--url", "https://127.0.0.1:8443"]) == 0
    assert parse(capsys.readouterr().out) == manifests.objects(url="https://127.0.0.1:8443")


def test_cli_manifests_config_and_priority_class(tmp_path, capsys):
    from webhook.cli import main as cli

    config = tmp_path / "netguard.yaml"
    config.write_text("ownNamespace: guard\nlabels:\n  required: [team]\n")
    assert cli.main(["manifests", "--config", str(config), "--priority-class", ""]) == 0
    out = parse(capsys.readouterr().out)
    assert out == manifests.objects(config_text=config.read_text(), priority_class="")
    assert one(out, "Namespace")["metadata"]["name"] == "guard"  # the namespace follows ownNamespace
    # Bad input: a clear error naming the flag or the file and line, and nothing printed.
    config.write_text("ownNamespace: guard\nlabels: {required: [Bad Key]}\n")
    assert cli.main(["manifests", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert f"{config} line 2" in captured.err and captured.out == ""
    for argv, flag in ((["--image", "netguard:latest"], "--image"), (["--priority-class", "X"], "--priority-class"),
                       (["--namespace", "Bad"], "--namespace")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["manifests", *argv])
        assert str(exit_info.value).startswith(f"netguard manifests: {flag}: "), exit_info.value
    assert capsys.readouterr().out == ""


def test_deploy_docs_never_write_the_local_certs():
    # ./certs is the local server's (`netguard serve` without --certs); deploy commands that
    # reissue its certificate break the README's local curls.
    import re
    for path in (ROOT / "README.md", MANIFESTS / "README.md", ROOT / "docs" / "deploy.md"):
        shell = "\n".join(b.split("\n", 1)[1] for b in path.read_text().split("```")[1::2] if b.startswith("sh\n"))
        assert "netguard certs" in shell or path.name == "deploy.md", path
        for line in shell.splitlines():
            if line.lstrip().startswith("#"):
                continue
            assert not re.search(r"--out\s+(\./)?certs(\s|/|$)", line), f"{path}: {line}"
            if "kubectl" in line or "netguard manifests" in line:
                assert not re.search(r"(--certs[ =]|--cert[ =]|--key[ =])(\./)?certs(\s|/|$)", line), f"{path}: {line}"
