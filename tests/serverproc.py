"""A real `netguard serve` (gunicorn, TLS) on 127.0.0.1 for tests, and a client that verifies its CA."""

from __future__ import annotations

import copy
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "apiserver-reviews"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def netguard(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webhook", *args], capture_output=True, text=True,
                          check=True, timeout=60, **kwargs)


def make_certs(out: Path) -> Path:
    netguard("certs", "--out", str(out), "--host", "127.0.0.1", "--host", "localhost")
    return out


def recorded(name: str) -> dict[str, Any]:
    """A recorded request: its path (with ?timeout=) and its AdmissionReview body."""
    return json.loads((FIXTURES / name).read_text())


def lb_review(namespace: str, name: str = "edge") -> dict[str, Any]:
    """The recorded validating review of a LoadBalancer CREATE, moved to `namespace`/`name`,
    with uid `uid-<namespace>-<name>`."""
    review = copy.deepcopy(recorded("11-validate-Service-CREATE-ssa-lb.json")["body"])
    request = review["request"]
    request["uid"] = f"uid-{namespace}-{name}"
    request["namespace"] = request["object"]["metadata"]["namespace"] = namespace
    request["name"] = request["object"]["metadata"]["name"] = name
    return review


class Server:
    def __init__(self, workdir: Path, *extra: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.env = env or {}
        self.workdir = workdir
        self.certs = make_certs(workdir / "certs")
        self.port = free_port()
        self.audit_path = workdir / "audit.log"
        self.stderr_path = workdir / "server.err"
        self.args = ["serve", "--bind", f"127.0.0.1:{self.port}", "--certs", str(self.certs),
                     "--workers", str(workers), *extra]
        self.proc: subprocess.Popen | None = None
        self.preexec = None  # run in the server process before it starts (resource limits)

    def start(self, timeout: float = 30) -> "Server":
        return self.start_when(lambda: self.get("/healthz")[0] == 200, timeout)

    def start_when(self, answering, timeout: float = 30) -> "Server":
        """Start, then wait until the port accepts connections and `answering()` holds."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webhook", *self.args], cwd=self.workdir,
            stdout=self.audit_path.open("w"), stderr=self.stderr_path.open("w"),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env}, preexec_fn=self.preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"netguard exited {self.proc.returncode}: {self.stderr_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if answering():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"netguard did not answer in {timeout}s: {self.stderr_path.read_text()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=30)

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs / "ca.crt"))

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=10)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                conn: http.client.HTTPSConnection | None = None) -> tuple[int, Any]:
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            content_type = response.getheader("Content-Type", "")
            return response.status, json.loads(data) if "json" in content_type else data
        finally:
            if own:
                conn.close()

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post_review(self, path: str, review: dict[str, Any], conn=None) -> tuple[int, Any]:
        return self.request("POST", path, json.dumps(review).encode(),
                            {"Content-Type": "application/json"}, conn)

    def audit_lines(self, quiet: float = 0.2) -> list[dict[str, Any]]:
        """The audit log once it has not grown for `quiet` seconds: a worker writes its lines
        from a thread, within about 50 ms of each answer (webhook/serve/auditlog.py)."""
        deadline = time.monotonic() + 10
        size = -1
        while (current := self.audit_path.stat().st_size) != size and time.monotonic() < deadline:
            size = current
            time.sleep(quiet)
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()
                if line.startswith("{")]


def rows_server(work: Path, states: Any, *extra: str) -> Server:
    """A started server over an offline inventory of table rows: each state (a list of objects)
    in a file of its own, so every row keeps its own namespace."""
    import yaml

    objects = work / "objects"
    objects.mkdir()
    for index, state in enumerate(states):
        (objects / f"{index:02d}.yaml").write_text(yaml.safe_dump_all(state))
    return Server(work, "--objects", str(objects), *extra).start()
