"""Run the whole netguard benchmark: netguard vs the floor, side by side; print a markdown table.

Started by `bash bench/run` (which provides wrk and the venv). Everything runs on 127.0.0.1 with
bounded durations; the servers are started here and stopped here (SIGTERM to their master pid).

Runs (each against netguard, then against the floor, same certificate, same gunicorn settings):
  keep-alive  wrk -t2 -c16 over TLS with keep-alive, one row per scenario (a), (b), (c)
  close       the same with "Connection: close": a new TCP + TLS handshake per request
  paced       bench/paced.py at a fixed 500 req/s on keep-alive connections; p99 from the schedule

Per run: requests/s, p50/p99 latency, server CPU per request (utime+stime of master and workers
from /proc/PID/stat, after minus before, divided by the requests answered).

Environment knobs (defaults): BENCH_SECONDS=5 BENCH_WARMUP=2 BENCH_WRK_THREADS=2
BENCH_CONNECTIONS=16 BENCH_WORKERS=2 BENCH_THREADS=8 BENCH_RATE=500 BENCH_PACED_SECONDS=10
BENCH_PACED_CONNECTIONS=16 BENCH_RUNS=keepalive,close,paced BENCH_REPEAT=5 (best of N alternating
trials) BENCH_KEEP=0 (1 keeps the temp dir)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from procs import (Server, children, children_cpu_seconds, cpu_seconds, free_port,  # noqa: E402
                   machine_busy_seconds, netguard_command, prepare_workdir, rss_mib)
from scenarios import SCENARIOS, Scenario  # noqa: E402



def env_num(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    value = float(raw) if raw else default
    if not low <= value <= high:
        raise SystemExit(f"bench: {name}={value} is outside [{low}, {high}]")
    return value


SECONDS = int(env_num("BENCH_SECONDS", 5, 1, 600))
WARMUP = int(env_num("BENCH_WARMUP", 2, 0, 60))
WRK_THREADS = int(env_num("BENCH_WRK_THREADS", 2, 1, 16))
CONNECTIONS = int(env_num("BENCH_CONNECTIONS", 16, 1, 512))
WORKERS = int(env_num("BENCH_WORKERS", 2, 1, 16))
THREADS = int(env_num("BENCH_THREADS", 8, 1, 64))
RATE = env_num("BENCH_RATE", 500, 1, 20000)
PACED_SECONDS = env_num("BENCH_PACED_SECONDS", 10, 1, 600)
PACED_CONNECTIONS = int(env_num("BENCH_PACED_CONNECTIONS", 16, 1, 256))
RUNS = [r.strip() for r in os.environ.get("BENCH_RUNS", "keepalive,close,paced").split(",") if r.strip()]
KEEP = os.environ.get("BENCH_KEEP") == "1"
REPEAT = int(env_num("BENCH_REPEAT", 5, 1, 10))


# --- load --------------------------------------------------------------------------------------

def parse_bench_json(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise SystemExit(f"bench: no BENCH_JSON line in:\n{text[-3000:]}")


def run_wrk(server: Server, scenario: Scenario, body_file: Path, seconds: int, close: bool) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY": str(body_file), "BENCH_PATH": scenario.path,
           "BENCH_RESPONSE": scenario.response, "BENCH_CLOSE": "1" if close else "0"}
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
            "-s", str(BENCH / "post.lua"), f"https://{server.target}"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"bench: wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = parse_bench_json(done.stdout)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors_total"] = sum(result["errors"].values())
    return result


def run_paced(server: Server, scenario: Scenario, body_file: Path, seconds: float) -> dict[str, Any]:
    argv = [sys.executable, str(BENCH / "paced.py"), "--target", server.target, "--path", scenario.path,
            "--body", str(body_file), "--header", f"X-Bench-Response: {scenario.response}",
            "--rate", str(RATE), "--seconds", str(seconds), "--connections", str(PACED_CONNECTIONS),
            "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise SystemExit(f"bench: paced.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = parse_bench_json(done.stdout)
    result["rps"] = result["achieved_rps"]
    result["errors_total"] = result["errors"] + result["status_errors"]
    return result


def best_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from BENCH_REPEAT trials: the best of each figure (highest req/s, lowest
    latency and CPU per request), sums of the counts.

    On this shared VM, noise (other jobs, and host contention the guest cannot see) only ever
    makes a trial slower, so the best trial is the closest to the server's own cost (the same
    reasoning as timeit's min). Every trial is listed in the report too.
    """
    if len(results) == 1:
        return results[0]
    out = dict(results[0])
    out["rps"] = max(r["rps"] for r in results)
    out["cpu_us_per_req"] = min(r["cpu_us_per_req"] for r in results)
    out["other_cpus"] = min(r["other_cpus"] for r in results)
    out["lat_us"] = {k: min(r["lat_us"][k] for r in results) for k in results[0]["lat_us"]}
    if "service_us" in out:
        out["service_us"] = {k: min(r["service_us"][k] for r in results)
                             for k in results[0]["service_us"]}
    for key in ("requests", "errors_total", "worker_restarts", "late_starts", "scheduled"):
        if key in out:
            out[key] = sum(r[key] for r in results)
    return out


@dataclass
class Row:
    run: str
    title: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # server label -> result
    trials: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def measured(server: Server, load) -> dict[str, Any]:
    assert server.proc is not None
    busy0, gen0, wall0 = machine_busy_seconds(), children_cpu_seconds(), time.monotonic()
    before, workers_before = cpu_seconds(server.proc.pid)
    result = load()
    after, workers_after = cpu_seconds(server.proc.pid)
    busy1, gen1, wall1 = machine_busy_seconds(), children_cpu_seconds(), time.monotonic()
    result["cpu_s"] = after - before
    result["loadgen_cpu_s"] = gen1 - gen0
    # Everything else the machine did meanwhile (other users' jobs, the idle server, this script):
    # a noise indicator, in CPUs.
    result["other_cpus"] = max(0.0, (busy1 - busy0) - (after - before) - (gen1 - gen0)) / (wall1 - wall0)
    result["cpu_us_per_req"] = (after - before) / result["requests"] * 1e6 if result["requests"] else 0.0
    result["worker_restarts"] = len(set(workers_after) - set(workers_before))
    return result


# --- report ------------------------------------------------------------------------------------

def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def table(rows: list[Row]) -> str:
    head = ("| run | netguard req/s | floor req/s | req/s ng/floor | netguard p50 ms | floor p50 ms "
            "| netguard p99 ms | floor p99 ms | p99 ng/floor | netguard CPU µs/req | floor CPU µs/req "
            "| errors ng/floor | other CPUs busy ng/floor | gthread floor req/s | req/s ng/gthread floor "
            "| gthread floor p99 ms | p99 ng/gthread floor |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        n, f, g = row.results.get("netguard"), row.results.get("floor"), row.results.get("floor-gthread")
        if not n or not f or not g:
            continue
        lines.append(
            f"| {row.title} | {n['rps']:.0f} | {f['rps']:.0f} | {ratio(n['rps'], f['rps'])} "
            f"| {ms(n['lat_us']['p50'])} | {ms(f['lat_us']['p50'])} "
            f"| {ms(n['lat_us']['p99'])} | {ms(f['lat_us']['p99'])} "
            f"| {ratio(n['lat_us']['p99'], f['lat_us']['p99'])} "
            f"| {n['cpu_us_per_req']:.0f} | {f['cpu_us_per_req']:.0f} "
            f"| {n['errors_total']}/{f['errors_total']} "
            f"| {n['other_cpus']:.2f}/{f['other_cpus']:.2f} "
            f"| {g['rps']:.0f} | {ratio(n['rps'], g['rps'])} | {ms(g['lat_us']['p99'])} "
            f"| {ratio(n['lat_us']['p99'], g['lat_us']['p99'])} |")
    return "\n".join(lines)


def goals(rows: list[Row]) -> list[str]:
    out = []
    for row in rows:
        n, f, g = row.results.get("netguard"), row.results.get("floor"), row.results.get("floor-gthread")
        if not n or not f or not g:
            continue
        if row.run.startswith("keepalive"):
            ok = n["rps"] >= 1500 and n["rps"] >= 0.7 * f["rps"] and n["rps"] >= 0.7 * g["rps"]
            out.append(f"- {'PASS' if ok else 'FAIL'} keep-alive {row.run}: {n['rps']:.0f} req/s "
                       f"(goal >= 1,500) = {n['rps'] / f['rps']:.0%} of floor, "
                       f"{n['rps'] / g['rps']:.0%} of the gthread floor (goal >= 70% of both)")
        elif row.run.startswith("paced"):
            r = n["lat_us"]["p99"] / f["lat_us"]["p99"] if f["lat_us"]["p99"] else float("inf")
            out.append(f"- {'PASS' if r <= 1.5 else 'FAIL'} steady {RATE:.0f} req/s: netguard p99 "
                       f"{ms(n['lat_us']['p99'])} ms = {r:.2f}x floor p99 {ms(f['lat_us']['p99'])} ms "
                       f"(goal <= 1.5x)")
    out.append("- memory (< 100 MiB RSS per worker with 30k policies): measured by "
               "bench/inventory_memory.py, not by this run")
    return out


def code_version() -> str:
    """The commit measured, and whether webhook/ had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "webhook"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}" + (" + uncommitted changes in webhook/" if dirty else "")


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    import gunicorn
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python "
            f"{platform.python_version()}, gunicorn {gunicorn.__version__}, "
            f"{wrk[0].split(' [')[0] if wrk else 'wrk ?'}")


# --- main --------------------------------------------------------------------------------------

def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (bash bench/run installs it)")
    started = dt.datetime.now(dt.timezone.utc)
    version = code_version()  # at the start: others may commit while the bench runs
    work = Path(tempfile.mkdtemp(prefix="netguard-bench-"))
    servers: list[Server] = []
    try:
        certs, objects = prepare_workdir(work)
        bodies = work / "bodies"
        bodies.mkdir()
        body_files = {}
        for s in SCENARIOS.values():
            body_files[s.name] = bodies / f"{s.name}.json"
            body_files[s.name].write_bytes(s.body())

        netguard_cmd = netguard_command()
        common = ["--certs", str(certs), "--workers", str(WORKERS), "--threads", str(THREADS)]
        ng_port, fl_port, gt_port = free_port(), free_port(), free_port()
        netguard = Server("netguard", [*netguard_cmd, "serve", "--bind", f"127.0.0.1:{ng_port}",
                                       *common, "--objects", str(objects)],
                          ng_port, work, certs / "ca.crt", WORKERS,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "PYTHONUNBUFFERED": "0"})
        floor = Server("floor", [sys.executable, str(BENCH / "floor.py"), "--bind", f"127.0.0.1:{fl_port}",
                                 *common], fl_port, work, certs / "ca.crt", WORKERS)
        # The floor again on gunicorn's stock gthread worker: what the intake costs or saves.
        gthread = Server("floor-gthread", [sys.executable, str(BENCH / "floor.py"), "--bind",
                                           f"127.0.0.1:{gt_port}", *common, "--worker-model", "gthread"],
                         gt_port, work, certs / "ca.crt", WORKERS)
        servers = [netguard, floor, gthread]
        for server in servers:
            print(f"bench: starting {server.label} on {server.target} "
                  f"({WORKERS} workers x {THREADS} threads)", file=sys.stderr)
            server.start()

        # One verified call per scenario: netguard must answer as expected, the floor the same size.
        for s in SCENARIOS.values():
            headers = {"Content-Type": "application/json", "X-Bench-Response": s.response}
            status, raw = netguard.request("POST", s.path, s.body(), headers)
            why = s.check(status, json.loads(raw) if raw else None)
            if why:
                raise SystemExit(f"bench: netguard's answer to {s.name} is not the expected one: {why}")
            fstatus, fraw = floor.request("POST", s.path, s.body(), headers)
            if fstatus != 200 or len(fraw) != len(raw):
                print(f"bench: note: floor answered {fstatus} with {len(fraw)} bytes for {s.name}, "
                      f"netguard {len(raw)} bytes", file=sys.stderr)

        plan: list[tuple[str, str, Scenario, str]] = []
        if "keepalive" in RUNS:
            for s in SCENARIOS.values():
                plan.append((f"keepalive-{s.name}", f"keep-alive {s.title}", s, "wrk"))
        if "close" in RUNS:
            s = SCENARIOS["lb-allow"]
            plan.append(("close-lb-allow", "Connection: close (new TLS per request), (a)", s, "close"))
        if "paced" in RUNS:
            s = SCENARIOS["lb-allow"]
            plan.append(("paced-lb-allow", f"paced {RATE:.0f} req/s keep-alive, (a)", s, "paced"))

        rows: list[Row] = []
        for run, title, s, kind in plan:
            row = Row(run, title)
            trials: dict[str, list[dict[str, Any]]] = {srv.label: [] for srv in servers}
            for trial in range(REPEAT):
                for server in servers:
                    body = body_files[s.name]
                    print(f"bench: {run} -> {server.label}"
                          + (f" (trial {trial + 1}/{REPEAT})" if REPEAT > 1 else ""), file=sys.stderr)
                    if kind == "paced":
                        if WARMUP:
                            run_paced(server, s, body, WARMUP)
                        r = measured(server, lambda: run_paced(server, s, body, PACED_SECONDS))
                    else:
                        if WARMUP:
                            run_wrk(server, s, body, WARMUP, close=kind == "close")
                        r = measured(server, lambda: run_wrk(server, s, body, SECONDS,
                                                             close=kind == "close"))
                    trials[server.label].append(r)
                    print(f"bench:   {r['rps']:.0f} req/s p50 {ms(r['lat_us']['p50'])} ms "
                          f"p99 {ms(r['lat_us']['p99'])} ms cpu {r['cpu_us_per_req']:.0f} us/req "
                          f"errors {r['errors_total']} other CPUs busy {r['other_cpus']:.2f}",
                          file=sys.stderr)
            row.trials = trials
            row.results = {label: best_result(results) for label, results in trials.items()}
            rows.append(row)

        rss = {srv.label: [round(rss_mib(pid), 1) for pid in children(srv.proc.pid)] for srv in servers}
        restarts = {srv.label: sum(r.results[srv.label]["worker_restarts"] for r in rows) for srv in servers}
        audit_bytes = (work / "netguard.out").stat().st_size
    finally:
        for server in servers:
            server.stop()
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)

    cmd = "bash bench/run" + "".join(
        f" {k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith("BENCH_") and k not in
        ("BENCH_BODY", "BENCH_PATH", "BENCH_RESPONSE", "BENCH_CLOSE"))
    paced_note = ""
    for row in rows:
        if row.run.startswith("paced"):
            n, f = row.results["netguard"], row.results["floor"]
            paced_note = (f"Paced: {n['scheduled']} requests scheduled per server; requests sent > 1 ms "
                          f"late (generator or all connections busy): netguard {n['late_starts']}, "
                          f"floor {f['late_starts']}; service-time p99 (send -> answer) netguard "
                          f"{ms(n['service_us']['p99'])} ms, floor {ms(f['service_us']['p99'])} ms.")
    report = "\n".join([
        f"# netguard benchmark — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{cmd}`  ",
        f"Code: {version}  ",
        f"Machine: {machine()}  ",
        f"Servers: gunicorn {WORKERS} workers x {THREADS} threads, keepalive 120 s, TLS; netguard and "
        f"the floor on netguard's worker (gthread with an intake), the gthread floor on stock gthread; "
        f"(ECDSA P-256 cert from `netguard certs`), both on 127.0.0.1; the load generator shares the CPUs.  ",
        f"Load: wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{SECONDS}s (after {WARMUP}s warm-up); paced: "
        f"bench/paced.py {RATE:.0f} req/s for {PACED_SECONDS:g}s on {PACED_CONNECTIONS} keep-alive "
        f"connections, latency from the scheduled time."
        + (f" Each figure is the best of {REPEAT} alternating trials (netguard, floor, netguard, "
           f"...): noise here only slows a trial down; every trial is listed below." if REPEAT > 1 else ""),
        "",
        table(rows),
        "",
        "Goals:",
        *goals(rows),
        "",
        f"Worker RSS after the runs (MiB): netguard {rss['netguard']}, floor {rss['floor']}, "
        f"gthread floor {rss['floor-gthread']}. "
        f"Worker restarts during runs: netguard {restarts['netguard']}, floor {restarts['floor']}. "
        f"netguard audit log written: {audit_bytes / 1e6:.1f} MB.",
        "",
        "CPU µs/req = (utime+stime of gunicorn master + workers after - before) / requests answered. "
        "Other CPUs busy = machine user+system time (/proc/stat, softirq excluded) minus the server's "
        "and the load generator's, "
        "per second of run: work of other processes on this shared 2-CPU machine; above ~0.2 the "
        "row is disturbed. "
        "wrk's latency excludes the TCP/TLS handshake in the Connection: close run (it starts the "
        "clock when the request is written), but the server's handshake CPU is in CPU µs/req.",
        *([paced_note] if paced_note else []),
        "",
    ])
    if REPEAT > 1:
        report += "\nTrials (req/s, p99 ms, CPU µs/req, other CPUs busy), in run order:\n\n"
        for row in rows:
            for label, results in row.trials.items():
                report += f"- {row.run} {label}: " + "; ".join(
                    f"{r['rps']:.0f}, {ms(r['lat_us']['p99'])}, {r['cpu_us_per_req']:.0f}, "
                    f"{r['other_cpus']:.2f}" for r in results) + "\n"
    print(report)
    (BENCH / "results-latest.md").write_text(report, encoding="utf-8")
    print(f"bench: wrote {BENCH / 'results-latest.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
