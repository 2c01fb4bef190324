"""JSON logs, one object per line, written off the request path.

Records go through a queue to a background thread, so a slow stderr never
stalls an admission.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import logging.handlers
import queue
from typing import Any

import orjson

# Fields an admission log line may carry; nothing else from a request is logged.
ADMISSION_FIELDS = (
    "uid",
    "kind",
    "object",
    "operation",
    "dry_run",
    "allowed",
    "code",
    "rules",
    "duration_ms",
)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ADMISSION_FIELDS:
            if field in record.__dict__:
                line[field] = record.__dict__[field]
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str) -> logging.handlers.QueueListener:
    """Route every log record through a queue to JSON on stderr."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler()
    stream.setFormatter(JSONFormatter())
    listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level.upper())
    listener.start()
    atexit.register(listener.stop)
    return listener
