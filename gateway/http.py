"""HTTP pieces of the gateway's answers: errors, pre-encoded responses, request ids, dispatch.

``Answer`` is a pre-encoded JSON response whose ``after`` hook runs once the answer has been
handed to the server: the handlers build the log record, count metrics and start shadow
copies there, so none of it is between the caller and the answer. ``FastPath`` sends the
three endpoint POST routes straight to their handlers.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.control import EndpointView, Loaded
from gateway.routing import Role

log = logging.getLogger("mlx.gateway")

_RID = re.compile(r"^[\x21-\x7e]{1,200}$")
JSON_TYPE = (b"content-type", b"application/json")
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "UPSTREAM_ERROR",
    503: "UNAVAILABLE",
    504: "TIMEOUT",
}
ROUTES = (
    "POST /endpoints/{name}/invocations",
    "POST /endpoints/{name}/v1/chat/completions",
    "POST /endpoints/{name}/feedback",
    "GET /healthz",
    "GET /metrics",
)


class Fail(Exception):
    """An error answer; ``logged``: whether it is an inference-log record (a variant was asked).

    ``message`` is what the caller reads; ``detail``, when given, what the record's ``error``
    keeps instead — the part a caller must not see (an upstream's address, what it wrote)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        logged: bool = True,
        headers: list[tuple[bytes, bytes]] | None = None,
        extra: dict[str, Any] | None = None,
        detail: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.logged = logged
        self.headers = headers or []
        self.extra = extra or {}
        self.detail = detail

    @property
    def logged_error(self) -> str:
        """The record's ``error``."""
        return self.detail or self.message


class Answer(Response):
    """A pre-encoded JSON answer whose ``after`` hook runs once it has been handed over."""

    def __init__(
        self,
        body: bytes,
        status: int,
        headers: list[tuple[bytes, bytes]],
        after: Callable[[], None] | None = None,
        content_type: tuple[bytes, bytes] = JSON_TYPE,
    ):
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", str(len(body)).encode()), content_type, *headers]
        self._after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": self.body})
        finally:
            if self._after is not None:
                try:
                    self._after()
                except Exception:  # the log and the metrics must never break serving
                    log.exception("mlx serve: after-answer hook failed")


class Busy:
    """How many endpoint requests are being answered now (their answer not yet sent)."""

    inflight = 0


class FastPath:
    """The Starlette app, with the three POST routes dispatched before its middleware.

    ``POST /endpoints/{name}/<route>`` goes straight to its handler (a Starlette ``Request`` in,
    a Starlette ``Response`` out): the handlers catch every error themselves, so Starlette's
    error middleware and router add nothing there but a few layers of calls per request and
    per ``send`` (about a tenth of the gateway's own CPU per request, bench/gateway.py).
    Everything else — other methods and paths, lifespan — is the Starlette app's.
    """

    def __init__(
        self,
        app: Starlette,
        posts: Mapping[str, Callable[[Request], Awaitable[Response]]],
        busy: Busy,
    ):
        self.app = app
        self.posts = posts
        self.busy = busy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/endpoints/"):
                name, _, rest = path[11:].partition("/")
                handler = self.posts.get(rest)
                if handler is not None and name:
                    scope["path_params"] = {"name": name}
                    self.busy.inflight += 1
                    try:
                        response = await handler(Request(scope, receive))
                        await response(scope, receive, send)
                    finally:
                        self.busy.inflight -= 1
                    return
        await self.app(scope, receive, send)


@dataclass(slots=True)
class Call:
    """One request in flight."""

    request_id: str
    t0: float
    ts: float
    view: EndpointView | None = None
    role: Role = Role.STABLE
    loaded: Loaded | None = None
    key: str | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"x-request-id", self.request_id.encode())]
        if self.loaded is not None:
            out.append((b"x-mlx-variant", self.role.value.encode()))
            out.append((b"x-mlx-version", self.loaded.version.encode()))
        return out

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0


def request_id(given: str | None) -> str:
    if given is not None and _RID.match(given):
        return given
    return secrets.token_hex(16)


def error_payload(family: str, status: int, message: str, extra: dict[str, Any]) -> dict[str, Any]:
    """MLflow's error shape for invocations, OpenAI's for everything else."""
    code = CODES.get(status, "ERROR")
    if family == "mlflow":
        return {"error_code": code, "message": message, **extra}
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "code": code.lower(), **extra}}


def new_call(request: Request) -> Call:
    return Call(request_id(request.headers.get("x-request-id")), time.perf_counter(), time.time())
