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
import sys
import threading
from typing import IO, Any

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


class AdmissionLog:
    """One JSON line per admission, formatted and written by a background thread.

    The request path only puts a tuple on a queue: no LogRecord, no handler
    chain, no formatting. Lines are written in batches, each a whole line, to
    the same stream as the other logs.
    """

    def __init__(self, stream: IO[bytes] | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stderr.buffer
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="admission-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, *fields: Any) -> None:
        """(created, uid, kind, object, operation, dry_run, allowed, code, rules, seconds)"""
        if self.enabled:
            self._queue.put(fields)

    def _line(self, fields: tuple[Any, ...]) -> bytes:
        created, *values = fields
        record = dict(zip(ADMISSION_FIELDS, values, strict=True))
        record["duration_ms"] = round(record["duration_ms"] * 1000, 3)
        stamp = datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat()
        head = {
            "time": stamp,
            "level": "info",
            "logger": "snapshot_webhook.admission",
            "message": "admission",
        }
        return orjson.dumps({**head, **record}) + b"\n"

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while not self._queue.empty() and len(batch) < 512:
                batch.append(self._queue.get())
            lines = b"".join(self._line(x) for x in batch if x is not None)
            if lines:
                try:
                    self._stream.write(lines)
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # stderr gone: nothing to report to
            if None in batch:
                return

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
