"""`netguard serve --log-format json`: every stderr line is a JSON object, the audit log on
stdout is untouched, and no access log appears."""

from __future__ import annotations

import json
import logging
import sys

from tests.serverproc import Server, lb_review
from webhook.serve.jsonlog import JsonFormatter


def test_a_record_with_a_traceback_is_one_json_line():
    try:
        raise ZeroDivisionError("a bug inside netguard")
    except ZeroDivisionError:
        record = logging.LogRecord("netguard", logging.ERROR, __file__, 1, "failed on %s", ("validate",),
                                   sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed on validate" and line["level"] == "ERROR" and line["logger"] == "netguard"
    assert "ZeroDivisionError: a bug inside netguard" in line["exception"]
    assert line["time"].endswith("+00:00")


def test_serve_writes_json_lines_on_stderr_and_the_audit_alone_on_stdout(tmp_path):
    srv = Server(tmp_path, "--log-format", "json", workers=2).start()
    try:
        status, _ = srv.post_review("/validate", lb_review("shop"))
        assert status == 200
        audit = srv.audit_lines()
    finally:
        assert srv.stop() == 0
    lines = [line for line in srv.stderr_path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, or this fails
    messages = [p["message"] for p in parsed]
    assert sum(m.startswith("Booting worker with pid") for m in messages) == 2
    assert any(m.startswith("Shutting down") for m in messages)
    assert {p["logger"] for p in parsed} >= {"gunicorn.error"}
    # stdout: only the audit line of the one review, no access log line.
    assert [a["uid"] for a in audit] == ["uid-shop-edge"]
    assert all(line.startswith("{") for line in srv.audit_path.read_text().splitlines())


def test_text_stays_the_default(tmp_path):
    srv = Server(tmp_path, workers=1).start()
    assert srv.stop() == 0
    first = srv.stderr_path.read_text().splitlines()[0]
    assert first.startswith("[") and "Starting gunicorn" in first


def test_the_logger_class_makes_gunicorns_and_netguards_lines_json(capsys):
    from gunicorn.config import Config

    from webhook.serve.jsonlog import JsonLogger

    netguard, gunicorn_error = logging.getLogger("netguard"), logging.getLogger("gunicorn.error")
    saved = netguard.handlers[:], netguard.propagate, gunicorn_error.handlers[:], gunicorn_error.propagate
    try:
        logger = JsonLogger(Config())  # errorlog "-": stderr
        logger.error("socket error on %s", "127.0.0.1")
        netguard.error("keeping the last good certificate")
        err = capsys.readouterr().err.splitlines()
    finally:  # global loggers: as they were, for the tests that follow
        netguard.handlers[:], netguard.propagate, gunicorn_error.handlers[:], gunicorn_error.propagate = saved
    parsed = [json.loads(line) for line in err]
    assert [(p["logger"], p["message"]) for p in parsed] == [
        ("gunicorn.error", "socket error on 127.0.0.1"), ("netguard", "keeping the last good certificate")]
