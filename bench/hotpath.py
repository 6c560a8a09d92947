"""Profile netguard's hot path: where a request's CPU goes. Measuring only; changes nothing.

    .venv/bin/python bench/hotpath.py [--requests 5000] [--pyspy SECONDS] [--top 20]

1. Components, in-process (no HTTP, no TLS): each step of webhook/serve/endpoints.py's `review()` timed
   alone over --requests iterations per scenario, and the whole Flask call (`app.wsgi_app` with a
   gunicorn-like environ), so "Flask/werkzeug + glue" = whole call - sum of the steps. Metrics run
   in prometheus multiprocess mode (as under `netguard serve`); the audit log goes to a real file.
2. cProfile of the whole Flask call for scenario (a): the top functions by own time (cProfile
   inflates many-small-call code such as werkzeug's, so read it next to part 1).
3. With --pyspy N: `netguard serve` (2 workers x 8 threads, TLS) under wrk keep-alive load for
   scenario (a), sampled by py-spy (pip install py-spy) for N seconds; samples are grouped by the
   first recognised frame from the leaf: TLS (ssl.py), gunicorn HTTP, Flask/werkzeug, JSON,
   audit, metrics, netguard rules... Also the floor's and netguard's CPU/request in the same
   conditions, and the floor without TLS, which isolates TLS record costs from gunicorn's own.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

WORK = Path(tempfile.mkdtemp(prefix="netguard-profile-"))
# Before prometheus_client is imported: the same storage mode as under `netguard serve`.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(WORK / "metrics")
os.makedirs(WORK / "metrics", exist_ok=True)

from scenarios import SCENARIOS, SHOP_OBJECTS  # noqa: E402


def per_call_us(fn: Callable[[], Any], n: int, repeats: int = 3) -> float:
    """Best of `repeats` runs of n calls, in microseconds per call (best = least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def build_app(audit_path: Path):
    from webhook.serve.admission import Admission
    from webhook.serve.app import create_app
    from webhook.serve.auditlog import AuditLog
    from webhook.core.settings import default_settings
    from webhook.serve.metrics import Metrics
    from webhook.inventory.offline import OfflineInventory
    from webhook.serve.server import settle_heap

    admission = Admission(default_settings(), OfflineInventory.from_path(SHOP_OBJECTS))
    audit = AuditLog(audit_path.open("w", encoding="utf-8"))
    # Queued as in a served worker, whose writer thread is stood in for by writer_share().
    audit.start(interval=3600)
    # Served workers flush the queued counts from a thread once a second; here the caller
    # flushes every 100 calls, so each call's step includes its share of a flush.
    metrics = Metrics(max_pending=100)
    app = create_app(admission, audit, metrics)
    settle_heap()  # as NetguardServer.load does in each served worker
    app.wsgi_app = writer_share(app.wsgi_app, audit)
    return app, admission, audit, metrics


def writer_share(wsgi: Callable, audit: Any, every: int = 100) -> Callable:
    """A served worker's audit writer thread, in line: every `every` calls the queued lines are
    written, so each call's time includes its share of the writing."""
    calls = iter(range(1, 1 << 62))

    def app(environ: dict[str, Any], start_response: Callable) -> Any:
        try:
            return wsgi(environ, start_response)
        finally:
            if next(calls) % every == 0:
                audit.flush()
    return app


def environ_for(path: str, body: bytes) -> Callable[[], dict[str, Any]]:
    """A fresh gunicorn-like WSGI environ per call (wsgi.input is consumed)."""
    route, _, query = path.partition("?")
    base = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": route, "QUERY_STRING": query,
        "RAW_URI": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8443",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8443", "HTTP_ACCEPT": "application/json, */*",
        "HTTP_USER_AGENT": "kube-apiserver-admission", "wsgi.url_scheme": "https",
        "wsgi.version": (1, 0), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }

    def make() -> dict[str, Any]:
        env = dict(base)
        env["wsgi.input"] = io.BytesIO(body)
        return env

    return make


def bare_flask(answer: bytes):
    """Flask with netguard's routes but no work: what the framework alone costs per request."""
    from flask import Flask, Response, request

    app = Flask("bare")

    def handler() -> Response:
        request.environ["wsgi.input"].read(1 << 20)
        return Response(answer, mimetype="application/json")

    for stage in ("validate", "mutate"):
        app.add_url_rule(f"/{stage}", stage, handler, methods=["POST"])
    return app


def call(app, make_env) -> bytes:
    out = []
    for chunk in app(make_env(), lambda status, headers, exc_info=None: None):
        out.append(chunk)
    return b"".join(out)


class Timed:
    """Timing wrappers around the functions webhook/serve/endpoints.py's review() calls, so each step
    is measured in context (inside real WSGI calls, with the caches as they really are)."""

    def __init__(self) -> None:
        import webhook.serve.endpoints as app_module
        from webhook.serve.admission import Admission
        from webhook.serve.auditlog import AuditLog
        from webhook.serve.metrics import Metrics

        self.totals: collections.Counter[str] = collections.Counter()
        self.targets = [
            (app_module, "read_review", "read body + decode (read_review)"),
            (app_module, "parse_review", "parse_review (shape checks)"),
            (Admission, "evaluate", "admission.evaluate (rules, inventory, live confirm)"),
            (app_module, "response_body", "build + encode the response (response_body)"),
            (AuditLog, "write", "audit log: queue + its share of the writer (encode, write)"),
            (AuditLog, "flush", "audit log: queue + its share of the writer (encode, write)"),
            (Metrics, "observe", "metrics.observe: queue + its share of a flush (multiprocess)"),
        ]
        self.saved = []

    def __enter__(self) -> "Timed":
        for owner, name, label in self.targets:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original, label))
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()

    def _wrap(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        totals = self.totals
        clock = time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] += clock() - start
        return timed


def components(n: int) -> tuple[list[str], Any]:
    import floor
    from webhook.wire import jsoncodec

    app, _admission, _audit, _metrics = build_app(WORK / "audit.log")
    answers = floor.netguard_answers()
    floor_wsgi = floor.floor_app(answers)
    bare = bare_flask(answers["validate-allow"])
    lines = ["| µs per request, in-process, best of 3 | " + " | ".join(s.name for s in SCENARIOS.values()) + " |",
             "|---|" + "---|" * len(SCENARIOS)]
    table: dict[str, list[float]] = collections.defaultdict(list)
    whole_label = "**whole netguard request (app.wsgi_app)**"
    for s in SCENARIOS.values():
        body = s.body()
        make_env = environ_for(s.path, body)
        for _ in range(200):
            call(app.wsgi_app, make_env)  # warm
        whole = per_call_us(lambda: call(app.wsgi_app, make_env), n)
        best: dict[str, float] = {}
        with Timed() as timed:
            for _ in range(3):  # best of 3 for each step, as for the whole
                timed.totals.clear()
                for _ in range(n):
                    call(app.wsgi_app, make_env)
                for label, total in timed.totals.items():
                    best[label] = min(best.get(label, float("inf")), total / n * 1e6)
        table[whole_label].append(whole)
        steps = 0.0
        for label in dict.fromkeys(label for _o, _n, label in Timed().targets):
            table[label].append(best.get(label, 0.0))
            steps += best.get(label, 0.0)
        table["of which jsoncodec.loads alone"].append(per_call_us(lambda: jsoncodec.loads(body), n))
        table["Flask/werkzeug + review() glue (whole - steps above)"].append(whole - steps)
        bare_env = environ_for(s.path, body)
        table["bare Flask app, same routes, reads body, fixed answer (framework alone)"].append(
            per_call_us(lambda: call(bare.wsgi_app, bare_env), n))
        floor_env = environ_for(s.path, body)
        table["floor WSGI app (bench/floor.py)"].append(per_call_us(lambda: call(floor_wsgi, floor_env), n))
    labels = list(dict.fromkeys(label for _o, _n, label in Timed().targets))
    order = [whole_label, labels[0], "of which jsoncodec.loads alone", *labels[1:],
             "Flask/werkzeug + review() glue (whole - steps above)",
        "bare Flask app, same routes, reads body, fixed answer (framework alone)",
        "floor WSGI app (bench/floor.py)"]
    for name in order:
        values = table[name]
        lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in values) + " |")

    # cProfile of the whole call, scenario (a)
    s = SCENARIOS["lb-allow"]
    make_env = environ_for(s.path, s.body())
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        call(app.wsgi_app, make_env)
    prof.disable()
    return lines, prof


# --- py-spy under load -------------------------------------------------------------------------

CATEGORIES = (  # (substring of the frame's file, category); first match from the leaf wins
    ("ssl.py", "TLS (ssl.py: handshake, encrypt/decrypt)"),
    ("json/", "JSON encode/decode (json module)"),
    ("webhook/serve/auditlog.py", "audit log (build, encode, write)"),
    ("prometheus_client/", "metrics (prometheus_client)"),
    ("webhook/serve/metrics.py", "metrics (prometheus_client)"),
    ("webhook/wire/", "netguard parse/build review"),
    ("webhook/serve/", "netguard serving glue"),
    ("webhook/", "netguard rules + inventory"),
    ("werkzeug/", "Flask/werkzeug"),
    ("flask/", "Flask/werkzeug"),
    ("gunicorn/http/", "gunicorn HTTP parse/write"),
    ("gunicorn/workers/", "gunicorn gthread loop"),
    ("gunicorn/", "gunicorn other"),
    ("concurrent/futures", "pool threads waiting for work / hand-off"),
    ("selectors.py", "gunicorn gthread loop (epoll)"),
)


def categorize(stack: str) -> str:
    frames = [f for f in stack.split(";") if not f.startswith("process ")]
    for frame in reversed(frames):
        for needle, category in CATEGORIES:
            if needle in frame:
                return category
    return "other (stdlib/threading/socket)"


def pyspy_profile(seconds: int) -> list[str]:
    venv_bin = Path(sys.executable).parent
    pyspy = shutil.which("py-spy", path=str(venv_bin)) or shutil.which("py-spy")
    if not pyspy:
        return ["(py-spy not installed: `.venv/bin/pip install py-spy`)"]
    if not shutil.which("wrk"):
        return ["(wrk not installed)"]
    import bench as bench_mod  # bench/bench.py: the same Server helper and wrk runner

    certs = WORK / "certs"
    subprocess.run([sys.executable, "-m", "webhook", "certs", "--out", str(certs), "--host", "127.0.0.1"],
                   check=True, capture_output=True, timeout=60, cwd=ROOT)
    objects = WORK / "objects"
    objects.mkdir(exist_ok=True)
    shutil.copy(SHOP_OBJECTS, objects / SHOP_OBJECTS.name)
    s = SCENARIOS["lb-allow"]
    body = WORK / "lb-allow.json"
    body.write_bytes(s.body())
    common = ["--certs", str(certs), "--workers", "2", "--threads", "8"]
    ports = [bench_mod.free_port() for _ in range(3)]
    netguard = bench_mod.Server(
        "netguard", [str(Path(sys.executable).parent / "netguard"), "serve", "--bind", f"127.0.0.1:{ports[0]}",
                     *common, "--objects", str(objects)], ports[0], WORK, certs / "ca.crt", 2,
        env={"PROMETHEUS_MULTIPROC_DIR": str(WORK / "metrics-serve")})
    floor = bench_mod.Server("floor", [sys.executable, str(BENCH / "floor.py"), "--bind",
                                       f"127.0.0.1:{ports[1]}", *common], ports[1], WORK, certs / "ca.crt", 2)
    servers = [netguard, floor]
    lines: list[str] = []
    try:
        for server in servers:
            server.start()
        # 1) CPU per request without the profiler, netguard and floor, same load
        cpu = {}
        for server in servers:
            bench_mod.run_wrk(server, s, body, 2, close=False)
            r = bench_mod.measured(server, lambda: bench_mod.run_wrk(server, s, body, seconds, close=False))
            cpu[server.label] = r
        # 2) the floor over plain HTTP (no TLS): same gunicorn, no ssl wrap
        plain = plain_floor_cpu(ports[2], s, body, seconds)
        n_cpu, f_cpu = cpu["netguard"], cpu["floor"]
        lines += [
            f"CPU per request under wrk -t2 -c16 keep-alive, scenario (a), {seconds}s, no profiler: "
            f"netguard {n_cpu['cpu_us_per_req']:.0f} µs ({n_cpu['rps']:.0f} req/s), floor TLS "
            f"{f_cpu['cpu_us_per_req']:.0f} µs ({f_cpu['rps']:.0f} req/s), floor plain HTTP "
            f"{plain['cpu_us_per_req']:.0f} µs ({plain['rps']:.0f} req/s).",
        ]
        # 3) py-spy on netguard's workers during load: once only threads holding the GIL (where
        # Python CPU goes), once every thread py-spy does not see idle (where threads wait too).
        for mode, flags, what in (
                ("gil", ["--gil"], "threads holding the GIL: where Python CPU goes (TLS crypto "
                                   "runs without the GIL and is undercounted here)"),
                ("wall", [], "all threads py-spy does not see idle: where threads spend time, "
                             "waiting for the GIL or a lock included")):
            counts, functions, total = sample(pyspy, netguard, s, body, seconds, flags, mode)
            lines += ["", f"py-spy, {what}; {total} samples at 97 Hz:", "",
                      "| category (first recognised frame from the leaf) | share |", "|---|---|"]
            for category, n in counts.most_common():
                if n / total >= 0.005:
                    lines.append(f"| {category} | {n / total:.0%} |")
            lines += ["", "Top leaf lines:", ""]
            for leaf, n in functions.most_common(10):
                lines.append(f"- {n / total:.1%} {leaf}")
    finally:
        for server in servers:
            server.stop()
    return lines


def sample(pyspy: str, netguard, s, body: Path, seconds: int, flags: list[str], mode: str):
    raw = WORK / f"netguard-{mode}.raw"
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_PATH": s.path,
           "BENCH_RESPONSE": s.response, "BENCH_CLOSE": "0"}
    load = subprocess.Popen(["wrk", "-t2", "-c16", f"-d{seconds + 4}s", "-s", str(BENCH / "post.lua"),
                             f"https://{netguard.target}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        subprocess.run([pyspy, "record", "--pid", str(netguard.proc.pid), "--subprocesses", *flags,
                        "-r", "97", "-d", str(seconds), "--format", "raw", "-o", str(raw)],
                       capture_output=True, timeout=seconds + 60)
    finally:
        load.wait(timeout=seconds + 30)
    counts: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        # Samples of the gunicorn master (arbiter) are not request work.
        if "Arbiter.run" in stack and "spawn_worker" not in stack:
            continue
        counts[categorize(stack)] += int(n)
        functions[stack.split(";")[-1]] += int(n)
        total += int(n)
    return counts, functions, max(total, 1)


def plain_floor_cpu(port: int, s, body: Path, seconds: int) -> dict[str, Any]:
    """The floor's app under the same gunicorn settings minus certfile/keyfile, over HTTP."""
    code = (
        "import sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import floor\n"
        "from pathlib import Path\n"
        "from webhook.serve.server import NetguardServer, ServeOptions\n"
        "class Plain(NetguardServer):\n"
        "    def load_config(self):\n"
        "        super().load_config()\n"
        "        self.cfg.set('certfile', None); self.cfg.set('keyfile', None)\n"
        "answers = floor.netguard_answers()\n"
        "Plain(ServeOptions(bind='127.0.0.1:%d', certs=Path('.'), workers=2, threads=8),"
        " lambda: floor.floor_app(answers)).run()\n" % (str(ROOT), str(BENCH), port))
    out = (WORK / "plain.err").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out, cwd=WORK)
    import bench as bench_mod
    import http.client
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200 and len(bench_mod.children(proc.pid)) >= 2:
                    break
            except OSError:
                time.sleep(0.2)
        env = {**os.environ, "BENCH_BODY": str(body), "BENCH_PATH": s.path,
               "BENCH_RESPONSE": s.response, "BENCH_CLOSE": "0"}

        def wrk(sec: int) -> dict[str, Any]:
            done = subprocess.run(["wrk", "-t2", "-c16", f"-d{sec}s", "-s", str(BENCH / "post.lua"),
                                   f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True,
                                  timeout=sec + 60)
            r = bench_mod.parse_bench_json(done.stdout)
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            return r

        wrk(2)
        before, _ = bench_mod.cpu_seconds(proc.pid)
        r = wrk(seconds)
        after, _ = bench_mod.cpu_seconds(proc.pid)
        r["cpu_us_per_req"] = (after - before) / r["requests"] * 1e6
        return r
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def tls_context_cost(n: int) -> str:
    """gunicorn builds a new SSLContext from the files for every accepted connection (that is how
    rotated certificates reach new connections); what that costs, before any handshake."""
    import ssl

    certs = WORK / "ctx-certs"
    subprocess.run([sys.executable, "-m", "webhook", "certs", "--out", str(certs), "--host", "127.0.0.1"],
                   check=True, capture_output=True, timeout=60, cwd=ROOT)
    crt, key = str(certs / "tls.crt"), str(certs / "tls.key")

    def build() -> None:  # gunicorn.sock.ssl_context's default factory, without ALPN/ciphers
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=None)
        context.load_cert_chain(certfile=crt, keyfile=key)

    n = max(100, n // 10)
    whole = per_call_us(build, n)
    bare = per_call_us(lambda: ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), n)
    return (f"SSLContext built per accepted connection (create_default_context + load_cert_chain of "
            f"the ECDSA P-256 files): {whole:.0f} µs, of which create_default_context "
            f"{bare:.0f} µs ({n} builds, best of 3).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--pyspy", type=int, default=0, help="seconds of py-spy under wrk load (0: skip)")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    if not (100 <= args.requests <= 100000 and 0 <= args.pyspy <= 120):
        parser.error("--requests or --pyspy out of bounds")
    try:
        lines, prof = components(args.requests)
        print(f"## In-process components ({args.requests} calls each, best of 3)\n")
        print("\n".join(lines))
        print(f"\n## cProfile, whole Flask call, scenario (a), {args.requests} calls (top by own time)\n")
        stream = io.StringIO()
        pstats.Stats(prof, stream=stream).strip_dirs().sort_stats("tottime").print_stats(args.top)
        print("```\n" + stream.getvalue().strip() + "\n```")
        print("\n## Per new TLS connection\n")
        print(tls_context_cost(args.requests))
        if args.pyspy:
            print(f"\n## Live server under load (py-spy {args.pyspy}s)\n")
            print("\n".join(pyspy_profile(args.pyspy)))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
