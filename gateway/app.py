"""The gateway's routes (SPEC.md, "Gateway routes (fixed)") on Starlette.

========================================  ================================================
``POST /endpoints/{name}/invocations``    models: MLflow scoring JSON → ``{"predictions"}``
``POST /endpoints/{name}/v1/chat/…``      prompts: OpenAI chat completions (``variables``)
``POST /endpoints/{name}/feedback``       ``{"request_id", "label"|"outcome"|"value"}``
``POST /v1/chat/completions``             prompts, one base URL: ``model`` names the endpoint
``GET /v1/models``, ``/v1/models/{m}``    the prompt endpoints, as OpenAI lists models
``GET /healthz``, ``GET /readyz``         liveness + variant and log health; readiness
``GET /metrics``                          Prometheus text
``POST /invocations``                     the one model endpoint (or ``--default-endpoint``)
``GET /ping``, ``/health``, ``/version``  MLflow's scoring server: readiness; mlx's version
``/v2/…``                                 models: KServe's Open Inference Protocol (``v2``)
========================================  ================================================

A path with a trailing slash is routed as the path without it (``FastPath``): Starlette's
default, a 307 redirect, loses a POST's body with most clients.

The request path: check the bearer token, read the served snapshot (one attribute), pick the
variant (a hash), read the body within the endpoint's size limit, answer — predicting in a
worker thread, or calling the LLM upstream — and only then, after the answer has been handed
to the server, build the log record (``LogWriter.submit``: O(1)), count metrics and start the
shadow copy. Every answer carries ``x-request-id`` (the caller's, if sent and sane), and
every answer a variant gave (its errors included) ``x-mlx-variant`` (the role) and
``x-mlx-version``. Errors are one line, never a traceback: invocations answer MLflow's shape
``{"error_code", "message"}``, chat completions OpenAI's ``{"error": {"message", "type",
"code"}}``.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from gateway.http import FastPath
from gateway.invocations import ModelRoutes
from gateway.openai_root import OpenAIRoutes
from gateway.v2 import V2Routes


class Gateway(V2Routes, ModelRoutes, OpenAIRoutes):
    """The whole gateway: ``app()`` is the ASGI application ``gateway.server`` runs."""

    def app(self, lifespan: Any = None) -> FastPath:
        routes = [
            Route("/endpoints/{name}/invocations", self.invocations, methods=["POST"]),
            Route("/endpoints/{name}/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/endpoints/{name}/feedback", self.feedback, methods=["POST"]),
            Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
            Route("/v1/models", self.openai_models, methods=["GET"]),
            Route("/v1/models/{model}", self.openai_model, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_route, methods=["GET"]),
            Route("/invocations", self.root_invocations, methods=["POST"]),
            Route("/ping", self.ping, methods=["GET"]),
            Route("/health", self.ping, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
            *self.v2_routes(),  # KServe's Open Inference Protocol (gateway.v2)
        ]
        app = Starlette(
            routes=routes,
            exception_handlers={404: self.no_route, 405: self.no_route},
            lifespan=lifespan,
        )
        app.router.redirect_slashes = False  # FastPath routes "/x/" as "/x"
        posts = {
            "invocations": self.invocations,
            "v1/chat/completions": self.chat,
            "feedback": self.feedback,
            "/v1/chat/completions": self.openai_chat,  # a whole path (FastPath)
        }
        return FastPath(app, posts, self.busy, self.before_send)
