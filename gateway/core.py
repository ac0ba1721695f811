"""What every route of the gateway shares: its parts, the common steps, health and metrics.

``GatewayCore`` holds the served snapshot (``control``), the log writer, the metrics, the
prediction pool, the shadow runners and the upstream HTTP clients; the route mixins
(``gateway.invocations``, ``gateway.chat``) add the endpoint routes, ``gateway.app`` puts
them together.

The request's life, as the log tells it: a request is the caller's from the moment it is
routed. Its record's ``status`` is what the caller got — except 499, the caller's own failure:
it hung up while sending its body or before its answer could be sent, or sent its body too
slowly (answered 408, logged 499). A 499 is never an error of the variant that was asked
(``inference.query``: neither a server nor a client error, and not a request its rates
count). Its ``request_id`` is the caller's ``x-request-id`` unless this process already
answered under that id (``gateway.ids``): then a fresh one, returned in ``x-request-id``,
with the caller's kept as ``client_request_id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from contract import Role
from dataplane.route import Kind
from gateway import cache as cache_mod
from gateway import llm
from gateway.auth import Bearer
from gateway.batching import DEFAULT_MAX_REQUESTS, Batcher
from gateway.control import Control, EndpointView, Loaded
from gateway.durable import Durability, LogWaits
from gateway.http import (
    CALL_KEY,
    CALLER_GONE,
    ROUTES,
    Answer,
    Busy,
    Call,
    Fail,
    error_payload,
    hung_up,
    internal_error,
    logged_status,
    new_call,
    new_request_id,
    read_body,
    request_id,
    unauthorized,
)
from gateway.ids import DEFAULT_CAPACITY, RecentIds
from gateway.inputs import InputError
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.models import decode, one_line
from gateway.pool import DaemonPool
from gateway.records import record
from gateway.routing import choose, key_hash, mirrored
from gateway.shadow import ShadowProcess, Shadows
from inference.records import Feedback, FeedbackError
from inference.writer import LogWriter

log = logging.getLogger("mlx.gateway")

#: Seconds a caller has to send a request's whole body, from its headers (``mlx serve
#: --body-timeout``): past it the request is answered 408 and logged 499.
DEFAULT_BODY_TIMEOUT_S = 30.0


class GatewayCore:
    """The gateway's parts and common steps (the route mixins subclass it)."""

    def __init__(
        self,
        control: Control,
        writer: LogWriter,
        workspace: str,
        bearer: Bearer,
        *,
        predict_workers: int = 4,
        max_batch: int = DEFAULT_MAX_REQUESTS,
        shadow_limit: int = 64,
        shadow_when_busy: int = 1,
        cache_entries: int = cache_mod.DEFAULT_MAX_ENTRIES,
        log_url: str | None = None,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        durability: Durability = Durability.BATCHED,
        log_waits: LogWaits | None = None,
        recent_ids: int = DEFAULT_CAPACITY,
        default_endpoint: str | None = None,
    ):
        self.control = control
        #: the model endpoint ``POST /invocations`` answers for (``mlx serve
        #: --default-endpoint``); None: the only one served
        self.default_endpoint = default_endpoint
        self.writer = writer
        self.workspace = workspace
        self.bearer = bearer
        self.body_timeout_s = body_timeout_s
        #: ``--log-durability sync``: answers wait for their records (``writer`` must be eager
        #: and report to these waits: ``gateway.server`` builds them together)
        self.log_waits = log_waits if durability is Durability.SYNC else None
        self.recent = RecentIds(recent_ids)
        self.metrics = Metrics(writer.stats, lambda: control.snapshot, writer.health)
        self.pool = DaemonPool(predict_workers, "mlx-predict")
        self.batcher = Batcher(self.pool, max_batch) if max_batch > 1 else None
        self.metrics.watch_batches(self.batcher.counts if self.batcher else lambda: (0, 0))
        self.shadows = Shadows(shadow_limit, self.metrics.shadowed)  # prompt shadows
        #: model shadow copies are sent only while at most this many requests (the one just
        #: answered included) are being answered: under load, shadows are shed first
        self.shadow_when_busy = shadow_when_busy
        self.busy = Busy()
        self.model_shadows = ShadowProcess(
            shadow_limit, self._model_shadow_answer, self._model_shadow_dropped, log_url
        )
        self.cache = cache_mod.ResponseCache(cache_entries)
        self.http: Any = None
        self.shadow_http: Any = None

    def _model_shadow_answer(self, ctx: Any, meta: dict[str, Any]) -> None:
        raise NotImplementedError  # gateway.invocations.ModelRoutes

    def _model_shadow_dropped(self, ctx: Any, reason: str) -> None:
        raise NotImplementedError  # gateway.invocations.ModelRoutes

    # -- lifecycle -----------------------------------------------------------------------
    async def startup(self) -> None:
        self.http = llm.new_client()
        self.shadow_http = llm.new_client(64)
        if self.log_waits is not None:
            self.log_waits.start(asyncio.get_running_loop())

    async def shutdown(self, drain_s: float = 10.0) -> None:
        """After the server stopped taking requests: let shadows finish, close the upstreams."""
        await asyncio.gather(self.shadows.drain(drain_s), self.model_shadows.close(drain_s))
        for client in (self.http, self.shadow_http):
            if client is not None:
                await client.aclose()
        self.pool.shutdown()

    # -- the common steps ------------------------------------------------------------------
    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not self.bearer.allows(header):
            self.metrics.refused("unauthorized")
            raise unauthorized("missing or wrong bearer token (Authorization: Bearer …)", header)

    def _endpoint(self, call: Call, name: str, kind: Kind) -> EndpointView:
        snap = self.control.snapshot
        view = snap.endpoints.get(name)
        if view is None:
            broken = snap.broken.get(name)
            if broken is not None:
                raise Fail(503, f"endpoint {name!r} cannot be served: {broken.error}", logged=False)
            self.metrics.refused("unknown_endpoint")
            names = snap.names()
            listed = ", ".join(names) if names else "none yet (nothing applied)"
            raise Fail(
                404,
                f"unknown endpoint {name!r}{_did_you_mean(name, names)}; endpoints: {listed}",
                logged=False,
                extra={"endpoints": names},
            )
        if view.route.kind is not kind:
            self.metrics.refused("wrong_route")
            right = "invocations" if view.route.kind is Kind.MODEL else "v1/chat/completions"
            raise Fail(
                404,
                f"endpoint {name!r} serves a {view.route.kind.value}: "
                f"POST /endpoints/{name}/{right}",
                logged=False,
            )
        call.view = view
        self._claim_id(call, view.name)
        return view

    def _claim_id(self, call: Call, endpoint: str) -> None:
        """The request is the endpoint's from here on: its id must be one this process has not
        answered under (SPEC.md: a reused ``x-request-id`` is logged under a fresh id)."""
        if self.recent.claim(endpoint, call.request_id):
            return
        call.client_request_id = call.request_id
        call.request_id = new_request_id()
        self.recent.claim(endpoint, call.request_id)

    @staticmethod
    def _shadow_of(view: EndpointView, call: Call) -> Loaded | None:
        """The candidate a stable answer is mirrored to (``mirror``: a hash of the request
        id), or None."""
        if call.role is not Role.STABLE or view.candidate is None:
            return None
        return view.candidate if mirrored(view.name, view.mirror, call.request_id) else None

    def _route(self, call: Call, view: EndpointView, key: str | None) -> Loaded:
        call.key = key
        role = choose(view.name, view.weight, key, call.request_id)
        loaded = view.candidate if role is Role.CANDIDATE else view.stable
        if loaded is None:
            call.loaded = None
            errors = (
                "; ".join(f"{h.name}: {h.error}" for h in view.health if h.error) or "none loaded"
            )
            raise Fail(503, f"endpoint {view.name!r} has no version that can serve ({errors})")
        call.role = role
        call.loaded = loaded
        return loaded

    async def _body(self, request: Request, limit: int) -> bytes:
        """The body, within ``limit`` bytes and ``body_timeout_s`` of the request's start:
        413 if larger, 408 (logged 499) if too slow, 499 if the caller hung up."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise Fail(413, f"the body is {int(length)} bytes; this endpoint takes at most {limit}")
        call: Call | None = request.scope.get(CALL_KEY)
        started = call.t0 if call is not None else time.perf_counter()
        return await read_body(request.receive, limit, self.body_timeout_s, started)

    def _failed(self, call: Call, fail: Fail, family: str) -> Answer:
        status = fail.status
        payload = error_payload(family, status, fail.message, fail.extra)
        headers = call.headers() + fail.headers
        view = call.view
        if not fail.logged or view is None:
            return Answer(orjson.dumps(payload), status, headers)
        latency = call.elapsed_ms()
        role = call.role.value
        logged_status = fail.record_status

        def after() -> None:
            self._answered(
                view,
                call,
                role,
                call.loaded,
                logged_status,
                latency,
                key_hash=key_hash(call.key),
                error=fail.logged_error,
            )

        return Answer(orjson.dumps(payload), status, headers, after)

    def _crashed(self, call: Call, exc: Exception, family: str) -> Answer:
        from starlette.requests import ClientDisconnect

        if isinstance(exc, ClientDisconnect):  # the caller's doing: no traceback, 499
            return self._failed(call, Fail(CALLER_GONE, "the caller hung up"), family)
        log.exception("mlx serve: request %s failed", call.request_id)
        endpoint = call.view.name if call.view is not None else None
        return self._failed(call, internal_error(endpoint, call.request_id, exc), family)

    async def before_send(self, scope: Any, receive: Any, response: Any) -> None:
        """Between an endpoint's answer being ready and being sent (``FastPath``): note a
        caller who has gone (its record says 499), and with ``--log-durability sync`` write the
        record first and wait until it is in the database."""
        call: Call | None = scope.get(CALL_KEY)
        if call is None or call.loaded is None:
            return
        if hung_up(receive):
            call.gone = True
        waits = self.log_waits
        if waits is None or not isinstance(response, Answer):
            return
        response.run_after()  # builds and queues the record now
        if call.log_seq:
            timeout = call.view.route.timeout_s if call.view is not None else 30.0
            if not await waits.wait(call.log_seq, timeout) and call.view is not None:
                self.metrics.unconfirmed(call.view.name)

    def _answered(
        self,
        view: EndpointView,
        call: Call,
        role: str,
        loaded: Loaded | None,
        status: int,
        latency: float,
        *,
        ts: float | None = None,
        model: str | None = None,
        ttft_ms: float | None = None,
        **fields: Any,
    ) -> None:
        """One answered request: its log record (``gateway.records.record``) and its metrics.
        ``ttft_ms``: the time to the first token of a streamed answer (None: not streamed).

        The caller's record (not a shadow's) says 499 when the caller had gone before its
        answer could be sent — unless the variant failed (5xx), which stays the variant's.
        ``model`` (the model that answered a prompt) marks an LLM answer: its tokens and cost
        are counted here, the one place every answered path — caller's, cached, shadow —
        passes through (``gateway.metrics``); so is ``ttft_ms``, a streamed answer's time to
        its first token."""
        at = call.ts if ts is None else ts
        caller = role != Role.SHADOW
        if caller and logged_status(status, call.gone) != status:
            status = CALLER_GONE
            fields["error"] = fields.get("error") or "the caller hung up before the answer was sent"
        rec = record(
            view,
            self.workspace,
            call.request_id,
            at,
            role,
            loaded,
            status,
            latency,
            client_request_id=call.client_request_id,
            ttft_ms=ttft_ms,
            model=model,
            **fields,
        )
        seq = self.writer.submit(rec)
        if caller:
            call.log_seq = seq
        self.metrics.answered(view.name, role, status, latency / 1000.0)
        if ttft_ms is not None:
            self.metrics.first_token(view.name, role, ttft_ms / 1000.0)
        tin, tout = fields.get("input_tokens"), fields.get("output_tokens")
        if model is not None or tin is not None or tout is not None:
            self.metrics.usage(view.name, role, model, tin, tout, fields.get("cost_usd"))

    def _shadow_logged(
        self,
        view: EndpointView,
        loaded: Loaded,
        call: Call,
        ts: float,
        status: int,
        latency: float,
        kh: str | None,
        error: str | None,
        inputs: Any,
        outputs: Any,
        **usage: Any,
    ) -> None:
        self._answered(
            view,
            call,
            Role.SHADOW.value,
            loaded,
            status,
            latency,
            ts=ts,
            key_hash=kh,
            error=error,
            inputs=inputs,
            outputs=outputs,
            **usage,
        )
        if error is not None:
            self.metrics.shadowed(view.name, "failed")

    # -- feedback, health, metrics -----------------------------------------------------------
    async def feedback(self, request: Request) -> Response:
        call = new_call(request)
        try:
            self._authorize(request)
            name = request.path_params["name"]
            snap = self.control.snapshot
            view = snap.endpoints.get(name)
            if view is None:
                self._endpoint(call, name, Kind.MODEL)  # raises the 404 / 503
                raise AssertionError("unreachable")  # pragma: no cover
            body = await self._body(request, view.route.max_body_bytes)
            try:
                fb = Feedback.from_body(name, decode(body), environment=self.workspace)
            except (InputError, FeedbackError) as exc:
                raise Fail(400, str(exc), logged=False) from None
            if not await self._was_answered(name, fb.request_id):
                raise Fail(
                    404,
                    f"endpoint {name!r} never answered a request with id {fb.request_id!r} "
                    "(feedback goes to the x-request-id its answer carried)",
                    logged=False,
                )
            if not self.writer.submit(fb):
                raise Fail(
                    503, "the inference log is not taking records (full or closing)", logged=False
                )
        except Fail as fail:
            return self._failed(call, fail, "plain")
        content = orjson.dumps({"accepted": True, "request_id": fb.request_id})
        return Answer(content, 200, call.headers())

    async def _was_answered(self, endpoint: str, rid: str) -> bool:
        """This process answered it lately (memory), or the log holds its record (the index on
        ``request_id``: older ids, and those other replicas answered)."""
        if self.recent.holds(endpoint, rid):
            return True
        store = self.writer.store
        try:
            return bool(
                await asyncio.get_running_loop().run_in_executor(
                    None, store.answered, endpoint, rid, self.workspace
                )
            )
        except Exception as exc:
            log.warning("mlx serve: feedback: cannot read the inference log: %s", one_line(exc))
            raise Fail(
                503, "cannot check the request id: the inference log cannot be read", logged=False
            ) from None

    async def healthz(self, request: Request) -> Response:
        snap = self.control.snapshot
        rid = request_id(request.headers.get("x-request-id"))
        log_health = self.writer.health()
        healthy = (
            all(v.healthy for v in snap.endpoints.values()) and not snap.broken and log_health.ok
        )
        doc: dict[str, Any] = {"status": "ok" if healthy else "degraded"}
        if self.bearer.allows(request.headers.get("authorization")):
            doc["endpoints"] = {name: _view_health(v) for name, v in sorted(snap.endpoints.items())}
            for name, b in snap.broken.items():
                doc["endpoints"][name] = {
                    "healthy": False,
                    "generation": b.generation,
                    "error": b.error,
                }
            stats = self.writer.stats()
            doc["log"] = {
                "state": log_health.state.value,
                **({"error": log_health.error} if log_health.error else {}),
                "accepted": stats.accepted,
                "written": stats.written,
                "dropped": stats.dropped,
                "pending": stats.pending,
                "lost": stats.lost,
            }
        return Answer(orjson.dumps(doc), 200, [(b"x-request-id", rid.encode())])

    async def readyz(self, request: Request) -> Response:
        """200 when every endpoint has a version serving and the log is being written; else
        503 (a load balancer takes the replica out). The reasons need the token, if any."""
        problems = self._not_ready()
        doc: dict[str, Any] = {"status": "not ready" if problems else "ready"}
        if problems and self.bearer.allows(request.headers.get("authorization")):
            doc["problems"] = problems
        rid = request_id(request.headers.get("x-request-id"))
        return Answer(
            orjson.dumps(doc), 503 if problems else 200, [(b"x-request-id", rid.encode())]
        )

    async def ping(self, request: Request) -> Response:
        """``GET /ping`` and ``GET /health`` (MLflow's scoring server, SageMaker's container
        contract): readiness, in MLflow's words — 200 with a body of one newline when every
        endpoint is loaded and the log is written (``_not_ready``); else 503 and ``/readyz``'s
        document (MLflow's server, which holds one loaded model, never says no)."""
        problems = self._not_ready()
        headers = [(b"x-request-id", request_id(request.headers.get("x-request-id")).encode())]
        if not problems:
            return Answer(b"\n", 200, headers)
        doc: dict[str, Any] = {"status": "not ready"}
        if self.bearer.allows(request.headers.get("authorization")):
            doc["problems"] = problems
        return Answer(orjson.dumps(doc), 503, headers)

    async def version(self, request: Request) -> Response:
        """``GET /version``: mlx's version as plain text (MLflow's server answers its own)."""
        rid = request_id(request.headers.get("x-request-id"))
        return Answer(
            mlx_version().encode(),
            200,
            [(b"x-request-id", rid.encode())],
            content_type=(b"content-type", b"text/plain; charset=utf-8"),
        )

    def _not_ready(self) -> list[str]:
        snap = self.control.snapshot
        problems = [
            f"endpoint {name!r}: no version loaded" for name, view in sorted(snap.endpoints.items())
            if view.stable is None
        ]  # fmt: skip
        problems += [f"endpoint {name!r}: {b.error}" for name, b in sorted(snap.broken.items())]
        problems += [
            f"endpoint {name!r}: loading its first version" for name in sorted(self.control.loading)
        ]
        health = self.writer.health()
        if not health.ok:
            problems.append(f"inference log {health.state.value}: {health.error}")
        return problems

    async def metrics_route(self, request: Request) -> Response:
        rid = request_id(request.headers.get("x-request-id"))
        header = request.headers.get("authorization")
        if not self.bearer.allows(header):
            self.metrics.refused("unauthorized")
            return self._failed(
                Call(rid, time.perf_counter(), time.time()),
                unauthorized("missing or wrong bearer token", header),
                "plain",
            )
        body = self.metrics.render()
        return Answer(
            body,
            200,
            [(b"x-request-id", rid.encode())],
            content_type=(b"content-type", CONTENT_TYPE.encode()),
        )

    async def no_route(self, request: Request, exc: Exception) -> Response:
        call = Call(
            request_id(request.headers.get("x-request-id")), time.perf_counter(), time.time()
        )
        header = request.headers.get("authorization")
        if not self.bearer.allows(header):
            self.metrics.refused("unauthorized")
            return self._failed(
                call, unauthorized("missing or wrong bearer token", header), "plain"
            )
        status = getattr(exc, "status_code", 404)
        self.metrics.refused("no_route")
        message = (
            f"no route {request.method} {request.url.path}; routes: {', '.join(ROUTES)}"
            if status == 404
            else f"{request.method} is not allowed on {request.url.path}; "
            f"routes: {', '.join(ROUTES)}"
        )
        family = "mlflow" if request.url.path.endswith("/invocations") else "plain"
        return self._failed(
            call, Fail(status, message, logged=False, extra={"routes": list(ROUTES)}), family
        )


def mlx_version() -> str:
    """The installed mlx's version (``mlxctl``'s distribution), or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlxctl")
    except PackageNotFoundError:
        return "unknown"


def _view_health(view: EndpointView) -> dict[str, Any]:
    return {
        "kind": view.route.kind.value,
        "healthy": view.healthy,
        "generation": view.generation,
        "serving": {
            "stable": view.stable.version if view.stable else None,
            "candidate": view.candidate.version if view.candidate else None,
            "weight": view.weight,
            "mirror": view.mirror,
        },
        "variants": {
            h.name: {
                "version": h.version,
                "role": h.role,
                "state": h.state.value,
                "serving": h.serving,
                **({"error": h.error} if h.error else {}),
            }
            for h in view.health
        },
        **({"problems": list(view.problems)} if view.problems else {}),
    }


def _did_you_mean(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
