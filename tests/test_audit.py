"""webhook/audit.py: whole JSON lines from many threads, through a pipe or into a file."""

from __future__ import annotations

import io
import json
import os
import select
import threading

import pytest

from webhook.audit import FIELDS, AuditLog, AuditRecord

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


def test_lines_through_a_pipe_stay_whole():
    read_end, write_end = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:  # a slow reader, like a container runtime: the pipe fills up
        while chunk := os.read(read_end, 1000):
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stream = os.fdopen(write_end, "w")
    try:
        _write_from_threads(AuditLog(stream), SIZES)
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

    from webhook.audit import _timestamp

    expected = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
    _timestamp(now - 7.25)
    assert _timestamp(now) == _timestamp(now) == expected.replace("+00:00", "Z")


def test_a_record_without_a_request_has_empty_request_fields():
    record = AuditRecord("validate")
    record.failed(415, "Content-Type must be application/json")
    fields = record.finish()
    assert list(fields) == list(FIELDS)
    assert fields["uid"] is None and fields["kind"] is None and fields["dry_run"] is False
    assert (fields["http_status"], fields["allowed"], fields["warnings"]) == (415, None, [])
