"""uvicorn's HTTP protocol (httptools) with a deadline and a size limit on request headers.

uvicorn bounds the idle time between two requests of a connection (``timeout_keep_alive``) but
nothing before a request's headers are complete: a connection that sends nothing, or a header
byte every few seconds, is held open for ever (a slowloris), and headers may grow without
bound. ``deadlines(...)`` returns a protocol class that closes such a connection:

* headers not complete within ``header_timeout_s`` of the connection opening, or of the first
  byte of a later request on it: answered 408 and closed;
* more than ``max_header_bytes`` received before the headers are complete: answered 431 and
  closed.

Both happen before any endpoint is asked, so nothing is logged; ``on_closed(reason)`` counts
them (``mlx_gateway_connections_closed_total``). The body has its own deadline, in the app
(``gateway.http.read_body``), so that a slow body is answered and logged as the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_CLOSE = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


def _refusal(status: int, message: str) -> bytes:
    body = message.encode()
    return (
        _CLOSE[status]
        + b"content-type: text/plain; charset=utf-8\r\n"
        + f"content-length: {len(body)}\r\n".encode()
        + b"connection: close\r\n\r\n"
        + body
    )


def deadlines(
    header_timeout_s: float, max_header_bytes: int, on_closed: Callable[[str], None]
) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type(
        "Deadlines",
        (_Deadlines,),
        {
            "header_timeout_s": header_timeout_s,
            "max_header_bytes": max_header_bytes,
            "on_closed": staticmethod(on_closed),
        },
    )


class _Deadlines(HttpToolsProtocol):
    header_timeout_s = 10.0
    max_header_bytes = 65_536
    _timer: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _reading_headers = False

    @staticmethod
    def on_closed(reason: str) -> None: ...

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        # The parser sees the bytes first: a chunk that completes the headers may carry the
        # start of the body too (a client writes both at once, the transport reads up to
        # 256 KiB), and those body bytes are not header bytes. A chunk after which the
        # headers are still incomplete was all headers.
        reading = self._reading_headers
        super().data_received(data)
        if reading and self._reading_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                limit = self.max_header_bytes
                self._refuse(431, "header_too_large", f"request headers over {limit} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_headers:  # a later request on a kept-alive connection
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._cancel()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._reading_headers = True
        self._header_bytes = 0
        self._cancel()
        self._timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_late(self) -> None:
        self._timer = None
        if self._reading_headers:
            late = f"request headers not complete in {self.header_timeout_s:g}s"
            self._refuse(408, "header_timeout", late)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._reading_headers = False
        self._cancel()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, message))
            self.transport.close()
        self.on_closed(reason)
