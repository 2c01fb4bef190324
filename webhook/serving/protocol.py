"""uvicorn's httptools protocol, with deadlines for request headers and bodies,
and each response written in one piece.

uvicorn closes idle keep-alive connections, but not one that never completes
its request: a client that connects and sends nothing, or dribbles a header or
a body a byte at a time, holds its connection (and a file descriptor, and the
budget its body holds) for as long as it likes. Here every request must finish
its headers within `header_timeout` seconds of its first byte (or of the
connection), and its body within `body_timeout` seconds of its headers:

- late headers: the connection is closed (nobody has asked anything yet);
- a late body: the answer is 408 with a JSON error naming the limit, unless
  the application has already begun answering, and the connection is closed.
  `on_refused` is told (metrics, the rate-limited log line); the application,
  waiting for the rest of the body, sees the client gone.

The deadlines are kept by one periodic sweep, not timers per request: a timer
armed and cancelled per request (`asyncio.timeout`) costs more than the whole
dictionary update that replaces it. A late request is ended within its
timeout plus one sweep interval (a quarter of the shorter timeout, at most one
second).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, cast

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _ignore(status: int, message: str) -> None:
    return None


class CorkedTransport:
    """A transport that holds a response's head until its body is written, so
    that head and body leave in one write: one TLS record and one send instead
    of two. Anything else is the transport's own. A head is never held alone
    for long: the next write, or closing, sends it; an interim response
    (`100 Continue`) is sent at once, since the client waits for it."""

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._held = bytes(data)
        else:
            self._transport.write(data)

    def close(self) -> None:
        self.release()
        self._transport.close()

    def release(self) -> None:
        """Send a held head now (a response complete without a body write: HEAD)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response's head and body at once."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(cast(asyncio.Transport, CorkedTransport(transport)))

    def on_response_complete(self) -> None:
        cast(CorkedTransport, self.transport).release()
        super().on_response_complete()


class GuardedHttpToolsProtocol(CorkedHttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 10.0
    on_refused: ClassVar[Callable[[int, str], None]] = staticmethod(_ignore)
    # requests whose headers or body are due, and when (loop time); one sweep per class
    _due: ClassVar[dict[GuardedHttpToolsProtocol, float]] = {}
    _sweeping: ClassVar[bool] = False
    _reading_body = False

    def _expect(self, seconds: float) -> None:
        cls = type(self)
        cls._due[self] = self.loop.time() + seconds
        if not cls._sweeping:
            cls._sweeping = True
            self.loop.call_later(cls._interval(), cls._sweep, self.loop)

    @classmethod
    def _interval(cls) -> float:
        return min(1.0, cls.header_timeout / 4, cls.body_timeout / 4)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = [connection for connection, due in cls._due.items() if due <= now]
        for connection in late:
            del cls._due[connection]
            if not connection.transport.is_closing():
                connection._end_late()
        if cls._due:
            loop.call_later(cls._interval(), cls._sweep, loop)
        else:
            cls._sweeping = False

    def _end_late(self) -> None:
        cycle = getattr(self, "cycle", None)
        if self._reading_body and cycle is not None and not cycle.response_started:
            message = f"body not received within {self.body_timeout:g} seconds"
            type(self).on_refused(408, message)
            body = orjson.dumps({"error": message})
            cycle.response_started = True  # nothing else is written on this request
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._expect(self.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_body = False
        self._expect(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading_body = True
        self._expect(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_body = False
        type(self)._due.pop(self, None)

    def connection_lost(self, exc: Exception | None) -> None:
        type(self)._due.pop(self, None)
        super().connection_lost(exc)


def guarded_protocol(
    header_timeout: float,
    body_timeout: float = 10.0,
    on_refused: Callable[[int, str], None] = _ignore,
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class, with its deadlines, whom to tell of a late body, and
    its own sweep."""
    return type(
        "DeadlineProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "on_refused": staticmethod(on_refused),
            "_due": {},
            "_sweeping": False,
        },
    )
