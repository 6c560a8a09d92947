"""`netguard serve --manage-certs [NAMESPACE/]SECRET`: the certificates kept in that Secret, the
CA written into netguard's own two webhook configurations, the serving pair into --certs.

The first round runs here, in the master, before gunicorn starts (the server needs its files to
bind); the workers keep them current (webhook/serve/certloop.py says why there)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from webhook.cli import deploy

POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WEBHOOKS = (("ValidatingWebhookConfiguration", deploy.NAME), ("MutatingWebhookConfiguration", deploy.NAME))


def pod_namespace() -> str:
    try:
        return POD_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return os.environ.get("POD_NAMESPACE", "")


def service_names(namespace: str) -> list[str]:
    """The names kube-apiserver calls netguard's Service by (webhook/cli/deploy.py)."""
    svc = f"{deploy.NAME}.{namespace}.svc"
    return [deploy.NAME, f"{deploy.NAME}.{namespace}", svc, f"{svc}.cluster.local"]


def bootstrap(args: argparse.Namespace, cert_dir: Path, live: bool) -> Callable:
    """The first round (or a clear SystemExit); returns what each worker builds its rotator with."""
    from webhook.inventory.kube import ClusterError, object_api
    from webhook.serve import certloop
    from webhook.serve.certrotator import CertRotator, Target

    flag = f"--manage-certs {args.manage_certs[0] + '/' if args.manage_certs[0] else ''}{args.manage_certs[1]}"
    if not live:
        raise SystemExit(f"netguard: {flag}: needs the cluster: run in a pod, or give --kubeconfig")
    namespace, secret = args.manage_certs
    namespace = namespace or pod_namespace()
    if not namespace:
        raise SystemExit(f"netguard: {flag}: the pod's namespace is unknown ({POD_NAMESPACE_FILE} cannot "
                         "be read): give NAMESPACE/SECRET")
    hosts = tuple(dict.fromkeys([*(h.strip() for h in args.cert_host or () if h.strip()), *service_names(namespace)]))
    target = Target(namespace, secret, WEBHOOKS, hosts, cert_dir)

    def make_rotator():
        api = object_api(args.kubeconfig)
        return CertRotator(api, target), api

    try:
        certloop.bootstrap(make_rotator)
    except ClusterError as exc:
        raise SystemExit(f"netguard: {flag}: {exc}")
    return make_rotator


def start_in_worker(make_rotator: Callable, cert_dir: Path) -> None:
    from webhook.serve.certloop import LOCK_FILE, RotationLoop
    RotationLoop(make_rotator, cert_dir / LOCK_FILE).start()
