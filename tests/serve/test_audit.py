"""webhook/serve/auditlog.py and auditrecord.py: whole JSON lines from many threads, through a pipe or
into a file."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.reviews import make_request
from webhook.wire import jsoncodec
from webhook.serve import auditrecord
from webhook.serve.auditlog import AuditLog, _whole_lines_up_to_pipe_buf
from webhook.serve.auditrecord import FIELDS, AuditRecord

ROOT = Path(__file__).resolve().parent.parent.parent

THREADS = 16
PER_THREAD = 150


def _record(thread: int, i: int, size: int) -> AuditRecord:
    record = AuditRecord("validate")
    record.failed(400, f"t{thread}-{i}:" + "x" * size)
    return record


def _write_from_threads(log: AuditLog, sizes: list[int]) -> None:
    def run(thread: int) -> None:
        for i in range(PER_THREAD):
            log.write(_record(thread, i, sizes[(thread + i) % len(sizes)]))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def _check_lines(data: bytes) -> None:
    lines = data.split(b"\n")
    assert lines[-1] == b""  # every line ends with a newline
    seen = set()
    for line in lines[:-1]:
        record = json.loads(line)  # a line cut into by another thread's would not parse
        assert list(record) == list(FIELDS)
        seen.add(record["error"].split(":", 1)[0])
    assert len(lines) - 1 == THREADS * PER_THREAD == len(seen)


# Short lines to long ones just under PIPE_BUF (4096 bytes): the ones written without a lock.
SIZES = [10, 500, 1500, 3000, select.PIPE_BUF - 600]


@pytest.mark.parametrize("queued", [False, True], ids=["written-at-once", "queued-to-the-writer"])
def test_lines_through_a_pipe_stay_whole(queued):
    read_end, write_end = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:  # a slow reader, like a container runtime: the pipe fills up
        while chunk := os.read(read_end, 1000):
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stream = os.fdopen(write_end, "w")
    # Room for every line: this is about whole lines from many threads, not about a stalled pipe
    # (a slow reader here takes seconds, and the default bound would drop some, counted).
    log = AuditLog(stream, max_queued_bytes=1 << 30, write_wait=30)
    if queued:
        log.start(interval=0.001)
    try:
        _write_from_threads(log, SIZES)
        log.stop()
    finally:
        stream.close()
        reader.join(30)
        os.close(read_end)
    assert max(len(line) for line in b"".join(chunks).split(b"\n")) <= select.PIPE_BUF
    _check_lines(b"".join(chunks))


def test_lines_into_a_file_stay_whole(tmp_path):
    path = tmp_path / "audit.log"
    with path.open("w") as stream:
        _write_from_threads(AuditLog(stream), SIZES + [3 * select.PIPE_BUF])
    _check_lines(path.read_bytes())


def test_a_line_longer_than_pipe_buf_is_written_whole_through_a_pipe():
    read_end, write_end = os.pipe()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read_end, 512), b"")))
    reader.start()
    with os.fdopen(write_end, "w") as stream:
        AuditLog(stream).write(_record(0, 0, 100_000))  # more than the pipe holds at once
    reader.join(30)
    os.close(read_end)
    record = json.loads(b"".join(chunks))
    assert record["error"] == "t0-0:" + "x" * 100_000 and record["http_status"] == 400


@pytest.mark.parametrize("text", ["plain", "ünïcode", "lone \ud800 surrogate"])
def test_streams_without_a_descriptor_get_text_lines(text):
    stream = io.StringIO()
    record = AuditRecord("mutate")
    record.failed(415, text)
    AuditLog(stream).write(record)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line)["error"] == text


@pytest.mark.parametrize("now", [0.0, 1_763_700_000.0, 1_763_700_000.9995, 1_763_700_059.001,
                                 1_763_700_060.5, 4_102_444_799.999])
def test_timestamps_are_rfc3339_utc_milliseconds(now):
    # The text of each second is cached: go through a different second first, then this one twice.
    from datetime import datetime, timezone

    from webhook.serve.auditrecord import _timestamp

    expected = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
    _timestamp(now - 7.25)
    assert _timestamp(now) == _timestamp(now) == expected.replace("+00:00", "Z")


def test_a_record_without_a_request_has_empty_request_fields():
    record = AuditRecord("validate")
    record.failed(415, "Content-Type must be application/json")
    fields = record.finish()
    assert list(fields) == list(FIELDS)
    assert fields["uid"] is None and fields["kind"] is None and fields["dry_run"] is False
    assert (fields["http_status"], fields["allowed"], fields["decision"]) == (415, None, None)
    line = json.loads(jsoncodec.dumps(fields))  # as the audit line writes it
    assert (line["warnings"], line["patched_labels"], line["rule"]) == ([], {}, None)


def test_a_record_netguard_failed_on_says_error_with_the_request_it_had():
    record = AuditRecord("mutate")
    record.request(make_request(operation="UPDATE"))
    record.failed(500, "netguard failed", internal=True)
    fields = record.finish()
    assert (fields["decision"], fields["allowed"], fields["operation"], fields["http_status"]) == \
        ("error", None, "UPDATE", 500)


# --------------------------------------------------------------------------- the writer thread


def _lines_in(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_started_log_writes_from_its_thread_with_the_time_of_the_answer(tmp_path):
    path = tmp_path / "audit.log"
    with path.open("w") as stream:
        log = AuditLog(stream)
        log.start(interval=0.5)
        try:
            answered = time.time()
            log.write(_record(0, 0, 10))
            assert path.read_text() == ""  # queued: the writer wakes every 0.5 s
            deadline = time.monotonic() + 10
            while not path.read_text():
                assert time.monotonic() < deadline, "the writer never wrote the line"
                time.sleep(0.01)
        finally:
            log.stop()
    [line] = _lines_in(path)
    # Stamped when the call was answered, not when the writer got to it half a second later.
    written = time.mktime(time.strptime(line["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(written + float("0." + line["time"][20:23]) - answered) < 0.2


def test_the_writer_joins_lines_into_few_system_calls(tmp_path, monkeypatch):
    calls = []
    real_write = os.write

    def counted(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    path = tmp_path / "audit.log"
    with path.open("w") as stream:
        log = AuditLog(stream)
        log.start(interval=3600)  # only stop() writes
        for i in range(100):
            log.write(_record(0, i, 10))
        monkeypatch.setattr(os, "write", counted)
        log.stop()
    assert len(_lines_in(path)) == 100
    # A regular file takes the batch in one write (before, one per PIPE_BUF: eleven here).
    assert calls == [path.stat().st_size]


def _drain(read: int) -> bytes:
    """What a pipe holds now (every writer done), read without blocking."""
    os.set_blocking(read, False)
    data = b""
    while True:  # bounded: the pipe holds at most its 64 KiB and nobody writes any more
        try:
            chunk = os.read(read, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_the_writer_writes_a_pipe_in_whole_lines_of_at_most_pipe_buf(monkeypatch):
    calls = []
    real_write = os.write
    read, write = os.pipe()
    try:
        stream = os.fdopen(write, "w", closefd=False)
        log = AuditLog(stream)
        log.start(interval=3600)
        for i in range(100):
            log.write(_record(0, i, 10))
        monkeypatch.setattr(os, "write", lambda fd, data: calls.append(data) or real_write(fd, data))
        log.stop()
        data = _drain(read)
    finally:
        os.close(read)
        os.close(write)
    assert len(data.splitlines()) == 100 and b"".join(calls) == data
    # About 600 bytes a line: a few lines to a write, each ending on a whole line.
    assert 1 < len(calls) <= 20 and all(len(c) <= select.PIPE_BUF and c.endswith(b"\n") for c in calls)


def test_a_full_queue_drops_and_counts_instead_of_blocking_the_caller(tmp_path):
    # Before, past 10,000 queued lines the caller wrote its own line, and blocked on a stalled
    # pipe: a stuck log agent stopped admission.
    path = tmp_path / "audit.log"
    with path.open("w") as stream:
        log = AuditLog(stream, max_queued_bytes=3 * len(auditrecord.encode(_record(0, 0, 10))))
        counted = []
        log.on_dropped = counted.append
        log.start(interval=3600)
        for i in range(5):
            log.write(_record(0, i, 10))
        assert _lines_in(path) == []  # nothing written on the request thread
        assert log.dropped == 2 and counted == [1, 1]
        log.stop()
    assert [line["error"] for line in _lines_in(path)] == [f"t0-{i}:" + "x" * 10 for i in range(3)]


def test_a_stalled_pipe_never_blocks_admission_and_lines_stay_whole():
    read, write = os.pipe()
    try:
        stream = os.fdopen(write, "w", closefd=False)
        log = AuditLog(stream, max_queued_bytes=200_000, write_wait=0.05)
        log.start(interval=0.005)
        started = time.monotonic()
        for i in range(20_000):  # far more than the pipe (64 KiB) and the queue hold
            log.write(_record(1, i, 50))
        assert time.monotonic() - started < 30  # bounded: it never waited for the pipe
        deadline = time.monotonic() + 10
        while log.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.dropped > 0
        log.stop()
        data = _drain(read)
        lines = data.split(b"\n")
        assert lines[-1] == b""  # ends on a whole line
        parsed = [json.loads(line) for line in lines[:-1]]  # every line is whole JSON
        assert len(parsed) + log.dropped == 20_000
    finally:
        os.close(read)
        os.close(write)


def test_what_is_queued_is_the_line_not_the_objects():
    from tests.reviews import make_request, service

    log = AuditLog(io.StringIO())
    log.start(interval=3600)  # only stop() writes
    try:
        record = AuditRecord("validate")
        req = make_request(obj=service("web", annotations={"big": "x" * 100_000}), operation="UPDATE")
        record.request(req)
        log.write(record)
        queued = list(log._queue)
        # Before, the queue held each record, with the facts it would render later.
        assert [type(item) for item in queued] == [bytes]
        assert len(queued[0]) < 2_000 and b"xxxxxxxx" not in queued[0]
        assert json.loads(queued[0])["uid"] == req.uid and log._queued_bytes == len(queued[0])
    finally:
        log.stop()


def test_a_worker_that_exits_normally_writes_its_queued_lines():
    # gunicorn's graceful stop ends a worker with sys.exit: the atexit flush writes what queued.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from webhook.serve.auditlog import AuditLog
        from webhook.serve.auditrecord import AuditRecord
        log = AuditLog()
        log.start(interval=3600)
        for i in range(7):
            record = AuditRecord("validate")
            record.failed(400, f"line {{i}}")
            log.write(record)
        sys.exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, timeout=60)
    assert [json.loads(line)["error"] for line in out.stdout.splitlines()] == [f"line {i}" for i in range(7)]


@pytest.mark.parametrize("sizes", [[10] * 50, [4000, 10, 4000], [100, 9000, 100, 100], [5000], []])
def test_lines_are_joined_whole_into_writes_of_at_most_pipe_buf(sizes):
    lines = [b"x" * (size - 1) + b"\n" for size in sizes]
    chunks = list(_whole_lines_up_to_pipe_buf(lines))
    assert b"".join(chunks) == b"".join(lines)
    for chunk in chunks:
        assert chunk.endswith(b"\n") or not chunk
        # Longer than PIPE_BUF only when the chunk is one line.
        assert len(chunk) <= select.PIPE_BUF or chunk.count(b"\n") == 1
    # As few writes as that allows: no two neighbouring chunks would fit in one.
    assert all(len(a) + len(b) > select.PIPE_BUF for a, b in zip(chunks, chunks[1:]))


@pytest.mark.parametrize("seconds", [0.0, 0.0000004, 0.0000006, 0.0012346, 0.25, 1.9999996, 29.123456789])
def test_durations_are_milliseconds_to_the_microsecond(seconds):
    from webhook.serve.auditrecord import _milliseconds

    assert _milliseconds(seconds) == round(seconds * 1000, 3)


def test_an_answered_record_carries_the_decision_and_the_request():
    from tests.reviews import make_request
    from webhook.core.outcome import allow

    record = AuditRecord("validate")
    record.request(make_request())
    record.decision(allow("ok", rule="r", warnings=["w1", "w2"]), "cache", "42")
    fields = record.finish()
    assert list(fields) == list(FIELDS)
    assert (fields["allowed"], fields["decision"], fields["rule"], fields["warnings"]) == (True, "warn", "r", ("w1", "w2"))
    assert (fields["patched_labels"], fields["state"], fields["resource_version"]) == ({}, "cache", "42")
    assert json.loads(jsoncodec.dumps(fields))["warnings"] == ["w1", "w2"]


FULL_DISK = textwrap.dedent("""
    import json, resource, signal, sys
    from webhook.serve.auditlog import AuditLog
    from webhook.serve.auditrecord import AuditRecord
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), hard))  # the disk is full here
    with open(sys.argv[1], "w") as stream:
        log = AuditLog(stream)
        for i in range(40):
            record = AuditRecord("validate")
            record.failed(400, f"line-{i}:" + "x" * 300)
            log.write(record)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again
        for i in range(40, 45):
            record = AuditRecord("validate")
            record.failed(400, f"line-{i}:" + "x" * 300)
            log.write(record)
    print(log.dropped)
""")


def test_a_full_disk_leaves_no_torn_line_and_glues_none(tmp_path):
    # The disk fills in the middle of a line: the fragment is cut off the file again, so the
    # file holds whole lines only, and the lines written once there is room are whole too.
    path = tmp_path / "audit.log"
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(path), "5000"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    dropped = int(done.stdout)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    errors = [json.loads(line)["error"].split(":")[0] for line in lines[:-1]]  # every line whole JSON
    assert errors[-5:] == [f"line-{i}" for i in range(40, 45)]
    assert len(errors) + dropped == 45 and dropped > 0
    assert path.stat().st_size - len(b"".join(line + b"\n" for line in lines[-6:-1])) <= 5000


def test_the_timestamp_is_what_datetime_writes_down_to_the_rounding():
    """auditrecord._timestamp formats the date and time once a second; the line still says what
    datetime's isoformat(timespec="milliseconds") says, including where microsecond rounding
    carries into the next second."""
    import datetime
    import random

    from webhook.serve.auditrecord import _timestamp

    def reference(now: float) -> str:
        stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    rng = random.Random(7)
    base = 1_796_550_446.0
    edges = [base + d for d in (0.0, 0.0005, 0.0009999, 0.9999994, 0.9999995, 0.9999996, 1.0, -0.0000004)]
    samples = edges + [base + rng.uniform(-1e7, 1e7) for _ in range(20_000)]
    assert [_timestamp(t) for t in samples] == [reference(t) for t in samples]
