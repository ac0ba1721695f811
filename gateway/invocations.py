"""``POST /endpoints/{name}/invocations``: a model endpoint's predictions, and its shadows.

The body is read within the endpoint's size limit and handed, as bytes, to a pool thread that
decodes, checks and predicts (``gateway.models.predict_body``): the event loop never parses a
frame or runs a model. A mirrored request's copy goes, after the answer, to the low-priority
shadow worker (``gateway.shadow.ShadowProcess``), whose answer comes back as a record under
variant ``shadow``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.config import Kind
from gateway.control import Snapshot
from gateway.core import GatewayCore
from gateway.http import Answer, Fail, new_call
from gateway.inputs import InputError
from gateway.models import ModelFailure, Servable, SklearnModel, predict_body
from gateway.pool import Expired
from gateway.records import keeps_payloads, known_fields
from gateway.routing import Role, key_hash, mirrored

log = logging.getLogger("mlx.gateway")


class ModelRoutes(GatewayCore):
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
                self.model_shadows.preload(c.flavor, c.artifact, c.fingerprint)
                live.add(self.model_shadows.key(c.flavor, c.artifact, c.fingerprint))
        self.model_shadows.keep(live)

    async def _predict(self, model: Servable, body: bytes, timeout: float) -> tuple[Any, list[Any]]:
        try:
            if self.batcher is not None and isinstance(model, SklearnModel) and model.batchable:
                return await self.batcher.run(timeout, model, body)
            result: tuple[Any, list[Any]] = await self.pool.run(timeout, predict_body, model, body)
            return result
        except Expired:
            raise Fail(504, f"the model did not answer within {timeout:g}s") from None
        except InputError as exc:
            raise Fail(400, str(exc)) from None
        except ModelFailure as exc:
            raise Fail(500, str(exc)) from None

    # -- models ----------------------------------------------------------------------------
    async def invocations(self, request: Request) -> Response:
        call = new_call(request)
        try:
            self._authorize(request)
            view = self._endpoint(call, request.path_params["name"], Kind.MODEL)
            loaded = self._route(call, view, request.headers.get("x-mlx-key"))
            body = await self._body(request, view.route.max_body_bytes)
            assert loaded.model is not None
            doc, predictions = await self._predict(loaded.model, body, view.route.timeout_s)
            content = orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
        except Fail as fail:
            return self._failed(call, fail, "mlflow")
        except Exception as exc:
            return self._crashed(call, exc, "mlflow")
        latency = call.elapsed_ms()
        role = call.role.value
        kh = key_hash(call.key)
        shadow = (
            view.candidate
            if call.role is Role.STABLE
            and view.candidate is not None
            and mirrored(view.name, view.mirror, call.request_id)
            else None
        )

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
                    shadow.flavor,
                    shadow.artifact,
                    shadow.fingerprint,
                    view.route.timeout_s,
                    body,
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

        return Answer(content, 200, call.headers(), after)

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
