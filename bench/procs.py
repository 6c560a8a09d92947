"""Processes for the bench scripts: starting and stopping servers, reading /proc.

Shared by bench.py (netguard vs the floor) and soak.py (netguard for a minute).
"""

from __future__ import annotations

import http.client
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def prepare_workdir(work: Path) -> tuple[Path, Path]:
    """A serving certificate (netguard certs) and an objects folder in which namespace `shop`
    is default-deny (tests/fixtures/apiserver-reviews/scenario-shop.yaml): (certs, objects)."""
    from scenarios import SHOP_OBJECTS

    certs = work / "certs"
    subprocess.run([sys.executable, "-m", "webhook", "certs", "--out", str(certs),
                    "--host", "127.0.0.1"], check=True, capture_output=True, timeout=60, cwd=ROOT)
    objects = work / "objects"
    objects.mkdir()
    shutil.copy(SHOP_OBJECTS, objects / SHOP_OBJECTS.name)
    return certs, objects


def netguard_command() -> list[str]:
    """`netguard` of this interpreter's environment (the venv), else `python -m webhook`."""
    netguard_bin = Path(sys.executable).parent / "netguard"
    return [str(netguard_bin)] if netguard_bin.exists() else [sys.executable, "-m", "webhook"]


# /proc ----------------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces; everything after the last ')' is space-separated.
    return raw[raw.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[1]) == pid:  # fields[1] is ppid
                kids.append(int(entry))
    return sorted(kids)


def cpu_seconds(master: int) -> tuple[float, list[int]]:
    """utime+stime of the master and its live workers, plus the master's reaped children."""
    total = 0.0
    fields = _stat(master)
    if fields:
        # utime stime cutime cstime are fields 14-17 (1-based); here offset by the two removed.
        total += sum(int(x) for x in fields[11:15]) / CLK_TCK
    workers = children(master)
    for pid in workers:
        f = _stat(pid)
        if f:
            total += (int(f[11]) + int(f[12])) / CLK_TCK
    return total, workers


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent in processes (user+nice+system+steal), from /proc/stat.

    irq and softirq are left out: under load they are mostly the bench's own loopback TCP."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + steal) / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# servers--------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    label: str
    argv: list[str]
    port: int
    log_dir: Path
    ca: Path
    workers: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    stdout_fd: int | None = None  # a descriptor for the server's stdout instead of LABEL.out

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        out = self.stdout_fd if self.stdout_fd is not None else (self.log_dir / f"{self.label}.out").open("wb")
        err = (self.log_dir / f"{self.label}.err").open("wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.log_dir, stdout=out, stderr=err,
                                     env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.label} exited {self.proc.returncode}:\n"
                                 + (self.log_dir / f"{self.label}.err").read_text()[-3000:])
            try:
                if self.request("GET", "/healthz")[0] == 200 and len(children(self.proc.pid)) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.label} did not answer within {timeout}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # gunicorn master: graceful stop of its workers
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()
