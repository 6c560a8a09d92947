"""The Kubernetes objects that deploy netguard, built in Python and rendered as YAML.

`render()` is what `netguard manifests` prints. With its defaults it produces exactly the
objects of the kustomize base in `manifests/` (tests/cli/test_manifests.py compares them object for
object, so the two can never drift); the package does not read those files, so it works installed.

- `ca_bundle_pem`: the PEM of the CA that signed the serving certificate (`certs/ca.crt`); it is
  written base64-encoded as `caBundle` into every webhook. Without it `caBundle` is an empty
  placeholder, to be filled by hand, by `netguard manifests --certs`, or by cert-manager.
- `url` (e.g. `https://127.0.0.1:8443`): the webhooks call `URL/validate` and `URL/mutate`
  instead of the in-cluster Service, and only the two webhook configurations are rendered, for a
  netguard that runs outside the cluster (a local kube-apiserver in end-to-end tests, docs/design.md, End-to-end tests).
- `namespace`: netguard's own namespace, applied everywhere: the namespaced objects, the
  ClusterRoleBinding subject, the webhooks' Service reference and namespaceSelector exclusion,
  and `ownNamespace` in the configuration.
- `config_text` (`netguard manifests --config FILE`): the configuration the ConfigMap carries,
  and what the webhooks' namespaceSelector and matchConditions are derived from
  (webhook/cli/webhooks.py), so that the two never disagree. Without it: the defaults.
- `image`: default `netguard:VERSION`, this package's version (never `latest`).
- `priority_class`: the pods' priorityClassName (default system-cluster-critical; '' for none).

Pure: stdlib, PyYAML and the configuration parser, no I/O except `load_ca_bundle`, nothing built
at import time.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webhook.cli.deploy import (
    DEFAULT_NAMESPACE,
    DEFAULT_PRIORITY_CLASS,
    IN_CLUSTER_KINDS,
    WEBHOOK_TIMEOUT_SECONDS,
    config_yaml,
    default_image,
    deployment_objects,
)
from webhook.cli.webhooks import webhook_configurations
from webhook.core import yamltext
from webhook.core.config import parse_settings
from webhook.core.settings import Settings

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_PRIORITY_CLASS",
    "IN_CLUSTER_KINDS",
    "config_yaml",
    "default_image",
    "load_ca_bundle",
    "objects",
    "render",
]

_NAMESPACE_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


# --------------------------------------------------------------------------- checks


def _check_namespace(namespace: str) -> None:
    if not (isinstance(namespace, str) and 0 < len(namespace) <= 63 and _NAMESPACE_RE.fullmatch(namespace)):
        raise ValueError(
            f"namespace must be a DNS-1123 label (at most 63 lowercase alphanumerics or '-', "
            f"starting and ending alphanumeric), got {namespace!r}")


def _check_image(image: str) -> None:
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise ValueError(f"image must be a non-empty reference without spaces, got {image!r}")
    last = image.rsplit("/", 1)[-1]
    if "@" not in last and (":" not in last or last.endswith(":latest")):
        # Without a tag the runtime pulls `latest`: which version runs would depend on the day.
        raise ValueError(f"image must name a version (REPO:TAG or REPO@sha256:DIGEST), not latest, got {image!r}")


def _check_priority_class(name: str) -> None:
    if name and not (len(name) <= 253 and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name)):
        raise ValueError(f"priority class must be a DNS-1123 subdomain (or '' for none), got {name!r}")


def _settings(namespace: str | None, config_text: str | None, config_source: str) -> Settings:
    """The configuration the objects follow; `namespace` must agree with its ownNamespace."""
    if config_text is None:
        ns = DEFAULT_NAMESPACE if namespace is None else namespace
        _check_namespace(ns)
        return Settings(own_namespace=ns)
    settings = parse_settings(config_text, config_source)  # a ConfigError names file, line and key
    if namespace is not None and namespace != settings.own_namespace:
        raise ValueError(f"namespace {namespace!r} differs from ownNamespace {settings.own_namespace!r} "
                         f"in {config_source}: set ownNamespace: {namespace} there, or leave out the namespace")
    return settings


def _normalise_url(url: str) -> str:
    """The webhook base URL without a trailing '/'; kube-apiserver requires https and no query."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"url must be https://HOST[:PORT][/PATH], got {url!r}")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError(f"url must not have a query or a fragment, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"url must not carry user information, got {url!r}")
    return url.rstrip("/")


def _encode_ca_bundle(ca_bundle_pem: bytes | str | None) -> str:
    if ca_bundle_pem is None:
        return ""  # placeholder: set by `--certs`, by hand, or by cert-manager's CA injector
    pem = ca_bundle_pem.encode("ascii") if isinstance(ca_bundle_pem, str) else bytes(ca_bundle_pem)
    if _PEM_CERT not in pem:
        raise ValueError("CA bundle must be PEM holding at least one certificate "
                         "('-----BEGIN CERTIFICATE-----')")
    return base64.b64encode(pem).decode("ascii")


def load_ca_bundle(certs_dir: str | os.PathLike[str]) -> bytes:
    """The PEM of `certs_dir/ca.crt` (as written by `netguard certs`); ValueError names the file."""
    path = Path(certs_dir) / "ca.crt"
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (create it with `netguard certs --out {certs_dir}`)") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    if _PEM_CERT not in pem:
        raise ValueError(f"{path}: not a PEM certificate")
    return pem


# --------------------------------------------------------------------------- entry points


def objects(namespace: str | None = None, image: str | None = None,
            ca_bundle_pem: bytes | str | None = None, url: str | None = None,
            config_text: str | None = None, config_source: str = "netguard.yaml",
            priority_class: str = DEFAULT_PRIORITY_CLASS) -> list[dict[str, Any]]:
    """The objects of `render()`, as dicts, in apply order."""
    settings = _settings(namespace, config_text, config_source)
    ns = settings.own_namespace
    image = default_image() if image is None else image
    _check_image(image)
    _check_priority_class(priority_class)
    if url is not None:
        url = _normalise_url(url)
    ca_bundle = _encode_ca_bundle(ca_bundle_pem)
    webhooks = webhook_configurations(settings, ca_bundle, url, WEBHOOK_TIMEOUT_SECONDS)
    if url is not None:
        return webhooks
    text = config_yaml(ns) if config_text is None else config_text
    return [*deployment_objects(ns, image, text, priority_class or None), *webhooks]


def render(namespace: str | None = None, image: str | None = None,
           ca_bundle_pem: bytes | None = None, url: str | None = None,
           config_text: str | None = None, config_source: str = "netguard.yaml",
           priority_class: str = DEFAULT_PRIORITY_CLASS) -> str:
    """Multi-document YAML of the objects that deploy netguard (see the module docstring)."""
    docs = objects(namespace, image, ca_bundle_pem, url, config_text, config_source, priority_class)
    header = "# Generated by `netguard manifests`; the kustomize base in manifests/ holds the same objects.\n"
    return header + "---\n".join(yamltext.dump(doc) for doc in docs)
