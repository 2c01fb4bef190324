"""JSON logs, one object per line, written off the request path.

Records go through a queue to a background thread, so a slow stderr never
stalls an admission; admission lines are batched (see AdmissionLog).
"""

from __future__ import annotations

import atexit
import collections
import datetime
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import msgspec
import orjson


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
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
    """One JSON line per admission, and a rate-limited line per request refused
    before a verdict (400, 408, 413, 415, 503).

    Lines are formatted on the event loop into a buffer; a writer thread flushes
    the buffer every `interval` seconds, or as soon as it holds `max_lines`. No
    admission wakes a thread: a thread woken per line fights the event loop for
    the GIL on the same core, which cost more than the rules themselves.
    """

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        enabled: bool = True,
        refusals: bool = True,
        interval: float = 0.2,
        max_lines: int = 256,
        refusals_per_second: float = 10.0,
    ) -> None:
        self.enabled = enabled  # admission lines (info)
        self.refusals = refusals  # refused-request lines (warning)
        self._stream = stream if stream is not None else sys.stderr.buffer
        self._interval, self._max_lines = interval, max_lines
        self._pending: collections.deque[bytes] = collections.deque()  # thread-safe ends
        self._wake = threading.Event()
        self._closed = False
        self._refusal_budget = RateLimit(refusals_per_second)
        self._thread = threading.Thread(target=self._run, name="admission-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def admission(
        self,
        uid: str,
        kind: str,
        name: str,
        operation: str,
        dry_run: bool,
        user: str,
        verdict: str,
        code: int,
        denied: Sequence[str],
        warned: Sequence[str],
        seconds: float,
    ) -> None:
        if not self.enabled:
            return
        line = _AdmissionLine(
            time=_Clock.now(),
            uid=uid,
            kind=kind,
            object=name,
            operation=operation,
            dry_run=dry_run,
            user=user,
            verdict=verdict,
            code=code,
            denied=tuple(denied),
            warned=tuple(warned),
            duration_ms=round(seconds * 1000, 3),
        )
        self._pending.append(_encode(line))
        if len(self._pending) >= self._max_lines:
            self._wake.set()

    def refused(self, status: int, error: str) -> None:
        """A request answered with an error before any verdict, at most
        `refusals_per_second` lines a second; the next line counts the rest."""
        if not self.refusals:
            return
        suppressed = self._refusal_budget.take()
        if suppressed is None:
            return
        line: dict[str, Any] = {
            **_head("snapshot_webhook.admission", "warning", "request refused"),
            "status": status,
            "error": error[:512],
        }
        if suppressed:
            line["suppressed"] = suppressed
        self._add(line)

    def _add(self, line: dict[str, Any]) -> None:
        self._pending.append(orjson.dumps(line) + b"\n")
        if len(self._pending) >= self._max_lines:
            self._wake.set()

    def _flush(self) -> None:
        pending = self._pending
        batch = [pending.popleft() for _ in range(len(pending))]
        if not batch:
            return
        try:
            self._stream.write(b"".join(batch))
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stderr gone: nothing to report to

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._flush()

    def close(self) -> None:
        """Write what is buffered and stop the writer."""
        if self._thread.is_alive():
            self._closed = True
            self._wake.set()
            self._thread.join(timeout=5)
        self._flush()


class _Clock:
    """ISO 8601 UTC timestamps, the seconds part formatted once a second."""

    second = -1
    prefix = ""

    @classmethod
    def now(cls) -> str:
        now = time.time()
        second = int(now)
        if second != cls.second:
            cls.second = second
            cls.prefix = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
        return f"{cls.prefix}.{int((now - second) * 1e6):06d}+00:00"


class _AdmissionLine(msgspec.Struct, gc=False, kw_only=True, rename="camel"):
    """One admission's log line, in its keys' order (the head every line has first)."""

    time: str
    level: str = "info"
    logger: str = "snapshot_webhook.admission"
    message: str = "admission"
    uid: str
    kind: str
    object: str
    operation: str
    dry_run: bool
    user: str
    verdict: str
    code: int
    denied: tuple[str, ...]
    warned: tuple[str, ...]
    duration_ms: float


_encode_struct = msgspec.json.Encoder().encode


def _encode(line: _AdmissionLine) -> bytes:
    return _encode_struct(line) + b"\n"


def _head(logger: str, level: str, message: str) -> dict[str, Any]:
    return {"time": _Clock.now(), "level": level, "logger": logger, "message": message}


class RateLimit:
    """At most `per_second` events a second, in a bucket of as many."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_second
        self.tokens = per_second
        self.clock = clock
        self.last = clock()
        self.suppressed = 0

    def take(self) -> int | None:
        """None when over the rate (counted); else how many were held back since."""
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            self.suppressed += 1
            return None
        self.tokens -= 1
        held, self.suppressed = self.suppressed, 0
        return held
