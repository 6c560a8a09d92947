"""Lists stream in with Python's cyclic collector paused (webhook/inventory/watch.py
`collector_paused`), and it comes back as it was, whatever happens."""

from __future__ import annotations

import gc
import threading

import orjson
import pytest

from webhook.inventory.watch import Reflector, StreamError, Timing, collector_paused


class _Response:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def read(self) -> bytes:
        return self.body

    def release_conn(self) -> None:
        pass


def reflector(on_list, pages: list[dict]) -> Reflector:
    bodies = iter(orjson.dumps(p) for p in pages)

    def list_call(query, timeout):
        try:
            return _Response(next(bodies))
        except StopIteration:
            raise StreamError("no more pages") from None

    return Reflector("things", list_call, on_list, lambda kind, obj: None, threading.Event(), Timing())


PAGES = [{"metadata": {"resourceVersion": "5", "continue": "t1"}, "items": [{"n": 1}]},
         {"metadata": {"resourceVersion": "5"}, "items": [{"n": 2}]}]


@pytest.fixture(autouse=True)
def collector_back_on():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_a_list_runs_with_the_collector_paused_and_restores_it():
    seen = []

    def on_list(items, version):
        for item in items:  # the pages stream in while paused
            seen.append((item["n"], gc.isenabled()))

    gc.enable()
    reflector(on_list, PAGES)._list()
    assert seen == [(1, False), (2, False)]
    assert gc.isenabled()


def test_a_failing_list_restores_the_collector():
    def on_list(items, version):
        list(items)

    gc.enable()
    with pytest.raises(StreamError):
        reflector(on_list, [PAGES[0]])._list()  # the second page never comes
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_end_with_the_last():
    gc.enable()
    first_in, second_out = threading.Event(), threading.Event()
    states = []

    def other():
        with collector_paused():
            first_in.set()
            second_out.wait(5)
        states.append(("after other", gc.isenabled()))

    thread = threading.Thread(target=other)
    with collector_paused():
        thread.start()
        assert first_in.wait(5)
    states.append(("after first", gc.isenabled()))  # the other pause still holds
    second_out.set()
    thread.join(5)
    assert states == [("after first", False), ("after other", True)]
