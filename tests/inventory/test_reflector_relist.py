"""Reflector.relist (webhook/inventory/watch.py): the stream it cuts may end with an error or
cleanly; either way, only that stream's end is forgiven, never a failure that comes after it.

The list-then-watch exchange is scripted here, so the order of events that a real server only
sometimes produces (a bookmark arrives, then relist() cuts the watch, which ends without an
error) happens on every run."""

from __future__ import annotations

import threading

import orjson

from webhook.inventory.watch import Reflector, StreamError, Timing

FAST = Timing(backoff_initial=0.001, backoff_max=0.001, watch_timeout=1)


class _ApiError(Exception):
    """What the kubernetes client raises for an HTTP error: a status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"({status}) {reason}")
        self.status = status
        self.reason = reason


class _Body:
    """A response whose reads are scripted: bytes, or a callable run at that read."""

    def __init__(self, *reads) -> None:
        self._reads = list(reads)

    def read(self) -> bytes:
        return self.read1(0)

    def read1(self, size: int) -> bytes:
        if not self._reads:
            return b""
        step = self._reads.pop(0)
        return step() if callable(step) else step

    def shutdown(self) -> None:  # wake(): the read it interrupts is the next scripted one
        pass

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _page(version: str) -> _Body:
    return _Body(orjson.dumps({"metadata": {"resourceVersion": version}, "items": []}))


def _run(script) -> tuple[Reflector, list[str]]:
    """Run a reflector whose calls answer from `script` (one entry per call: a response, an
    exception, or a callable of the reflector); the thread stops when the script runs out."""
    stop = threading.Event()
    asked: list[str] = []
    steps = iter(script)

    def list_call(query, timeout):
        asked.append("watch" if query.get("watch") else "list")
        step = next(steps, None)
        if step is None:
            stop.set()
            raise StreamError("script over")
        if callable(step):
            step = step(reflector)
        if isinstance(step, Exception):
            raise step
        return step

    reflector = Reflector("things", list_call, lambda items, version: list(items),
                          lambda kind, obj: None, stop, FAST)
    worker = threading.Thread(target=reflector.run, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the scripted reflector did not stop"
    return reflector, asked


BOOKMARK = orjson.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "2"}}}) + b"\n"


def _watch_cut_cleanly(reflector: Reflector) -> _Body:
    """A watch that gets a bookmark, then is cut by relist() and ends without an error, as a
    stream shut down between two events can."""
    return _Body(BOOKMARK, lambda: (reflector.relist(), b"")[1])


def test_a_list_failing_after_a_cleanly_cut_watch_is_counted_and_listed_again():
    reflector, asked = _run([
        _page("1"),
        _watch_cut_cleanly,
        _ApiError(500, "Internal Server Error"),  # the relist's list
        _page("3"),                                # listed again
    ])
    assert asked[:5] == ["list", "watch", "list", "list", "watch"]
    assert reflector.restarts == 1
    assert reflector.last_error == "HTTP 500 Internal Server Error"
    assert reflector.resource_version == "3"


def test_a_watch_cut_with_an_error_is_no_failure():
    def cut_with_an_error(reflector: Reflector) -> _Body:
        def read():
            reflector.relist()
            raise OSError("connection shut down")
        return _Body(BOOKMARK, read)

    reflector, asked = _run([_page("1"), cut_with_an_error, _page("3")])
    assert asked[:4] == ["list", "watch", "list", "watch"]
    # The cut stream's error is forgiven; the script's end stops the thread, no restart either.
    assert reflector.restarts == 0 and reflector.last_error is None
    assert reflector.resource_version == "3"
