"""`netguard serve --log-format json`: every line on stderr is one JSON object, for log pipelines
that parse JSON (the audit log on stdout is JSON already).

gunicorn's own lines (start, workers booting and exiting, socket errors) and netguard's (the
"netguard" loggers: internal errors with their traceback, certificate reloads, watches) get the
same shape: {"time", "level", "logger", "pid", "message"} and "exception" when there is one.
`JsonLogger` is a gunicorn `logger_class`: it keeps gunicorn's handlers and only changes how
they format. gunicorn's `logconfig_dict` would do the same but also switches its access log on,
which costs every request the formatting of a line nobody wants (stdout carries the audit log).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from gunicorn import glogging


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def netguard_to_stderr(formatter: logging.Formatter) -> None:
    """netguard's loggers write to stderr through a handler of their own with `formatter` (with no
    handler, Python's last resort writes bare messages)."""
    logger = logging.getLogger("netguard")
    for handler in [h for h in logger.handlers if getattr(h, "netguard_json", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.netguard_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


class JsonLogger(glogging.Logger):
    """gunicorn's Logger with every handler of its error log formatting JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
        netguard_to_stderr(formatter)
