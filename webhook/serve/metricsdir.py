"""The folder prometheus_client's multiprocess mode writes to, for one `netguard serve` run.

Made under <tmp>/netguard-metrics/, named after the master's pid, and removed when the master
ends on any path (a refused start included). A master killed outright (SIGKILL) cannot remove
its folder: the next start removes the folders of masters that no longer run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PARENT = "netguard-metrics"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with that pid: leave its folder alone
        return True
    return True


def sweep(parent: Path) -> list[Path]:
    """Remove the folders of masters that no longer run; return them."""
    removed = []
    for folder in parent.glob("*-*"):
        pid = folder.name.split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def make(base: str | None = None) -> Path:
    parent = Path(base or tempfile.gettempdir()) / PARENT
    parent.mkdir(mode=0o700, exist_ok=True)
    sweep(parent)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
