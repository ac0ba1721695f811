"""HTTP pieces of the gateway's answers: errors, pre-encoded responses, request ids, dispatch.

``Answer`` is a pre-encoded JSON response whose ``after`` hook runs once the answer has been
handed to the server: the handlers build the log record, count metrics and start shadow
copies there, so none of it is between the caller and the answer. ``FastPath`` sends the
three endpoint POST routes straight to their handlers, routes a path with a trailing slash as
the path without it, and between answer and sending calls ``before_send`` (the gateway notes a
caller who hung up, ``Call.gone``: the record says 499, the caller's doing, never the
variant's).

``read_body`` reads a request body within a size limit and a deadline: a caller who hangs up
part-way is ``Fail(499)``, one too slow to send it is answered 408 and logged 499.
"""

from __future__ import annotations

import asyncio
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

from contract import Role
from gateway.control import EndpointView, Loaded
from inference.records import CALLER_GONE as _CALLER_GONE

log = logging.getLogger("mlx.gateway")

_RID = re.compile(r"^[\x21-\x7e]{1,200}$")
JSON_TYPE = (b"content-type", b"application/json")
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    499: "CLIENT_CLOSED_REQUEST",
    500: "INTERNAL_ERROR",
    502: "UPSTREAM_ERROR",
    503: "UNAVAILABLE",
    504: "TIMEOUT",
}
#: MLflow's ``ErrorCode`` name (``mlflow.protos.databricks_pb2``) of each status, for the
#: ``error_code`` of an MLflow-shaped error: a name MLflow's clients know, whose status in
#: MLflow's own table (``mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS``) is the one answered
#: where MLflow has one; where it has none (405, 408, 413, 415, 502) the nearest name of the
#: same class, so that ``RestException`` never turns a caller's error into a generic 500.
#: mlx's own code (``CODES``) goes beside it as ``mlx_code``.
MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "BAD_REQUEST",
    408: "BAD_REQUEST",
    409: "RESOURCE_CONFLICT",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    499: "CANCELLED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    502: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ROUTES = (
    "POST /endpoints/{name}/invocations",
    "POST /invocations",
    "POST /endpoints/{name}/v1/chat/completions",
    "POST /endpoints/{name}/feedback",
    "POST /v1/chat/completions",
    "GET /v1/models",
    "GET /v1/models/{model}",
    "GET /healthz",
    "GET /readyz",
    "GET /ping",
    "GET /health",
    "GET /version",
    "GET /metrics",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/ready",
    "POST /v2/models/{name}/infer",
)
#: The status a caller's own failure is logged with: it hung up, or was too slow to send its
#: body (nginx's 499). Never a server error nor a client error of the variant that was asked.
CALLER_GONE = _CALLER_GONE
#: Where ``new_call`` leaves the request's ``Call`` in the ASGI scope (``FastPath`` reads it).
CALL_KEY = "mlx.call"


class Fail(Exception):
    """An error answer; ``logged``: whether it is an inference-log record (a variant was asked);
    ``record_status``: the status the record gets when it is not the answer's (a body that came
    too slowly is answered 408 and logged 499: the caller's).

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
        record_status: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.logged = logged
        self.headers = headers or []
        self.extra = extra or {}
        self.detail = detail
        self.record_status = status if record_status is None else record_status

    @property
    def logged_error(self) -> str:
        """The record's ``error``."""
        return self.detail or self.message


def internal_error(endpoint: str | None, request_id: str, exc: BaseException) -> Fail:
    """A 500 for a failure in the gateway's own path. The exception's words often hold a path
    or an address: they go to the record's ``error`` (and stderr); the caller reads the
    endpoint and the request id to quote."""
    where = f"endpoint {endpoint!r}: " if endpoint else ""
    text = str(exc).strip().splitlines()
    words = f"{type(exc).__name__}: {text[0].strip()}" if text else type(exc).__name__
    return Fail(
        500,
        f"{where}internal error (request {request_id}; the gateway's log has the detail)",
        detail=f"internal error: {words}",
    )


def unauthorized(message: str, header: str | None) -> Fail:
    """A 401 with the challenge RFC 6750 asks for (``WWW-Authenticate: Bearer``)."""
    challenge = 'Bearer realm="mlx"'
    if header:  # credentials were sent, and they are not the token
        challenge += ', error="invalid_token"'
    return Fail(401, message, logged=False, headers=[(b"www-authenticate", challenge.encode())])


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

    def run_after(self) -> None:
        """Run the ``after`` hook now, before the answer is sent (and not again after it)."""
        after, self._after = self._after, None
        if after is not None:
            _run_hook(after)

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
                _run_hook(self._after)


def _run_hook(after: Callable[[], None]) -> None:
    try:
        after()
    except Exception:  # the log and the metrics must never break serving
        log.exception("mlx serve: after-answer hook failed")


class Busy:
    """How many endpoint requests are being answered now (their answer not yet sent)."""

    inflight = 0


class FastPath:
    """The Starlette app, with the endpoint POST routes dispatched before its middleware.

    ``POST /endpoints/{name}/<route>`` goes straight to its handler (a Starlette ``Request`` in,
    a Starlette ``Response`` out), and so does a POST to a whole path: a key of ``posts`` with a
    leading slash (``/v1/chat/completions``, the root OpenAI route) is that path. The handlers
    catch every error themselves, so Starlette's error middleware and router add nothing there
    but a few layers of calls per request and per ``send`` (about a tenth of the gateway's own
    CPU per request, bench/gateway.py).
    Everything else — other methods and paths, lifespan — is the Starlette app's.
    ``before_send`` runs between a handler's answer and its sending (``GatewayCore``: a caller
    who hung up, and the record written first with ``--log-durability sync``).
    """

    def __init__(
        self,
        app: Starlette,
        posts: Mapping[str, Callable[[Request], Awaitable[Response]]],
        busy: Busy,
        before_send: Callable[[Scope, Receive, Response], Awaitable[None]],
    ):
        self.app = app
        self.posts = {k: v for k, v in posts.items() if not k.startswith("/")}
        self.paths = {k: v for k, v in posts.items() if k.startswith("/")}
        self.busy = busy
        self.before_send = before_send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path[-1] == "/":
                path = _without_trailing_slash(scope)
            if scope["method"] == "POST":
                if path.startswith("/endpoints/"):
                    name, _, rest = path[11:].partition("/")
                    handler = self.posts.get(rest)
                    if handler is not None and name:
                        scope["path_params"] = {"name": name}
                        await self._answer(handler, scope, receive, send)
                        return
                else:
                    handler = self.paths.get(path)
                    if handler is not None:
                        scope["path_params"] = {}
                        await self._answer(handler, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _answer(
        self,
        handler: Callable[[Request], Awaitable[Response]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self.busy.inflight += 1
        try:
            response = await handler(Request(scope, receive))
            await self.before_send(scope, receive, response)
            await response(scope, receive, send)
        finally:
            self.busy.inflight -= 1


def _without_trailing_slash(scope: Scope) -> str:
    """Route ``/x/`` as ``/x`` (Starlette would answer a POST there with a 307 redirect, which
    most clients do not follow with the body). One slash is taken off, not more."""
    path: str = scope["path"][:-1]
    scope["path"] = path
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw.endswith(b"/"):
        scope["raw_path"] = raw[:-1]
    return path


def logged_status(status: int, gone: bool) -> int:
    """The status of a caller's record: 499 when the caller left before its answer could be
    sent (``Call.gone``) — unless the variant failed (5xx): that stays the variant's."""
    return CALLER_GONE if gone and status < 500 else status


def waiting_message(receive: Receive) -> dict[str, Any] | None:
    """The next ASGI message if the server has it now, else None — without waiting for it.

    The ``receive`` coroutine is run to its first suspension: a message the server holds (or
    ``http.disconnect``) comes back at once; one it would wait for means nothing has arrived,
    and the coroutine is closed, which withdraws it from the wait. Starlette's
    ``Request.is_disconnected`` does the same with an anyio cancel scope, at ~30 µs a call
    against ~2 µs here (measured under uvloop): this runs once per request.
    """
    step: Any = receive()  # a coroutine (typed as an Awaitable)
    try:
        step.send(None)
    except StopIteration as done:
        message: dict[str, Any] = done.value
        return message
    step.close()
    return None


def hung_up(receive: Receive) -> bool:
    """Whether the caller has gone (only asked once its body was read: else a body chunk the
    server holds would be taken and lost)."""
    message = waiting_message(receive)
    return message is not None and message.get("type") == "http.disconnect"


async def read_body(receive: Receive, limit: int, timeout_s: float, started: float) -> bytes:
    """The request body, at most ``limit`` bytes, all of it within ``timeout_s`` of ``started``
    (a ``time.perf_counter()``). What arrived with the headers is taken without a timer; only a
    body that has to be waited for runs under the deadline. A caller who hangs up is a
    ``Fail(499)``; one too slow is answered 408 (``connection: close``) and logged 499."""
    body = _Body(limit)
    while True:
        message = waiting_message(receive)
        if message is None:
            break
        if body.take(message):
            return body.bytes()
    remaining = timeout_s - (time.perf_counter() - started)
    try:
        async with asyncio.timeout(max(0.0, remaining)):
            while not body.take(await receive()):
                pass
    except TimeoutError:
        raise Fail(
            408,
            f"the body did not arrive within {timeout_s:g}s (sent {body.size} bytes so far)",
            headers=[(b"connection", b"close")],
            record_status=CALLER_GONE,
        ) from None
    return body.bytes()


class _Body:
    """The chunks of a body being read, within a size limit."""

    __slots__ = ("chunks", "limit", "size")

    def __init__(self, limit: int):
        self.chunks: list[bytes] = []
        self.limit = limit
        self.size = 0

    def take(self, message: Mapping[str, Any]) -> bool:
        """Add one ASGI message; True once the body is complete."""
        if message["type"] == "http.disconnect":
            raise Fail(
                CALLER_GONE, f"the caller hung up after sending {self.size} bytes of the body"
            )
        chunk: bytes = message.get("body", b"")
        if chunk:
            self.size += len(chunk)
            if self.size > self.limit:
                raise Fail(
                    413, f"the body is over {self.limit} bytes, the most this endpoint takes"
                )
            self.chunks.append(chunk)
        return not message.get("more_body", False)

    def bytes(self) -> bytes:
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


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
    #: the caller's ``x-request-id`` when it had already been used (the record's
    #: ``request_id`` is then a fresh one, returned in ``x-request-id``)
    client_request_id: str | None = None
    #: the caller hung up before its answer could be sent (``FastPath``)
    gone: bool = False
    #: the log writer's sequence number of this request's record (0: not queued yet)
    log_seq: int = 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"x-request-id", self.request_id.encode())]
        if self.loaded is not None:
            out.append((b"x-mlx-variant", self.role.value.encode()))
            out.append((b"x-mlx-version", self.loaded.version.encode()))
        return out

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0


def request_id(given: str | None) -> str:
    """The caller's id if it is sane (1-200 visible ASCII characters), else a new one."""
    if given is not None and _RID.match(given):
        return given
    return new_request_id()


def new_request_id() -> str:
    """32 hex digits: the time in milliseconds (12), then 80 random bits (as UUIDv7 lays them
    out). Ids the gateway makes sort by time, so the log's index on ``request_id`` takes them
    at its end instead of at random places (inference.schema)."""
    return f"{int(time.time() * 1000) & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(10)}"


def error_payload(family: str, status: int, message: str, extra: dict[str, Any]) -> dict[str, Any]:
    """MLflow's error shape for invocations (``error_code``: MLflow's name, ``MLFLOW_CODES``;
    ``mlx_code``: mlx's, which ``extra`` may make more precise, e.g. ``MODEL_ERROR``), the Open
    Inference Protocol's (``{"error"}``) for ``/v2``, OpenAI's for everything else."""
    if family == "oip":
        return {"error": message, **extra}
    code = CODES.get(status, "ERROR")
    if family == "mlflow":
        mlflow_code = MLFLOW_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
        return {"error_code": mlflow_code, "message": message, "mlx_code": code, **extra}
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "code": code.lower(), **extra}}


def new_call(request: Request) -> Call:
    """The request's ``Call``, also left in its scope for ``FastPath``.

    A request one route hands to another (``gateway.openai_root``: the root chat route reads
    the body, then the endpoint's route answers) is the same request: it keeps the id and the
    start time of the ``Call`` already in its scope, so its latency counts the body's reading."""
    prior: Call | None = request.scope.get(CALL_KEY)
    if prior is not None:
        call = Call(prior.request_id, prior.t0, prior.ts)
    else:
        rid = request_id(request.headers.get("x-request-id"))
        call = Call(rid, time.perf_counter(), time.time())
    request.scope[CALL_KEY] = call
    return call
