"""What every route of the gateway shares: its parts, the common steps, health and metrics.

``GatewayCore`` holds the served snapshot (``control``), the log writer, the metrics, the
prediction pool, the shadow runners and the upstream HTTP clients; the route mixins
(``gateway.invocations``, ``gateway.chat``) add the endpoint routes, ``gateway.app`` puts
them together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway import cache as cache_mod
from gateway import llm
from gateway.auth import Bearer
from gateway.batching import DEFAULT_MAX_REQUESTS, Batcher
from gateway.config import Kind
from gateway.control import Control, EndpointView, Loaded
from gateway.http import ROUTES, Answer, Busy, Call, Fail, error_payload, new_call, request_id
from gateway.inputs import InputError
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.models import decode, one_line
from gateway.pool import DaemonPool
from gateway.records import record
from gateway.routing import Role, choose, key_hash
from gateway.shadow import ShadowProcess, Shadows
from inference.records import Feedback, FeedbackError
from inference.writer import LogWriter

log = logging.getLogger("mlx.gateway")


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
    ):
        self.control = control
        self.writer = writer
        self.workspace = workspace
        self.bearer = bearer
        self.metrics = Metrics(writer.stats, lambda: control.snapshot)
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

    async def shutdown(self, drain_s: float = 10.0) -> None:
        """After the server stopped taking requests: let shadows finish, close the upstreams."""
        await asyncio.gather(self.shadows.drain(drain_s), self.model_shadows.close(drain_s))
        for client in (self.http, self.shadow_http):
            if client is not None:
                await client.aclose()
        self.pool.shutdown()

    # -- the common steps ------------------------------------------------------------------
    def _authorize(self, request: Request) -> None:
        if not self.bearer.allows(request.headers.get("authorization")):
            self.metrics.refused("unauthorized")
            raise Fail(401, "missing or wrong bearer token (Authorization: Bearer …)", logged=False)

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
        return view

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
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise Fail(413, f"the body is {int(length)} bytes; this endpoint takes at most {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Fail(413, f"the body is over {limit} bytes, the most this endpoint takes")
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _failed(self, call: Call, fail: Fail, family: str) -> Answer:
        status = fail.status
        payload = error_payload(family, status, fail.message, fail.extra)
        headers = call.headers() + fail.headers
        view = call.view
        if not fail.logged or view is None:
            return Answer(orjson.dumps(payload), status, headers)
        latency = call.elapsed_ms()
        role = call.role.value

        def after() -> None:
            self._answered(
                view,
                call,
                role,
                call.loaded,
                status,
                latency,
                key_hash=key_hash(call.key),
                error=fail.logged_error,
            )

        return Answer(orjson.dumps(payload), status, headers, after)

    def _crashed(self, call: Call, exc: Exception, family: str) -> Answer:
        log.exception("mlx serve: request %s failed", call.request_id)
        return self._failed(call, Fail(500, f"internal error: {one_line(exc)}"), family)

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
        **fields: Any,
    ) -> None:
        """One answered request: its log record (``gateway.records.record``) and its metrics."""
        at = call.ts if ts is None else ts
        rec = record(
            view, self.workspace, call.request_id, at, role, loaded, status, latency, **fields
        )
        self.writer.submit(rec)
        self.metrics.answered(view.name, role, status, latency / 1000.0)

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
            if not self.writer.submit(fb):
                raise Fail(
                    503, "the inference log is not taking records (full or closing)", logged=False
                )
        except Fail as fail:
            return self._failed(call, fail, "plain")
        content = orjson.dumps({"accepted": True, "request_id": fb.request_id})
        return Answer(content, 200, call.headers())

    async def healthz(self, request: Request) -> Response:
        snap = self.control.snapshot
        rid = request_id(request.headers.get("x-request-id"))
        healthy = all(v.healthy for v in snap.endpoints.values()) and not snap.broken
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
                "accepted": stats.accepted,
                "written": stats.written,
                "dropped": stats.dropped,
                "pending": stats.pending,
                "lost": stats.lost,
            }
        return Answer(orjson.dumps(doc), 200, [(b"x-request-id", rid.encode())])

    async def metrics_route(self, request: Request) -> Response:
        rid = request_id(request.headers.get("x-request-id"))
        if not self.bearer.allows(request.headers.get("authorization")):
            self.metrics.refused("unauthorized")
            return self._failed(
                Call(rid, time.perf_counter(), time.time()),
                Fail(401, "missing or wrong bearer token", logged=False),
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
        if not self.bearer.allows(request.headers.get("authorization")):
            self.metrics.refused("unauthorized")
            return self._failed(
                call, Fail(401, "missing or wrong bearer token", logged=False), "plain"
            )
        status = getattr(exc, "status_code", 404)
        self.metrics.refused("no_route")
        message = (
            f"no route {request.method} {request.url.path}; routes: {', '.join(ROUTES)}"
            if status == 404
            else f"{request.method} is not allowed on {request.url.path}; "
            f"routes: {', '.join(ROUTES)}"
        )
        return self._failed(
            call, Fail(status, message, logged=False, extra={"routes": list(ROUTES)}), "plain"
        )


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
