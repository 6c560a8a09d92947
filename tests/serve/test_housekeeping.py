"""The worker's housekeeping runs every HOUSEKEEPING_SECONDS, not on every turn of gthread's
loop (webhook/serve/worker.py): under load a turn is one or two requests, and each turn made a
utime and a getppid system call and walked every connection in intake."""

from __future__ import annotations

import collections
import os

import pytest

from webhook.serve import worker
from webhook.serve.worker import HOUSEKEEPING_SECONDS, NetguardWorker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(worker.time, "monotonic", fake)
    return fake


class Heartbeat:
    def __init__(self) -> None:
        self.beats = 0

    def notify(self) -> None:
        self.beats += 1


def _worker() -> NetguardWorker:
    # Only what the three methods read: the worker is never run here.
    made = NetguardWorker.__new__(NetguardWorker)
    made.tmp = Heartbeat()
    made.ppid = os.getppid()
    made.log = type("Log", (), {"info": staticmethod(lambda *a: None)})()
    made.pending_conns = collections.deque()
    made.intakes = collections.OrderedDict()
    made.lingering = collections.OrderedDict()
    made.alive = True
    return made


def test_the_heartbeat_is_written_once_per_interval_however_many_turns(clock):
    made = _worker()
    for _ in range(1000):
        made.notify()
    assert made.tmp.beats == 1  # before, 1,000 utime calls
    clock.now += HOUSEKEEPING_SECONDS
    made.notify()
    assert made.tmp.beats == 2


def test_the_parent_is_checked_once_per_interval_and_a_change_still_seen(clock, monkeypatch):
    made = _worker()
    calls = []
    real = os.getppid
    monkeypatch.setattr(os, "getppid", lambda: calls.append(1) or real())
    assert all(made.is_parent_alive() for _ in range(1000))
    assert len(calls) == 1
    made.ppid = -1  # the arbiter died: the worker was adopted by another process
    assert made.is_parent_alive()  # not checked again within the interval
    clock.now += HOUSEKEEPING_SECONDS
    assert not made.is_parent_alive()


def test_deadline_scans_run_once_per_interval_and_still_drop_the_late(clock, monkeypatch):
    made = _worker()
    closed = []
    monkeypatch.setattr(NetguardWorker, "_stop_lingering", lambda self, sock: closed.append(sock) or self.lingering.pop(sock))
    made.murder_pending()  # the first scan: nothing is late yet
    made.lingering["late"] = clock.now - 1
    made.murder_pending()
    assert closed == []  # within the interval: no scan
    clock.now += HOUSEKEEPING_SECONDS
    made.murder_pending()
    assert closed == ["late"]


# -- SIGTERM: who keeps the grace ------------------------------------------------------------

class Conn:
    def __init__(self, answered_at: float, timeout: float) -> None:
        self.answered_at, self.timeout = answered_at, timeout
        self.sock = object()
        self.closed = False

    def close(self, graceful: bool = False) -> None:
        self.closed = True


class Poller:
    def unregister(self, sock) -> None:
        pass


def test_a_connection_answered_after_sigterm_keeps_its_grace(clock):
    """The answer to a request in flight at SIGTERM goes out with keep-alive, and gthread cuts
    that connection's timeout to 2 s before netguard's stop logic runs. netguard read its idle
    time off the timeout, took it for a connection idle for two minutes and closed it at once,
    while its client was already sending the next request (bench/sigterm.py: a few failed
    requests in most trials)."""
    made = _worker()
    made.cfg = type("Cfg", (), {"keepalive": 120})()
    made.poller = Poller()
    made.keepalived_conns = collections.deque()
    idle = Conn(answered_at=clock.now - 30, timeout=clock.now - 30 + 120)
    busy = Conn(answered_at=clock.now - 0.005, timeout=clock.now + 2.0)  # cut by gthread
    made.keepalived_conns.extend([idle, busy])
    made.nr_conns = 2
    made.alive = False
    made._cap_keepalive(clock.now + 2.0)
    assert idle.closed  # idle for longer than the grace: closed at once
    assert not busy.closed and busy.timeout <= clock.now + worker.STOP_GRACE_SECONDS
    assert list(made.keepalived_conns) == [busy] and made.nr_conns == 1
