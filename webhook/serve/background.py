"""A flush run every so often from a daemon thread of its own, and once more at exit.

The audit log and the admission metrics queue their work on the request thread and leave the
writing to such a thread (webhook/serve/auditlog.py, webhook/serve/metrics.py): with warm caches and in
batches it costs a fraction of what it cost on every call. Start it in the process that serves
(a gunicorn worker, after the fork): threads do not survive a fork.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
from typing import Callable, TypeVar

log = logging.getLogger("netguard")
T = TypeVar("T")


def take_queued(queue: collections.deque[T]) -> list[T]:
    """Exactly the items queued so far, oldest first. popleft and append are each atomic, so an
    item appended meanwhile waits for the next take, and none is lost or taken twice. Call it
    under the flush's own lock, so that two flushes keep the queue's order."""
    return [queue.popleft() for _ in range(len(queue))]


class PeriodicFlush:
    def __init__(self, flush: Callable[[], None], name: str, failure: str) -> None:
        self._flush = flush
        self._name = name
        self._failure = failure  # logged, with the exception, when a flush fails
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval: float) -> None:
        if self._thread is not None:
            return
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name=self._name, daemon=True)
        self._thread.start()
        # gunicorn's graceful stop (SIGTERM) ends a worker with sys.exit, which runs this.
        atexit.register(self._flush)

    def stop(self) -> None:
        """End the thread; the caller flushes what is left."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopped.set()
            thread.join()
            atexit.unregister(self._flush)

    def _run(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            try:
                self._flush()
            except Exception:  # a full disk, a closed stream: say so, keep serving
                log.exception(self._failure)
