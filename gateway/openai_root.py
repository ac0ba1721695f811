"""One OpenAI base URL for every prompt endpoint: ``<gateway>/v1``.

``POST /v1/chat/completions`` takes the body's ``model`` as the name of a prompt endpoint (as
LiteLLM's proxy and other OpenAI-compatible gateways do) and hands the request to that
endpoint's own route, ``POST /endpoints/{model}/v1/chat/completions`` (``ChatRoutes.chat``),
unchanged: the body read here is replayed to it, so everything that route does — routing,
rollouts, the cache, streaming, the log record — is the same whichever URL was called. The
upstream model is the prompt version's (``model`` is consumed as the endpoint's name, never
forwarded). ``GET /v1/models`` lists the prompt endpoints in OpenAI's shape, ``GET
/v1/models/{model}`` one of them.

Errors before the hand-over are OpenAI-shaped and not logged (no variant was asked): no
``model`` or one that is not a string is a 400; one that names no endpoint a 404 with
``code: model_not_found``, the prompt endpoints and a did-you-mean; a model endpoint a 400
naming its routes (``invocations``, V2 ``infer``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from dataplane.route import Kind, RouteDoc
from gateway.chat import ChatRoutes
from gateway.control import EndpointView, Snapshot
from gateway.core import _did_you_mean
from gateway.http import Answer, Fail, new_call
from gateway.inputs import InputError
from gateway.models import decode

#: ``owned_by`` of every listed endpoint: the route document does not carry the spec's owner.
OWNED_BY = "mlx"


class OpenAIRoutes(ChatRoutes):
    """The root OpenAI routes, on top of the per-endpoint chat route."""

    async def openai_chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``: the endpoint ``model`` names answers it."""
        call = new_call(request)
        try:
            self._authorize(request)
            self._takes_json(request)
            body = await self._body(request, _largest_body(self.control.snapshot))
            name = model_named(body)
            self._prompt_endpoint(name)
        except Fail as fail:
            return self._failed(call, fail, "openai")
        except Exception as exc:
            return self._crashed(call, exc, "openai")
        request.scope["path_params"] = {"name": name}
        return await self.chat(Request(request.scope, replay(body, request.receive)))

    async def openai_models(self, request: Request) -> Response:
        """``GET /v1/models``: the prompt endpoints, as OpenAI lists models."""
        call = new_call(request)
        try:
            self._authorize(request)
        except Fail as fail:
            return self._failed(call, fail, "openai")
        snap = self.control.snapshot
        data = [model_entry(view, snap) for view in _prompt_views(snap)]
        return Answer(orjson.dumps({"object": "list", "data": data}), 200, call.headers())

    async def openai_model(self, request: Request) -> Response:
        """``GET /v1/models/{model}``: one prompt endpoint, as OpenAI describes a model."""
        call = new_call(request)
        try:
            self._authorize(request)
            name = request.path_params["model"]
            view = self._prompt_endpoint(name)
        except Fail as fail:
            return self._failed(call, fail, "openai")
        entry = model_entry(view, self.control.snapshot)
        return Answer(orjson.dumps(entry), 200, call.headers())

    def _prompt_endpoint(self, name: str) -> EndpointView:
        """The prompt endpoint ``name``; ``Fail`` (not logged) if there is none to serve."""
        snap = self.control.snapshot
        view = snap.endpoints.get(name)
        if view is None:
            broken = snap.broken.get(name)
            if broken is not None:
                raise Fail(503, f"endpoint {name!r} cannot be served: {broken.error}", logged=False)
            self.metrics.refused("unknown_endpoint")
            raise unknown_model(name, [v.name for v in _prompt_views(snap)])
        if view.route.kind is not Kind.PROMPT:
            self.metrics.refused("wrong_route")
            raise Fail(
                400,
                f"model {name!r} is a model endpoint, not a prompt: it answers "
                f"POST /endpoints/{name}/invocations (MLflow scoring JSON) and "
                f"POST /v2/models/{name}/infer (Open Inference Protocol), not chat completions",
                logged=False,
                extra={"code": "model_not_chat", "param": "model"},
            )
        return view


def model_named(body: bytes) -> str:
    """The body's ``model``; ``Fail(400)`` naming what is wrong."""
    try:
        doc = decode(body)
    except InputError as exc:
        raise Fail(400, str(exc), logged=False) from None
    if not isinstance(doc, dict):
        raise Fail(
            400,
            "the body must be a JSON object (an OpenAI chat-completions request)",
            logged=False,
        )
    model = doc.get("model")
    if model is None or model == "":
        raise Fail(
            400,
            "`model` is required: it names the prompt endpoint to ask (GET /v1/models lists them)",
            logged=False,
            extra={"param": "model"},
        )
    if not isinstance(model, str):
        raise Fail(
            400,
            f"`model` must be a string (a prompt endpoint's name), got {type(model).__name__}",
            logged=False,
            extra={"param": "model"},
        )
    return model


def unknown_model(name: str, prompts: list[str]) -> Fail:
    """OpenAI's 404 for a model that does not exist (``code: model_not_found``)."""
    listed = ", ".join(prompts) if prompts else "none yet (nothing applied)"
    return Fail(
        404,
        f"the model {name!r} does not exist: `model` names a prompt endpoint"
        f"{_did_you_mean(name, prompts)}; prompt endpoints: {listed}",
        logged=False,
        extra={"code": "model_not_found", "param": "model", "endpoints": prompts},
    )


def model_entry(view: EndpointView, snap: Snapshot) -> dict[str, Any]:
    """An endpoint as OpenAI's model object. ``created``: when its stable version was deployed
    (the route's ``deployed_at``), else when this gateway loaded its routes."""
    return {
        "id": view.name,
        "object": "model",
        "created": _created(view) or int(snap.loaded_at),
        "owned_by": OWNED_BY,
    }


def _created(view: EndpointView) -> int | None:
    stable = view.route.variants.get(view.route.traffic.stable or "")
    stamp = stable.deployed_at if stable is not None else None
    if not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return None


def _prompt_views(snap: Snapshot) -> list[EndpointView]:
    return [v for _, v in sorted(snap.endpoints.items()) if v.route.kind is Kind.PROMPT]


def _largest_body(snap: Snapshot) -> int:
    """The most any prompt endpoint takes: the body is read before the endpoint is known; the
    endpoint's own route then holds it to its own limit (a 413 naming it)."""
    limits = [v.route.max_body_bytes for v in _prompt_views(snap)]
    return max(limits, default=RouteDoc.model_fields["max_body_bytes"].default)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (already read) first, then what ``receive`` gives (a
    caller's disconnect)."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
