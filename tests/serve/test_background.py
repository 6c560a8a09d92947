"""webhook/serve/background.py: the flush thread keeps going after a failed flush, and says so."""

from __future__ import annotations

import logging
import threading
import time

from webhook.serve.background import PeriodicFlush


def test_a_failed_flush_is_logged_and_the_next_one_still_runs(caplog):
    calls = []
    flushed_again = threading.Event()

    def flush() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("No space left on device")
        flushed_again.set()

    flusher = PeriodicFlush(flush, "test-flush", "could not write the test lines")
    with caplog.at_level(logging.ERROR, logger="netguard"):
        flusher.start(interval=0.01)
        try:
            assert flushed_again.wait(10), "no flush after the failed one"
        finally:
            flusher.stop()
    [failure] = [r for r in caplog.records if r.getMessage() == "could not write the test lines"]
    assert failure.exc_info[0] is OSError


def test_stop_ends_the_thread_and_no_flush_follows():
    calls = []
    flusher = PeriodicFlush(lambda: calls.append(1), "test-flush-stop", "failed")
    flusher.start(interval=0.001)
    deadline = time.monotonic() + 10
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    flusher.stop()
    count = len(calls)
    time.sleep(0.05)
    assert len(calls) == count
    assert not any(t.name == "test-flush-stop" for t in threading.enumerate())
