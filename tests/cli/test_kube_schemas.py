"""Every variant of the deployment validates against the Kubernetes API schemas, strictly (no
unknown field, every required one), for each minor version netguard supports: 1.28 to 1.33.

The schemas are those of the `kubernetes-validate` package (the `test` extra), which ships the
OpenAPI schemas of every Kubernetes version from 1.25 on. The variants are built twice: with
`kubectl kustomize` where kubectl is installed (the CI machine has it), and here in Python
(the kustomizations' resources and JSON patches, as tests/cli/test_manifests.py applies them),
so the check runs without kubectl too. `netguard manifests` variants (`--url`, `--config`,
`--priority-class`) are rendered directly.

Custom resources have no schema in Kubernetes itself, so their kinds are skipped by group, with
the reason below; any other object without a schema fails the test.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.cli.test_manifests import (
    MANIFESTS,
    ROOT,
    _cert_manager_docs,
    _no_match_conditions_docs,
    needs_kubectl,
    parse,
)
from webhook.cli import manifests

kubernetes_validate = pytest.importorskip("kubernetes_validate")
from kubernetes_validate import utils as kv_utils  # noqa: E402

VERSIONS = ("1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
# API groups of custom resources: their schemas live in their CRDs, not in Kubernetes.
CRD_GROUPS = {
    "cert-manager.io": "cert-manager's Issuer and Certificate are CRDs (the cert-manager overlay); "
                       "cert-manager validates them when they are applied",
    "monitoring.coreos.com": "the Prometheus Operator's ServiceMonitor and PrometheusRule are CRDs",
}
REQUIRED_LABELS = "labels:\n  required: [team]\nrules:\n  required-labels: {action: warn}\n"


def group(obj: dict[str, Any]) -> str:
    api_version = obj["apiVersion"]
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def python_variants() -> dict[str, list[dict[str, Any]]]:
    base = manifests.objects()
    return {
        "base": base,
        "cert-manager": _cert_manager_docs(),
        "no-match-conditions": _no_match_conditions_docs(base),
        "no-match-conditions on cert-manager": _no_match_conditions_docs(_cert_manager_docs()),
        "netguard manifests --url": manifests.objects(url="https://127.0.0.1:8443"),
        "netguard manifests --config (required labels, warn) --priority-class ''":
            manifests.objects(config_text=REQUIRED_LABELS, priority_class=""),
        "netguard manifests --config (required labels, deny)":
            manifests.objects(config_text="labels:\n  required: [team, example.com/owner]\n"),
        "netguard manifests --namespace guard --priority-class netguard-high":
            manifests.objects(namespace="guard", priority_class="netguard-high"),
    }


def kubectl_variants() -> dict[str, list[dict[str, Any]]]:
    built = {}
    for kustomization in sorted(MANIFESTS.rglob("kustomization.yaml")):
        folder = kustomization.parent.relative_to(ROOT).as_posix()
        result = subprocess.run(["kubectl", "kustomize", folder], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"kubectl kustomize {folder}: {result.stderr}"
        built[f"kubectl kustomize {folder}"] = parse(result.stdout)
    return built


def validate_all(variants: dict[str, list[dict[str, Any]]]) -> tuple[int, set[str]]:
    """Validate each distinct object once per version; the count of validations, and the kinds
    skipped. Fails with every problem found, naming variant, object, version and field."""
    problems, skipped, seen, count = [], set(), set(), 0
    for variant, docs in variants.items():
        assert docs, variant
        for obj in docs:
            if group(obj) in CRD_GROUPS:
                skipped.add(f"{obj['kind']}.{group(obj)}")
                continue
            canonical = json.dumps(obj, sort_keys=True)
            if canonical in seen:
                continue
            seen.add(canonical)
            for version in VERSIONS:
                count += 1
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    path = ".".join(str(p) for p in exc.path)
                    problems.append(f"{variant}: {obj['kind']}/{obj['metadata']['name']} against {version}: "
                                    f"{path}: {exc.message}")
                except kv_utils.SchemaNotFoundError as exc:
                    problems.append(f"{variant}: {exc.message}")
    assert not problems, "\n".join(problems)
    return count, skipped


def test_the_package_ships_every_version():
    shipped = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
    assert set(VERSIONS) <= shipped, f"kubernetes-validate ships {sorted(shipped)}"
    assert manifests.objects()[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] == \
        f"v{VERSIONS[0]}"  # the oldest version validated is the one Pod Security is pinned to


def test_python_variants_validate_strictly():
    count, skipped = validate_all(python_variants())
    assert count >= 20 * len(VERSIONS)
    assert skipped == {"Issuer.cert-manager.io", "Certificate.cert-manager.io"}


@needs_kubectl
def test_kubectl_kustomize_variants_validate_strictly():
    variants = kubectl_variants()
    assert {name.rsplit(" ", 1)[1] for name in variants} == {
        "manifests", "manifests/base", "manifests/cert-manager", "manifests/no-match-conditions",
        "manifests/monitoring", "manifests/self-managed-certs"}
    validate_all(variants)


def test_validation_has_teeth():
    # A field no Kubernetes version knows, and one of the wrong type, are refused.
    deployment = next(d for d in manifests.objects() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    bad = {**deployment, "spec": {**deployment["spec"], "template": {
        "metadata": deployment["spec"]["template"]["metadata"],
        "spec": {**pod, "priorityClass": "system-cluster-critical"}}}}
    with pytest.raises(AssertionError, match="priorityClass"):
        validate_all({"typo": [bad]})
    webhook = next(d for d in manifests.objects() if d["kind"] == "ValidatingWebhookConfiguration")
    hooks = [{**webhook["webhooks"][0], "matchConditions": [{"name": "x"}]}]  # no expression
    with pytest.raises(AssertionError, match="expression"):
        validate_all({"no expression": [{**webhook, "webhooks": hooks}]})
