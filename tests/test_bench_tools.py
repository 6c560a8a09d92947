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
