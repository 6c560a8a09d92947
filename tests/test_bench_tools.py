"""bench/threadtime/sitecustomize.py wraps the serving layer's steps by module and name: after a
move or a rename it measured nothing, silently (bench/threadtime.py printed an empty table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_threadtime_wraps_steps_that_exist(tmp_path):
    probe = (
        "import runpy, webhook.serve.endpoints as e, webhook.serve.auditlog as a\n"
        "runpy.run_path('bench/threadtime/sitecustomize.py')\n"
        "assert e.AdmissionEndpoints.review.__name__ == 'wrapper', 'review is not wrapped'\n"
        "assert a.AuditLog.flush.__name__ == 'wrapper', 'the audit flush is not wrapped'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"NETGUARD_THREADTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


def test_kept_memory_measures_both_namespaces():
    """bench/kept_memory.py drives the rule through its allow and its refusal on churned views."""
    done = subprocess.run([sys.executable, "bench/kept_memory.py", "--policies", "70", "--rounds", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "70 policies, 5 rounds, allowed (default-deny)", "70 policies, 5 rounds, refused (no default-deny)"]
    assert all(line.endswith(" MiB held") for line in lines)
