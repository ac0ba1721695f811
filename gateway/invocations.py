"""``POST /endpoints/{name}/invocations``: a model endpoint's predictions, and its shadows.

The body is ``application/json`` (MLflow's scoring-server JSON; a request without a
``Content-Type`` is read as JSON, as MLflow's server does) or ``text/csv`` (a header row, then
rows); anything else is a 415 naming the two. It is read within the endpoint's size limit and
handed, as bytes, to a pool thread that decodes, checks and predicts
(``gateway.models.predict_body``): the event loop never parses a frame or runs a model.

What fails is answered by whose failure it is: a request the version's input schema refuses
is a 400 (the caller's); an exception the model raises on a request that passed it is a 500
``MODEL_ERROR`` of the variant that answered — its record says so, with the exception's text,
which the caller's answer leaves out.

A mirrored request's copy goes, after the answer, to the low-priority shadow worker
(``gateway.shadow.ShadowProcess``), whose answer comes back as a record under variant
``shadow``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from contract import Role
from dataplane.route import Kind
from gateway.control import EndpointView, Loaded, Snapshot
from gateway.core import GatewayCore
from gateway.http import Answer, Call, Fail, new_call
from gateway.inputs import InputError
from gateway.models import Media, ModelFailure, Servable, SklearnModel, predict_body
from gateway.pool import Expired
from gateway.records import keeps_payloads, known_fields
from gateway.routing import key_hash

log = logging.getLogger("mlx.gateway")

#: the ``mlx_code`` of a model's own failure (the caller's request passed its schema); its
#: ``error_code`` is MLflow's ``INTERNAL_ERROR``
MODEL_ERROR = "MODEL_ERROR"
ACCEPTED = (Media.JSON.value, Media.CSV.value)


def media_type(header: str | None) -> Media:
    """What the body is: JSON (also with no ``Content-Type``, as MLflow's server takes it)
    or CSV, in UTF-8; anything else is a 415 naming what is taken (MLflow's scoring server
    refuses another charset, and parameters other than ``charset``, the same way)."""
    if header is None:
        return Media.JSON
    value, *parameters = (part.strip() for part in header.split(";"))
    value = value.lower()
    media = {"": Media.JSON, Media.JSON.value: Media.JSON, Media.CSV.value: Media.CSV}.get(value)
    if media is None:
        raise _unsupported(f"Content-Type {value!r} is not taken here")
    for parameter in parameters:
        key, _, given = parameter.partition("=")
        key, given = key.strip().lower(), given.strip().strip('"').lower()
        if key == "charset" and given not in ("utf-8", "utf8"):
            raise _unsupported(f"charset {given!r} is not taken here (only UTF-8)")
        if key not in ("charset", ""):
            raise _unsupported(f"the Content-Type parameter {key!r} is not taken here")
    return media


def _unsupported(what: str) -> Fail:
    return Fail(
        415, f"{what}: send {' or '.join(ACCEPTED)} (UTF-8)", extra={"accepted": list(ACCEPTED)}
    )


class ModelErrorLog:
    """Models' own failures on stderr: one line per endpoint and version at most every
    ``every_s`` seconds, with how many it left out (a failing candidate under load must not
    flood the server's log; every failure is in the inference log)."""

    def __init__(self, every_s: float = 10.0, clock: Any = time.monotonic):
        self.every_s, self.clock = every_s, clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def note(self, endpoint: str, version: str, detail: str) -> bool:
        """Log this failure unless one was logged lately; True if it was logged."""
        key, now = (endpoint, version), self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        held = self._held.pop(key, 0)
        self._last[key] = now
        more = f" (and {held} more since the last line)" if held else ""
        log.error("mlx serve: endpoint %s version %s: %s%s", endpoint, version, detail, more)
        return True


class ModelRoutes(GatewayCore):
    @functools.cached_property
    def model_errors(self) -> ModelErrorLog:
        return ModelErrorLog()

    async def startup(self) -> None:
        await super().startup()
        loop = asyncio.get_running_loop()

        def on_swap(snap: Snapshot) -> None:  # from the poller thread
            loop.call_soon_threadsafe(self._preload, snap)

        self.control.on_swap = on_swap
        self._preload(self.control.snapshot)

    def _preload(self, snapshot: Snapshot) -> None:
        """Have the shadow worker load every mirrored model candidate before copies arrive."""
        live = set()
        for view in snapshot.endpoints.values():
            c = view.candidate
            if view.mirror > 0 and c is not None and c.model is not None and c.artifact:
                self.model_shadows.preload(c)
                live.add(self.model_shadows.key(c))
        self.model_shadows.keep(live)

    async def _predict(
        self, call: Call, model: Servable, body: bytes, media: Media, timeout: float
    ) -> tuple[Any, list[Any]]:
        if self.batcher is not None and isinstance(model, SklearnModel) and model.batchable:
            return await self._predicted(
                call, timeout, self.batcher.run(timeout, model, body, media)
            )
        return await self._predicted(
            call, timeout, self.pool.run(timeout, predict_body, model, body, media)
        )

    async def _predicted(
        self, call: Call, timeout: float, work: Awaitable[tuple[Any, list[Any]]]
    ) -> tuple[Any, list[Any]]:
        """``work``'s ``(request document, predictions)``; a failure as the caller's answer
        (the seam ``gateway.v2`` predicts through too)."""
        try:
            return await work
        except Expired:
            raise Fail(504, f"the model did not answer within {timeout:g}s") from None
        except InputError as exc:
            raise Fail(400, str(exc)) from None
        except ModelFailure as exc:
            raise self._model_failed(call, exc) from None

    def _model_failed(self, call: Call, exc: ModelFailure) -> Fail:
        """The model's own failure: 500 ``MODEL_ERROR`` naming the endpoint and the version;
        its text goes to the record (and, now and then, stderr), not to the caller."""
        view, loaded = call.view, call.loaded
        name = view.name if view is not None else "?"
        version = loaded.version if loaded is not None else "?"
        self.model_errors.note(name, version, exc.detail)
        return Fail(
            500,
            f"endpoint {name!r} version {version}: {exc}",
            detail=exc.detail,
            extra={"mlx_code": MODEL_ERROR},  # error_code stays MLflow's INTERNAL_ERROR
        )

    # -- models ----------------------------------------------------------------------------
    async def invocations(self, request: Request) -> Response:
        call = new_call(request)
        try:
            self._authorize(request)
            view = self._endpoint(call, request.path_params["name"], Kind.MODEL)
            loaded = self._route(call, view, request.headers.get("x-mlx-key"))
            media = media_type(request.headers.get("content-type"))
            body = await self._body(request, view.route.max_body_bytes)
            assert loaded.model is not None
            doc, predictions = await self._predict(
                call, loaded.model, body, media, view.route.timeout_s
            )
            content = _answer(call, predictions, self._model_failed)
        except Fail as fail:
            return self._failed(call, fail, "mlflow")
        except Exception as exc:
            return self._crashed(call, exc, "mlflow")
        after = self._model_answered(
            call, view, loaded, doc, predictions, body if media is Media.JSON else None
        )
        return Answer(content, 200, call.headers(), after)

    def _model_answered(
        self,
        call: Call,
        view: EndpointView,
        loaded: Loaded,
        doc: Any,
        predictions: list[Any],
        body: bytes | None,
    ) -> Callable[[], None]:
        """The ``after`` hook of a model's answer: its record and its shadow copy (``body``:
        the request as MLflow JSON; None: ``doc`` encoded). ``gateway.v2`` answers with it."""
        latency = call.elapsed_ms()
        role = call.role.value
        kh = key_hash(call.key)
        shadow = self._shadow_of(view, call)

        def after() -> None:
            self._answered(
                view, call, role, loaded, 200, latency, key_hash=kh, inputs=doc, outputs=predictions
            )
            if shadow is not None and shadow.artifact:
                ts = time.time()
                ctx = (view, shadow, call, kh, doc, ts)
                # a busy gateway sheds its model shadows before they can cost a caller anything
                sent = self.busy.inflight <= self.shadow_when_busy and self.model_shadows.submit(
                    ctx,
                    shadow,
                    view.route.timeout_s,
                    body if body is not None else orjson.dumps(doc),  # the worker reads JSON
                    known_fields(
                        view,
                        self.workspace,
                        call.request_id,
                        ts,
                        shadow,
                        kh,
                        call.client_request_id,
                    ),
                    keeps_payloads(view, call.request_id),
                )
                self.metrics.shadowed(view.name, "sent" if sent else "dropped")

        return after

    async def root_invocations(self, request: Request) -> Response:
        """``POST /invocations`` (MLflow's scoring server, SageMaker's container): the model
        endpoint ``root_endpoint`` picks, answered as ``POST /endpoints/{name}/invocations``
        is — the same record, headers and errors."""
        self.busy.inflight += 1
        try:
            try:
                self._authorize(request)
                name = root_endpoint(self.control.snapshot, self.default_endpoint)
            except Fail as fail:
                call = new_call(request)
                if fail.status == 404:
                    self.metrics.refused("unknown_endpoint")
                return self._failed(call, fail, "mlflow")
            request.scope["path_params"] = {"name": name}
            response = await self.invocations(request)
            await self.before_send(request.scope, request.receive, response)
            return response
        finally:
            self.busy.inflight -= 1

    def _model_shadow_answer(self, ctx: Any, meta: dict[str, Any]) -> None:
        view, loaded, call, kh, doc, ts = ctx
        status = int(meta.get("status", 500))
        if meta.get("logged"):  # the worker wrote the record: only the metrics are left
            self.metrics.answered(view.name, Role.SHADOW.value, status, meta["latency_ms"] / 1e3)
            if meta.get("error") is not None:
                self.metrics.shadowed(view.name, "failed")
            return
        self._shadow_logged(
            view,
            loaded,
            call,
            ts,
            status,
            float(meta.get("latency_ms") or 0.0),
            kh,
            meta.get("error"),
            doc,
            meta.get("outputs"),
        )

    def _model_shadow_dropped(self, ctx: Any, reason: str) -> None:
        view = ctx[0]
        self.metrics.shadowed(view.name, "dropped")
        if reason.startswith("load failed"):
            log.warning("mlx serve: %s: shadow copy dropped: %s", view.name, reason)


def root_endpoint(snapshot: Snapshot, default: str | None) -> str:
    """The endpoint ``POST /invocations`` is for: ``default`` (``--default-endpoint``), else
    the one model endpoint served (an endpoint whose route failed counts: its kind is not
    known). None served is a 404, several a 400; both name the endpoints and the route that
    picks one."""
    if default is not None:
        return default
    models = [n for n, v in snapshot.endpoints.items() if v.route.kind is Kind.MODEL]
    names = sorted({*models, *snapshot.broken})
    if len(names) == 1:
        return names[0]
    if not names:
        served = snapshot.names()
        others = f" (served: {', '.join(served)})" if served else ""
        raise Fail(
            404,
            f"no model endpoint is served here{others}: POST /invocations needs one",
            logged=False,
            extra={"endpoints": []},
        )
    raise Fail(
        400,
        f"POST /invocations cannot tell which endpoint to ask: {len(names)} are served "
        f"({', '.join(names)}); POST /endpoints/{{name}}/invocations (e.g. "
        f"/endpoints/{names[0]}/invocations), or start mlx serve --default-endpoint NAME",
        logged=False,
        extra={"endpoints": names},
    )


def _answer(call: Call, predictions: list[Any], failed: Any) -> bytes:
    """The answer's body; predictions that are no JSON are the model's failure."""
    try:
        return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise failed(call, ModelFailure.of(exc)) from None
