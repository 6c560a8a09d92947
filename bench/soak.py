"""A bounded soak: netguard at a steady rate for a minute; no error, no wrong answer, no growth.

    .venv/bin/python bench/soak.py [--rate 300] [--seconds 60] [--warmup 15]
    (or: bash bench/run --soak, which also provides the venv)

`netguard serve` (2 workers x 8 threads, TLS, the offline inventory with namespace `shop`
default-deny, the audit log on stdout into a file, prometheus multiprocess metrics) receives a
paced open-loop load (bench/paced.py) that cycles through the bench's three recorded reviews
(allowed LoadBalancer, denied LoadBalancer, NetworkPolicy mutate), each request with its own uid
and one of 250 object names, as kube-apiserver would send them. Every answer is checked: HTTP
200, the same uid, the expected allowed/patch.

Memory is read from /proc/PID/status (VmRSS) of each worker: at the end of a warm-up at the same
rate (imports done, caches and allocator arenas at their working size), every 5 s during the soak,
and at the end. Growth = (end - start) / start per worker.

Passes when: no connection error, no non-200, no wrong answer, one audit line per request, no
worker restart, and every worker's RSS growth < 5 %.

With --stall-stdout, stdout is a pipe nobody reads for the whole run (a stalled log agent): then
it passes when admission still has no error and no wrong answer, every request is either an
audit line (read from the pipe at the end) or counted in netguard_audit_dropped_total, and every
worker grows by at most 20 MiB. Exits 0 on pass, 1 on fail, and prints a
markdown summary (also written to bench/soak-latest.md, which git ignores).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from paced import Paced  # noqa: E402
from procs import Server, children, free_port, netguard_command, prepare_workdir, rss_mib  # noqa: E402
from scenarios import SCENARIOS, Scenario  # noqa: E402

GROWTH_LIMIT = 0.05
STALLED_GROWTH_MIB = 20.0
NAMES = 250  # distinct object names: realistic churn, with a bounded working set


class ReviewStream(Paced):
    """Paced load whose request i is a fresh review (own uid, rotating scenario and name), and
    whose answers are checked against what that scenario must get."""

    def __init__(self, scenarios: list[Scenario], **kwargs: Any) -> None:
        super().__init__(path="/validate", body=b"", headers={}, **kwargs)
        self.scenarios = scenarios
        self.templates = [copy.deepcopy(s.fixture["body"]) for s in scenarios]
        self.wrong: list[str] = []
        self._wrong_lock = threading.Lock()

    def _pick(self, i: int) -> tuple[Scenario, str, str]:
        scenario = self.scenarios[i % len(self.scenarios)]
        return scenario, f"soak-{i:08d}", f"soak-{scenario.name}-{(i // len(self.scenarios)) % NAMES}"

    def request_for(self, i: int) -> tuple[str, bytes]:
        scenario, uid, name = self._pick(i)
        review = copy.deepcopy(self.templates[i % len(self.scenarios)])
        request = review["request"]
        request["uid"], request["name"] = uid, name
        request["object"]["metadata"]["name"] = name
        return scenario.path, json.dumps(review, separators=(",", ":")).encode()

    def accept(self, i: int, status: int, data: bytes) -> bool:
        scenario, uid, _name = self._pick(i)
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        why = scenario.check(status, answer)
        if why is None and (answer or {}).get("response", {}).get("uid") != uid:
            why = f"uid {answer['response'].get('uid')!r}, sent {uid!r}"
        if why is not None:
            with self._wrong_lock:
                self.wrong.append(f"request {i} ({scenario.name}): {why}")
        return why is None


def worker_rss(server: Server) -> dict[int, float]:
    assert server.proc is not None
    return {pid: rss_mib(pid) for pid in children(server.proc.pid)}


def run(rate: float, seconds: float, warmup: float, workers: int, threads: int,
        keep: bool, stall: bool = False) -> tuple[bool, str]:
    work = Path(tempfile.mkdtemp(prefix="netguard-soak-"))
    server: Server | None = None
    pipe = os.pipe() if stall else None
    try:
        certs, objects = prepare_workdir(work)
        port = free_port()
        server = Server("netguard", [*netguard_command(), "serve", "--bind", f"127.0.0.1:{port}",
                                     "--certs", str(certs), "--workers", str(workers),
                                     "--threads", str(threads), "--objects", str(objects)],
                        port, work, certs / "ca.crt", workers=workers,
                        env={"PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")},
                        stdout_fd=pipe[1] if pipe else None)
        server.start()
        scenarios = list(SCENARIOS.values())
        target = {"host": "127.0.0.1", "port": port, "rate": rate, "connections": 16}

        print(f"soak: warm-up {warmup:.0f} s at {rate:.0f} req/s", file=sys.stderr)
        warm = ReviewStream(scenarios, seconds=warmup, **target)
        warm_result = warm.run()
        start_rss = worker_rss(server)
        time.sleep(0.5)  # workers write audit lines every 10 ms: let the warm-up's last ones land
        audit_before = 0 if stall else _lines(work / "netguard.out")

        print(f"soak: {seconds:.0f} s at {rate:.0f} req/s, workers {sorted(start_rss)}", file=sys.stderr)
        soak = ReviewStream(scenarios, seconds=seconds, **target)
        samples: list[tuple[float, dict[int, float]]] = []
        done = threading.Event()

        def sample() -> None:
            began = time.monotonic()
            while not done.wait(5.0):
                samples.append((time.monotonic() - began, worker_rss(server)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = soak.run()
        done.set()
        sampler.join()
        time.sleep(0.5)  # the last audit lines of answered requests (written every 10 ms)
        end_rss = worker_rss(server)
        if pipe:
            audit_lines, dropped = _drain_stalled(server, pipe[0])
        else:
            dropped, audit_lines = 0, _lines(work / "netguard.out") - audit_before
    finally:
        if server is not None:
            server.stop()
        for fd in pipe or ():
            os.close(fd)
        if keep:
            print(f"soak: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    growth = {pid: (end_rss.get(pid, 0.0) - mib) / mib for pid, mib in start_rss.items() if mib}
    grown_mib = {pid: end_rss.get(pid, 0.0) - mib for pid, mib in start_rss.items()}
    restarted = sorted(set(end_rss) ^ set(start_rss))
    rss_figure = ", ".join(f"{start_rss[p]:.1f} -> {end_rss.get(p, 0.0):.1f} MiB ({g:+.1%})" for p, g in growth.items())
    if stall:
        total = warm_result["requests"] + result["requests"]
        audit_check = ("audit lines + dropped = requests (stdout stalled)", audit_lines + dropped == total,
                       f"{audit_lines} lines + {dropped} dropped of {total} requests (warm-up included)")
        rss_check = (f"RSS growth <= {STALLED_GROWTH_MIB:.0f} MiB per worker",
                     bool(grown_mib) and max(grown_mib.values()) <= STALLED_GROWTH_MIB, rss_figure)
    else:
        audit_check = ("audit lines = requests", audit_lines == result["requests"], f"{audit_lines} lines")
        rss_check = (f"RSS growth < {GROWTH_LIMIT:.0%} per worker", bool(growth) and max(growth.values()) < GROWTH_LIMIT,
                     rss_figure)
    checks = [
        ("requests answered", result["requests"] == result["scheduled"],
         f"{result['requests']} of {result['scheduled']} scheduled"),
        ("connection errors", result["errors"] == 0, str(result["errors"])),
        ("non-200 answers", result["status_errors"] == 0, str(result["status_errors"])),
        ("wrong answers", not soak.wrong, f"{len(soak.wrong)}" + (f": {soak.wrong[:3]}" if soak.wrong else "")),
        audit_check,
        ("workers restarted", not restarted, ", ".join(map(str, restarted)) or "none"),
        rss_check,
    ]
    passed = all(ok for _, ok, _ in checks)
    lat = result["lat_us"]
    lines = [
        ("stdout stalled (a pipe nobody reads) for the whole run. " if stall else "")
        + f"Soak: {seconds:.0f} s at {rate:.0f} req/s (after {warmup:.0f} s warm-up, "
        f"{warm_result['requests']} requests), netguard serve --workers {workers} --threads {threads}, "
        f"reviews cycling allowed LB / denied LB / mutate, {NAMES} names, a uid per request.",
        "",
        f"Achieved {result['achieved_rps']} req/s; latency from the schedule p50 {lat['p50'] / 1000:.2f} ms, "
        f"p99 {lat['p99'] / 1000:.2f} ms, max {lat['max'] / 1000:.2f} ms.",
        "",
        "| check | result | figure |",
        "|---|---|---|",
        *[f"| {name} | {'PASS' if ok else 'FAIL'} | {figure} |" for name, ok, figure in checks],
        "",
        "Worker RSS (MiB) every 5 s: " + "; ".join(
            f"{t:.0f}s " + "/".join(f"{v:.1f}" for v in rss.values()) for t, rss in samples),
        "",
        f"Soak {'PASSED' if passed else 'FAILED'}.",
    ]
    return passed, "\n".join(lines)


def _drain(fd: int) -> int:
    """Lines waiting in the stalled pipe, read at last (bounded: the pipe holds 64 KiB)."""
    os.set_blocking(fd, False)
    count = 0
    for _ in range(100_000):
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        count += chunk.count(b"\n")
    return count


def _drain_stalled(server: Server, fd: int) -> tuple[int, int]:
    """Read the stalled pipe until the workers' queues are empty too: lines still queued when the
    load ends are written as the pipe frees up (or dropped after a second's wait)."""
    lines, dropped = 0, -1
    for _ in range(20):
        new = _drain(fd)
        time.sleep(1.5)
        now_dropped = _dropped(server)
        lines += new
        if new == 0 and now_dropped == dropped:
            break
        dropped = now_dropped
    return lines, dropped


def _dropped(server: Server) -> int:
    status, body = server.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("netguard_audit_dropped_total"):
            return int(float(line.split()[-1]))
    return 0 if status == 200 else -1


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, audit log)")
    parser.add_argument("--stall-stdout", action="store_true",
                        help="stdout is a pipe nobody reads during the run (a stalled log agent)")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 5000 and 0 < args.seconds <= 3600 and 0 <= args.warmup <= 600):
        parser.error("rate must be in (0, 5000], seconds in (0, 3600], warmup in [0, 600]")
    passed, report = run(args.rate, args.seconds, args.warmup, args.workers, args.threads, args.keep,
                         args.stall_stdout)
    print(report)
    (BENCH / "soak-latest.md").write_text(report + "\n", encoding="utf-8")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
