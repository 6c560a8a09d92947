"""Where the self-managed certificates are kept current under gunicorn.

- Once in the master, before gunicorn starts (`bootstrap`): the server needs tls.crt and tls.key
  before it binds, and the pod's certificate folder (an emptyDir) starts empty. Rounds run in
  the calling thread, no thread is started, and the API client is closed before the fork.
- Then in the workers (`RotationLoop`, started after the fork like every other thread of
  netguard): every worker has a daemon thread that, every CHECK_SECONDS, tries to take the pod's
  lock file (flock, non-blocking); the one that holds it runs the rounds. So one worker per pod
  talks to the API; if it dies or is recycled, the kernel releases the lock and another worker
  takes over at its next try. Not in the master: gunicorn forks workers at any time (at start,
  on a crash, on a timeout), and a thread of the master holding a lock (logging, the HTTP pool)
  at that moment would leave the child's copy locked forever; gunicorn's arbiter has no hook
  for periodic work without one.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from pathlib import Path
from typing import Callable

from webhook.inventory.kube import ClusterError, ObjectApi
from webhook.serve.certrotator import CertRotator, Round, say

CHECK_SECONDS = 300.0  # far below the plan's overlap (1 h): replicas adopt a rotation in time
JITTER = 0.1
LOCK_FILE = ".rotation.lock"
BOOTSTRAP_SECONDS = 60.0


def bootstrap(make_rotator: Callable[[], tuple[CertRotator, ObjectApi]], deadline: float = BOOTSTRAP_SECONDS,
              sleep: Callable[[float], None] = time.sleep) -> Round:
    """Rounds until one succeeds, backing off, for at most `deadline` seconds. Raises
    ClusterError with the last problem."""
    end = time.monotonic() + deadline
    delay = 1.0
    while True:
        rotator, api = make_rotator()
        try:
            return rotator.round()
        except ClusterError as exc:
            if time.monotonic() + delay > end:
                raise
            say(f"{exc}; trying again in {delay:.0f}s")
        finally:
            api.close()
        sleep(delay)
        delay = min(delay * 2, 10.0)


class RotationLoop:
    def __init__(self, make_rotator: Callable[[], tuple[CertRotator, ObjectApi]], lock_path: Path,
                 interval: float = CHECK_SECONDS) -> None:
        self._make_rotator = make_rotator
        self._lock_path = lock_path
        self._interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._rotator: CertRotator | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cert-rotation", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    @property
    def holds_lock(self) -> bool:
        return self._lock_fd is not None

    def try_lock(self) -> bool:
        """Take the pod's lock if it is free; keep it for the life of this process."""
        if self._lock_fd is None:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._lock_fd = fd
        return True

    def tick(self) -> Round | None:
        """One try: a round if this worker holds (or now takes) the lock."""
        if not self.try_lock():
            return None
        if self._rotator is None:
            self._rotator, _ = self._make_rotator()
        return self._rotator.round()

    def _run(self) -> None:
        wait = 0.0  # at once: the worker that takes the lock first checks right away
        while not self._stopped.wait(wait):
            wait = self._interval * random.uniform(1 - JITTER, 1 + JITTER)
            try:
                self.tick()
            except ClusterError as exc:
                say(f"{exc}; trying again in about {self._interval:.0f}s")
            except Exception as exc:  # keep serving; the next tick tries again
                say(f"rotation round failed: {exc!r}")
