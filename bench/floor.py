"""The floor: the cheapest server that could answer kube-apiserver like netguard does.

A bare WSGI app that reads the request body (as any server must) and returns a precomputed
AdmissionReview response, served by webhook.serve.server.NetguardServer with the same ServeOptions
`netguard serve` builds. gunicorn settings (gthread, workers x threads, keepalive 120 s, TLS from
the same tls.crt/tls.key, no access log) are therefore identical by construction; the difference
netguard vs floor is what netguard's Python does per request (Flask, JSON, rules, audit, metrics).

The responses are what netguard itself answers for the bench's recorded reviews, computed once in
the master before the fork by running netguard's Flask app in-process (same bytes, same size):

    validate-allow  fixture 11 (LoadBalancer ssa-lb in default-deny namespace shop)
    validate-deny   the same review moved to a namespace without a NetworkPolicy
    mutate          fixture 00 (NetworkPolicy default-deny, answered with a label patch)

A request picks its response with the header `X-Bench-Response` (netguard ignores it, so both
servers receive the same bytes); without it, /validate answers validate-allow and /mutate mutate.

    python bench/floor.py --bind 127.0.0.1:9443 --certs DIR --workers 2 --threads 8 [--worker-model gthread]

`--worker-model intake` (the default) is netguard's own worker (webhook/serve/worker.py);
`gthread` is gunicorn's stock gthread worker, as netguard served before the intake.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scenarios  # noqa: E402  (bench/scenarios.py)
from webhook.serve.server import NetguardServer, ServeOptions  # noqa: E402


class StockGthreadOptions(ServeOptions):
    """The same settings with gunicorn's own gthread worker instead of netguard's."""

    def worker_class(self) -> Any:
        return "gthread"


def netguard_answers() -> dict[str, bytes]:
    """What netguard answers, in-process, for each scenario body: {response name: bytes}."""
    from webhook.serve.admission import Admission
    from webhook.serve.app import create_app
    from webhook.serve.auditlog import AuditLog
    from webhook.core.settings import default_settings
    from webhook.inventory.offline import OfflineInventory

    inventory = OfflineInventory.from_path(scenarios.SHOP_OBJECTS)
    app = create_app(Admission(default_settings(), inventory), AuditLog(io.StringIO()))
    client = app.test_client()
    answers: dict[str, bytes] = {}
    for scenario in scenarios.SCENARIOS.values():
        reply = client.post(scenario.path, data=scenario.body(), content_type="application/json")
        if reply.status_code != 200:
            raise SystemExit(f"floor: netguard answered {reply.status_code} for {scenario.name}: "
                             f"{reply.data[:300]!r}")
        answers[scenario.response] = reply.data
    return answers


def floor_app(answers: dict[str, bytes]) -> Callable[..., Iterable[bytes]]:
    by_path = {"/validate": answers["validate-allow"], "/mutate": answers["mutate"]}
    not_found = b'{"error":"not found","status":404}'

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Read the whole body, as netguard must, without parsing it.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            body = b'{"status":"ok"}'
        else:
            body = answers.get(environ.get("HTTP_X_BENCH_RESPONSE", "")) or by_path.get(path)
        if body is None:
            start_response("404 NOT FOUND", [("Content-Type", "application/json"),
                                             ("Content-Length", str(len(not_found)))])
            return [not_found]
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="netguard's floor server (same gunicorn settings)")
    parser.add_argument("--bind", default="127.0.0.1:9443")
    parser.add_argument("--certs", required=True, help="folder with tls.crt and tls.key")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-model", choices=("intake", "gthread"), default="intake")
    args = parser.parse_args(argv)
    answers = netguard_answers()  # in the master, before the fork
    options_class = StockGthreadOptions if args.worker_model == "gthread" else ServeOptions
    options = options_class(bind=args.bind, certs=Path(args.certs), workers=args.workers,
                           threads=args.threads)
    NetguardServer(options, lambda: floor_app(answers)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
