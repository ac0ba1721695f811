"""An HTTP reverse proxy on 127.0.0.1 that fails on purpose: a real flaky network, for tests.

Put it between a provider and its server (an ``mlflow server``, moto, a webhook
receiver) and tell it how to misbehave::

    with FlakyProxy("http://127.0.0.1:5000") as proxy:
        proxy.fail(2, status=503)            # the next two requests get 503, then it forwards
        proxy.fail(1, status=429, retry_after="1")
        proxy.drop(1)                        # read the request, close the connection unanswered
        proxy.go_down(after=3)               # forward three more requests, then drop them all
        proxy.come_up()
        proxy.received, proxy.forwarded      # counters

A dropped request never reaches the server (the client sees the connection
closed without an answer), which is what a network outage does half-way
through a provider call. Requests are forwarded as received (the ``Host``
header included, so signed requests stay valid); the answer is relayed with
its body read in full.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class _Fault:
    status: int | None  # None: drop the connection without an answer
    retry_after: str | None = None
    body: bytes | None = None


class FlakyProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"FlakyProxy forwards to http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self._faults: deque[_Fault] = deque()
        self._down_after: int | None = None
        self._lock = threading.Lock()
        #: Every request that arrived, and those passed on to the server.
        self.received = 0
        self.forwarded = 0
        #: ``(method, path, status or None)`` of each request, in order.
        self.log: list[tuple[str, str, int | None]] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- misbehaviour -----------------------------------------------------------------------
    def fail(
        self,
        times: int,
        status: int = 503,
        retry_after: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``, and
        ``body``: default ``injected HTTP <status>`` as text; an XML body is sent as XML)."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after, body) for _ in range(times))

    def drop(self, times: int) -> None:
        """Close the connection of the next ``times`` requests without answering them."""
        with self._lock:
            self._faults.extend(_Fault(None) for _ in range(times))

    def go_down(self, after: int = 0) -> None:
        """Forward ``after`` more requests, then drop every request until ``come_up()``."""
        with self._lock:
            self._down_after = after

    def come_up(self) -> None:
        with self._lock:
            self._down_after = None
            self._faults.clear()

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            self.received += 1
            if self._faults:
                return self._faults.popleft()
            if self._down_after is not None:
                if self._down_after <= 0:
                    return _Fault(None)
                self._down_after -= 1
            self.forwarded += 1
            return None

    # -- plumbing ---------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - one nested handler class
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as separate writes: without this, Nagle and
                # delayed ACKs add 40 ms to every answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline().strip():
                                pass  # trailers
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._next_fault()
                if fault is not None and fault.status is None:
                    proxy.log.append((self.command, self.path, None))
                    self.close_connection = True
                    return
                if fault is not None:
                    assert fault.status is not None
                    proxy.log.append((self.command, self.path, fault.status))
                    text = fault.body or f"injected HTTP {fault.status}".encode()
                    xml = text.lstrip().startswith(b"<")
                    self.send_response(fault.status)
                    if fault.retry_after is not None:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Type", "text/xml" if xml else "text/plain")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    answer = response.getheaders()
                    status, reason = response.status, response.reason
                finally:
                    conn.close()
                proxy.log.append((self.command, self.path, status))
                self.send_response(status, reason)
                for key, value in answer:
                    if key.lower() in _HOP_BY_HOP:
                        continue
                    if key.lower() == "content-length" and self.command != "HEAD":
                        continue
                    self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
