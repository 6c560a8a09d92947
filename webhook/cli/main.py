"""The `netguard` command: serve, certs, manifests, check, audit, fix.

`netguard serve` with no arguments is the embedded default: 127.0.0.1:8443, certificates generated
into ./certs when absent, default configuration, the offline inventory (no cluster needed).
With --kubeconfig, or inside a pod, cluster state comes live from the API instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from webhook.cli import flags
from webhook.cli.configfile import load_settings_or_default
from webhook.core.config import ConfigError
from webhook.core.settings import Settings
from webhook.serve import certs
from webhook.serve.version import version

LOCAL_HOSTS = ("127.0.0.1", "localhost")
PASSTHROUGH = {"check": "evaluate manifests offline with the server's rules",
               "audit": "scan a live cluster for violations",
               "fix": "write the NetworkPolicies that get LoadBalancers admitted without warnings"}


SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def _in_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and SERVICE_ACCOUNT_TOKEN.exists()


def _inventory_factory(args: argparse.Namespace, settings: Settings):
    """What each worker builds its inventory with: the live cluster through --kubeconfig or the
    pod's service account, else the offline inventory of --objects. Problems with either are
    found here, before the fork, so the start fails with a clear message."""
    from webhook.inventory.offline import ObjectsError, OfflineInventory

    live = bool(args.kubeconfig) or (_in_pod() and not args.offline)
    if live and args.objects:
        raise SystemExit("netguard: --objects is for the offline inventory; drop it or --kubeconfig")
    if not live:
        try:
            OfflineInventory.from_path(args.objects)
        except ObjectsError as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            raise SystemExit("\n".join(f"netguard: --objects: {p}" for p in problems))
        return lambda: OfflineInventory.from_path(args.objects, settings.labels.required)

    from webhook.inventory.cluster import ClusterInventory
    options = dict(namespace_labels=settings.namespace_label_keys(), required_labels=settings.labels.required)
    if args.kubeconfig:
        try:  # load once here to fail early on a bad kubeconfig; workers load their own
            ClusterInventory.from_kubeconfig(args.kubeconfig)
        except Exception as exc:
            raise SystemExit(f"netguard: --kubeconfig {args.kubeconfig}: {exc}")
        return lambda: ClusterInventory.from_kubeconfig(args.kubeconfig, **options)
    return lambda: ClusterInventory.in_cluster(**options)


def _serve(args: argparse.Namespace) -> int:
    from webhook.serve import metricsdir
    from webhook.serve.server import MULTIPROC_ENV, prepare_metrics_dir

    # Before the fork and before prometheus_client is imported, so every worker writes its
    # metrics where /metrics aggregates them. Removed on every way out of the master, a refused
    # start included (webhook/serve/metricsdir.py).
    own_metrics_dir = None if os.environ.get(MULTIPROC_ENV) else metricsdir.make()
    prepare_metrics_dir(str(own_metrics_dir) if own_metrics_dir else os.environ[MULTIPROC_ENV])
    master = os.getpid()
    try:
        return _run_server(args)
    finally:
        # Workers are forked from inside run() and leave through this frame too: only the
        # master, once everything stopped, removes the folder it made for this run.
        if own_metrics_dir and os.getpid() == master:
            metricsdir.remove(own_metrics_dir)


def _run_server(args: argparse.Namespace) -> int:
    # Imported here so `netguard certs` works without loading Flask, and after the metrics folder.
    from webhook.serve import tlsfiles
    from webhook.serve.admission import Admission
    from webhook.serve.app import create_app
    from webhook.serve.auditlog import AuditLog
    from webhook.serve.metrics import Metrics
    from webhook.serve.monitor import Monitor
    from webhook.serve.server import IO_TIMEOUT_SECONDS, NetguardServer, ServeOptions

    settings = load_settings_or_default(args.config)
    make_inventory = _inventory_factory(args, settings)
    cert_dir = Path(args.certs)
    make_rotator = None
    if args.cert_host and not args.manage_certs:
        raise SystemExit("netguard: --cert-host names the self-managed certificate: give --manage-certs too")
    if args.manage_certs:  # the Secret's certificates written to cert_dir before anything checks it
        from webhook.cli import managedcerts
        # The API is needed for the Secret even with the offline inventory (--offline in a pod).
        make_rotator = managedcerts.bootstrap(args, cert_dir, bool(args.kubeconfig) or _in_pod())
    if not (cert_dir / "tls.crt").exists() or not (cert_dir / "tls.key").exists():
        if args.certs_given:
            raise SystemExit(f"netguard: --certs {cert_dir}: tls.crt and tls.key are required")
        try:
            certs.ensure(cert_dir, LOCAL_HOSTS)
        except certs.CertError as exc:
            raise SystemExit(f"netguard: --certs {cert_dir}: {exc}")
        print(f"netguard: generated a CA and serving certificate in {cert_dir}/ "
              f"(trust {cert_dir}/ca.crt)", file=sys.stderr)
    if args.metrics_bind and args.metrics_bind.rsplit(":", 1)[1] == args.bind.rsplit(":", 1)[1]:
        raise SystemExit(f"netguard: --metrics-bind {args.metrics_bind}: needs a port of its own, "
                         f"not the webhook's (--bind {args.bind})")
    client_ca = Path(args.client_ca) if args.client_ca else None
    try:  # refuse to start on files every handshake would fail on, naming the file and why
        tlsfiles.check(cert_dir / "tls.crt", cert_dir / "tls.key", client_ca)
    except tlsfiles.TLSFileError as exc:
        flag = "--client-ca" if client_ca is not None and str(exc).startswith(str(client_ca)) else "--certs"
        raise SystemExit(f"netguard: {flag}: {exc}")

    def app_factory():  # runs in each worker, after fork: watch threads must start here
        inventory = make_inventory()
        inventory.start()
        metrics = Metrics()
        metrics.start()  # flushes the batched admission counts every second (webhook/serve/metrics.py)
        metrics.watch_certificates(cert_dir)  # netguard_certificate_expiry_timestamp_seconds
        Monitor(inventory, settings, metrics).start()
        if make_rotator is not None:  # one worker per pod keeps the certificates current
            managedcerts.start_in_worker(make_rotator, cert_dir)
        audit = AuditLog()
        audit.on_dropped = metrics.audit_dropped.inc  # lines dropped while stdout is stalled
        audit.start()  # lines written by a thread of the worker's own (webhook/serve/auditlog.py)
        return create_app(Admission(settings, inventory), audit, metrics,
                          plain_port=int(args.metrics_bind.rsplit(":", 1)[1]) if args.metrics_bind else None)

    options = ServeOptions(bind=args.bind, certs=cert_dir, workers=args.workers, threads=args.threads,
                           client_ca=client_ca, io_timeout=args.io_timeout or IO_TIMEOUT_SECONDS,
                           metrics_bind=args.metrics_bind, max_body_bytes=settings.max_body_bytes)
    server = NetguardServer(options, app_factory)
    if args.log_format == "json":  # before run(): gunicorn makes its logger when it starts
        from webhook.serve.jsonlog import JsonLogger
        server.cfg.set("logger_class", JsonLogger)
    server.run()
    return 0


def _certs(args: argparse.Namespace) -> int:
    hosts = args.host or ([] if args.service else list(LOCAL_HOSTS))
    try:
        files = certs.generate(args.out, hosts, service=args.service, namespace=args.namespace,
                               days=args.days)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"netguard certs: {exc}")
    print(f"wrote {files.ca_crt}, {files.ca_key}, {files.tls_crt}, {files.tls_key}")
    return 0


def _manifests(args: argparse.Namespace) -> int:
    from webhook.cli import manifests
    from webhook.cli.configfile import read_config
    config_text = read_config(args.config) if args.config else None  # a ConfigError: exit 2
    try:
        ca_bundle = manifests.load_ca_bundle(args.certs) if args.certs else None
        text = manifests.render(namespace=args.namespace, image=args.image, ca_bundle_pem=ca_bundle,
                                url=args.url, config_text=config_text,
                                config_source=args.config or "netguard.yaml",
                                priority_class=args.priority_class)
    except ConfigError:
        raise
    except ValueError as exc:
        flag = next((f for f, word in (("--namespace", "namespace"), ("--image", "image"), ("--url", "url"),
                                       ("--priority-class", "priority class")) if str(exc).startswith(word)), None)
        raise SystemExit(f"netguard manifests: {flag + ': ' if flag else ''}{exc}")
    sys.stdout.write(text)
    return 0


def _config(args: argparse.Namespace) -> int:
    from webhook.core import reference
    if args.what == "reference":
        sys.stdout.write(reference.reference_markdown())
    elif args.what == "check":
        if not args.file:
            raise SystemExit("netguard config check: give the configuration file to check")
        load_settings_or_default(args.file)  # a ConfigError names the file, line and key
        print(f"{args.file}: a valid netguard configuration")
    else:
        sys.stdout.write(reference.defaults_yaml(args.namespace))
    return 0


def _passthrough(name: str):
    def run(args: argparse.Namespace) -> int:
        if name == "check":
            from webhook.cli.check import run_check
            return run_check(args.rest)
        if name == "fix":
            from webhook.cli.fix import run_fix
            return run_fix(args.rest)
        from webhook.cli.audit import run_audit
        return run_audit(args.rest)
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netguard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"netguard {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the admission webhook server over TLS")
    serve.add_argument("--config", help="YAML configuration file (default: built-in defaults)")
    serve.add_argument("--bind", default="127.0.0.1:8443", type=flags.bind_address,
                       help="HOST:PORT (default 127.0.0.1:8443)")
    serve.add_argument("--certs", help="folder with tls.crt and tls.key (default ./certs, generated if absent)")
    serve.add_argument("--objects", help="folder or file of YAML objects for the offline inventory")
    serve.add_argument("--workers", type=flags.whole_number(1, 64), default=1,
                       help="gunicorn worker processes (default 1: the offline inventory is per worker)")
    serve.add_argument("--threads", type=flags.whole_number(1, 256), default=8,
                       help="threads per worker (default 8)")
    serve.add_argument("--kubeconfig", help="read cluster state live from this cluster (in a pod: its service account)")
    serve.add_argument("--offline", action="store_true",
                       help="in a pod, use the offline inventory instead of the pod's service account")
    serve.add_argument("--client-ca", help="require client certificates signed by this CA (mutual TLS)")
    serve.add_argument("--manage-certs", type=flags.secret_reference, metavar="[NAMESPACE/]SECRET",
                       help="keep the CA and serving certificate in this Secret (the pod's namespace by "
                            "default), write the CA into netguard's webhook configurations and the serving "
                            "pair into --certs, and rotate them before they expire (docs/certificates.md)")
    serve.add_argument("--cert-host", action="append", metavar="HOST",
                       help="with --manage-certs: another DNS name or IP for the serving certificate, "
                            "besides the Service's names (repeatable)")
    serve.add_argument("--io-timeout", type=flags.positive_seconds,
                       help="drop a connection that stalls this long inside a TLS handshake or a "
                            "request (default 10 s, webhook.serve.server.IO_TIMEOUT_SECONDS)")
    serve.add_argument("--metrics-bind", type=flags.bind_address, default=None, help="also serve /healthz, /readyz and /metrics over plain HTTP on HOST:PORT (for kubelet probes and Prometheus)")
    serve.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="stderr lines as gunicorn writes them (text, the default) or one JSON "
                            "object each (json); the audit log on stdout is JSON either way")
    serve.set_defaults(func=_serve)

    cert = sub.add_parser("certs", help="generate a CA and a serving certificate")
    cert.add_argument("--out", required=True, help="folder to write ca.crt, ca.key, tls.crt, tls.key")
    cert.add_argument("--host", action="append", help="DNS name or IP for the SANs (repeatable)")
    cert.add_argument("--service", help="in-cluster Service name (adds S, S.N, S.N.svc, S.N.svc.cluster.local)")
    cert.add_argument("--namespace", help="namespace of --service")
    cert.add_argument("--days", type=int, default=365, help="validity of the serving certificate")
    cert.set_defaults(func=_certs)

    man = sub.add_parser("manifests", help="print the Kubernetes objects that deploy netguard, as YAML")
    man.add_argument("--namespace", help="netguard's namespace (default: ownNamespace of --config, netguard-system)")
    man.add_argument("--image", help=f"container image with a tag or digest (default netguard:{version()})")
    man.add_argument("--config", help="netguard.yaml for the ConfigMap; the webhooks' namespaceSelector and "
                                      "matchConditions follow it (default: built-in defaults)")
    man.add_argument("--priority-class", default="system-cluster-critical",
                     help="the pods' priorityClassName ('' for none; default system-cluster-critical)")
    man.add_argument("--certs", help="folder with ca.crt (from `netguard certs`): caBundle of every webhook")
    man.add_argument("--url", help="https://HOST:PORT of a netguard outside the cluster: the webhooks call "
                                   "URL/validate and URL/mutate, in-cluster objects are left out")
    man.set_defaults(func=_manifests)

    conf = sub.add_parser("config", help="print the default configuration or its reference, or check a file")
    conf.add_argument("what", choices=("defaults", "reference", "check"),
                      help="defaults: netguard.yaml with every key at its default; reference: every "
                           "key as a markdown table; check FILE: validate a configuration file")
    conf.add_argument("file", nargs="?", help="the file for `check`")
    conf.add_argument("--namespace", help="ownNamespace written by `defaults` (default netguard-system)")
    conf.set_defaults(func=_config)

    # check, audit and fix parse their own arguments (their parsers live beside their code).
    for name, help_text in PASSTHROUGH.items():
        passthrough = sub.add_parser(name, help=help_text, add_help=False)
        passthrough.add_argument("rest", nargs=argparse.REMAINDER)
        passthrough.set_defaults(func=_passthrough(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSTHROUGH:
        # argparse's REMAINDER drops leading options (`check --format json`): hand over directly.
        return _passthrough(argv[0])(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "serve":
        args.certs_given = args.certs is not None
        args.certs = args.certs or "certs"
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"netguard: config: {exc}", file=sys.stderr)
        return 2
