"""uvicorn's httptools protocol, with a deadline for request headers.

uvicorn closes idle keep-alive connections, but not one that never completes
its request headers: a client that connects and sends nothing, or dribbles a
header a byte at a time, holds its connection (and a file descriptor) for as
long as it likes. Here every connection, and every new request on it, must
finish its headers within `header_timeout` seconds or be closed.

The deadlines are kept by one periodic sweep, not a timer per request: two
timers (armed and cancelled) per request cost more than the dictionary updates
that replace them. A late connection is closed within `header_timeout` plus one
sweep interval (a quarter of the timeout, at most one second).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0
    # connections whose headers are due, and when (loop time); one sweep per class
    _due: ClassVar[dict[GuardedHttpToolsProtocol, float]] = {}
    _sweeping: ClassVar[bool] = False

    def _await_headers(self) -> None:
        cls = type(self)
        cls._due[self] = self.loop.time() + self.header_timeout
        if not cls._sweeping:
            cls._sweeping = True
            self.loop.call_later(cls._interval(), cls._sweep, self.loop)

    @classmethod
    def _interval(cls) -> float:
        return min(1.0, cls.header_timeout / 4)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = [connection for connection, due in cls._due.items() if due <= now]
        for connection in late:
            del cls._due[connection]
            if not connection.transport.is_closing():
                connection.transport.close()
        if cls._due:
            loop.call_later(cls._interval(), cls._sweep, loop)
        else:
            cls._sweeping = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._await_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._await_headers()

    def on_headers_complete(self) -> None:
        type(self)._due.pop(self, None)
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        type(self)._due.pop(self, None)
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float) -> type[GuardedHttpToolsProtocol]:
    """The protocol class, with its header deadline and its own sweep."""
    return type(
        "HeaderDeadlineProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "_due": {}, "_sweeping": False},
    )
