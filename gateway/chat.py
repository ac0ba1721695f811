"""``POST /endpoints/{name}/v1/chat/completions``: a prompt endpoint, OpenAI-compatible.

Render the variant's prompt with the caller's ``variables`` (``gateway.prompts``), answer from
the response cache when it can, else call the LLM upstream (``gateway.llm``); after the
answer, price it (``common.pricing``), log it, and start the shadow copy as a detached task.
With ``stream: true`` the answer is server-sent events (``gateway.streaming``): the same
steps, the record written when the stream ended; a cache hit is replayed as a stream, and a
completed stream is cached as a whole answer. The shadow copy of a streamed request is a
whole (not streamed) call: nobody reads it as it comes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from common import pricing
from contract import Role
from dataplane.route import Kind
from gateway import cache as cache_mod
from gateway import llm, streaming
from gateway.control import EndpointView, Loaded
from gateway.core import GatewayCore
from gateway.http import Answer, Call, Fail, error_payload, new_call
from gateway.inputs import InputError
from gateway.models import decode, one_line
from gateway.prompts import Prepared
from gateway.retry_advice import NO_RETRY, caller_should_not_retry
from gateway.routing import key_hash

log = logging.getLogger("mlx.gateway")


class ChatRoutes(GatewayCore):
    # -- prompts ---------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        call = new_call(request)
        try:
            self._authorize(request)
            view = self._endpoint(call, request.path_params["name"], Kind.PROMPT)
            self._takes_json(request)
            if view.refusal is not None:
                self.metrics.refused("upstream_key")
                raise Fail(503, view.refusal, logged=False)
            header_key = request.headers.get("x-mlx-key")
            self._route(call, view, header_key)
            body = await self._body(request, view.route.max_body_bytes)
            try:
                doc = decode(body)
            except InputError as exc:
                raise Fail(400, str(exc)) from None
            user = doc.get("user") if isinstance(doc, dict) else None
            if header_key is None and isinstance(user, str):
                self._route(call, view, user)
            loaded = call.loaded
            assert loaded is not None and loaded.prompt is not None
            try:
                prepared = loaded.prompt.prepare(doc)
            except InputError as exc:
                raise Fail(400, str(exc)) from None
            cache_key = None
            entry = None
            ttl = view.route.cache.ttl_s if view.route.cache is not None else None
            if ttl is not None:
                cache_key = cache_mod.key(view.name, loaded.name, loaded.fingerprint, prepared.body)
                entry = self.cache.get(cache_key)
                self.metrics.cache(view.name, entry is not None)
            if prepared.stream:
                return await self._streamed(view, call, loaded, doc, prepared, entry, cache_key)
            tin: int | None
            tout: int | None
            used = pricing.Usage()
            if entry is not None:
                content, model_used = entry.body, entry.model
                tin, tout, outputs, hit = 0, 0, entry.outputs, True
            else:
                answer = await self._upstream(view, call, prepared.body, self.http)
                content, model_used = answer.raw, answer.model or prepared.model
                used = answer.tokens
                tin, tout = used.input_tokens, used.output_tokens
                outputs, hit = _contents(answer.data), False
                if cache_key is not None and ttl is not None:
                    self.cache.put(cache_key, ttl, content, model_used, tin, tout, outputs)
        except Fail as fail:
            return self._failed(call, fail, "openai")
        except Exception as exc:
            return self._crashed(call, exc, "openai")
        latency = call.elapsed_ms()
        role = call.role.value
        kh = key_hash(call.key)
        inputs = _chat_inputs(doc)
        shadow = self._shadow_of(view, call)
        requested = prepared.model

        def after() -> None:
            priced = (
                pricing.CACHED
                if hit
                else pricing.price(view.route.pricing, requested, model_used, used, call.ts)
            )
            self._answered(
                view,
                call,
                role,
                loaded,
                200,
                latency,
                key_hash=kh,
                inputs=inputs,
                outputs=outputs,
                input_tokens=tin,
                output_tokens=tout,
                cached_input_tokens=used.cached_input_tokens,
                cache_hit=hit,
                model=model_used,
                requested_model=requested,
                **priced.fields(),
            )
            if shadow is not None:
                self.shadows.spawn(
                    view.name, lambda: self._shadow_prompt(view, shadow, doc, call, kh)
                )

        return Answer(content, 200, call.headers(), after)

    def _takes_json(self, request: Request) -> None:
        """415 for a body that says it is not JSON. No ``content-type`` at all is read as JSON
        (curl's ``-d`` aside, every OpenAI client sends ``application/json``)."""
        given = request.headers.get("content-type")
        if given is None:
            return
        media = given.split(";", 1)[0].strip().lower()
        if media != "application/json":
            self.metrics.refused("unsupported_media_type")
            raise Fail(
                415,
                f"content type {given!r} is not supported: a chat completion is "
                "application/json (an OpenAI chat-completions request)",
                logged=False,
            )

    async def _upstream(
        self, view: EndpointView, call: Call, body: dict[str, Any], http: Any
    ) -> llm.Answer:
        """The upstream's answer; ``Fail`` if it failed for good. The caller is told the
        endpoint and the kind of failure; the record's ``error`` and stderr get the detail
        (the upstream's URL, the transport error, what the upstream wrote)."""
        client = view.route.client
        if client is None:
            raise Fail(502, f"endpoint {view.name!r} has no LLM upstream (client) in its route")
        try:
            answer = await llm.chat(http, client.base_url, view.api_key, body, **_policy(view))
        except llm.UpstreamError as exc:
            raise self._upstream_failure(view, call, exc) from None
        self.metrics.retried(view.name, answer.attempts - 1)
        return answer

    def _upstream_failure(self, view: EndpointView, call: Call, exc: llm.UpstreamError) -> Fail:
        """The answer to an upstream call that failed for good (streamed or not)."""
        self.metrics.upstream_failed(view.name, call.role.value, exc.status, exc.upstream_status)
        self.metrics.retried(view.name, exc.attempts - 1)
        log.warning(
            "mlx serve: endpoint %s (%s, request %s): %s",
            view.name,
            call.role.value,
            call.request_id,
            exc,
        )
        headers = []
        if exc.status == 429 and exc.retry_after is not None:
            headers.append((b"retry-after", f"{exc.retry_after:g}".encode()))
        client = view.route.client
        retries = client.retries if client is not None else 0
        if caller_should_not_retry(exc.status, exc.attempts, retries, exc.upstream_status):
            headers.append(NO_RETRY)
        public = f"endpoint {view.name!r}: {exc.public}"
        return Fail(exc.status, public, headers=headers, detail=str(exc))

    # -- streamed answers --------------------------------------------------------------------
    async def _streamed(
        self,
        view: EndpointView,
        call: Call,
        loaded: Loaded,
        doc: Any,
        prepared: Prepared,
        entry: cache_mod.Entry | None,
        cache_key: str | None,
    ) -> Response:
        """The streamed answer: the cache's entry replayed, or the upstream's events passed on.
        A failure to open the upstream is a ``Fail`` (a JSON error answer)."""
        aclose = None
        if entry is not None:
            source = streaming.listed(streaming.replay(entry.body, prepared.include_usage))
        else:
            client = view.route.client
            if client is None:
                raise Fail(502, f"endpoint {view.name!r} has no LLM upstream (client) in its route")
            try:
                opened = await llm.stream(
                    self.http, client.base_url, view.api_key, prepared.upstream, **_policy(view)
                )
            except llm.UpstreamError as exc:
                raise self._upstream_failure(view, call, exc) from None
            self.metrics.retried(view.name, opened.attempts - 1)
            if opened.whole is not None:  # the upstream does not stream: its answer replayed
                events = streaming.replay(opened.whole.raw, prepared.include_usage)
                source = streaming.listed(events)
            else:
                assert opened.response is not None
                limit = client.max_response_bytes
                source = streaming.upstream_chunks(opened.response, opened.url, limit)
                aclose = opened.aclose
        role = call.role.value
        kh = key_hash(call.key)
        shadow = self._shadow_of(view, call)
        ttl = view.route.cache.ttl_s if view.route.cache is not None else None

        def error_body(status: int, public: str) -> bytes:
            message = f"endpoint {view.name!r}: {public}"
            return orjson.dumps(error_payload("openai", status, message, {}))

        def ended(outcome: streaming.Outcome) -> None:
            tally = outcome.tally
            hit = entry is not None
            if outcome.status >= 500:
                self.metrics.upstream_failed(view.name, role, outcome.status)
                log.warning(
                    "mlx serve: endpoint %s (%s, request %s): %s",
                    view.name,
                    role,
                    call.request_id,
                    outcome.error,
                )
            tin, tout = (0, 0) if hit else (tally.input_tokens, tally.output_tokens)
            cached = None if hit else tally.cached_input_tokens
            model_used = entry.model if entry is not None else tally.model or prepared.model
            priced = (
                pricing.CACHED
                if hit
                else pricing.price(
                    view.route.pricing,
                    prepared.model,
                    model_used,
                    pricing.Usage(tin, tout, cached),
                    call.ts,
                )
            )
            self._answered(
                view,
                call,
                role,
                loaded,
                outcome.status,
                outcome.latency_ms,
                key_hash=kh,
                inputs=_chat_inputs(doc),
                outputs=tally.outputs,
                input_tokens=tin,
                output_tokens=tout,
                cached_input_tokens=cached,
                cache_hit=hit,
                error=outcome.error,
                model=model_used,
                requested_model=prepared.model,
                ttft_ms=tally.ttft_ms,
                **priced.fields(),
            )
            if outcome.status != 200:
                return
            if not hit and cache_key is not None and ttl is not None:
                whole = tally.whole()
                if whole is not None:
                    self.cache.put(cache_key, ttl, whole, model_used, tin, tout, tally.outputs)
            if shadow is not None:
                self.shadows.spawn(
                    view.name, lambda: self._shadow_prompt(view, shadow, doc, call, kh)
                )

        return streaming.StreamAnswer(
            source,
            call.headers(),
            t0=call.t0,
            include_usage=prepared.include_usage,
            error_body=error_body,
            on_end=ended,
            aclose=aclose,
            gone=lambda: call.gone,
        )

    async def _shadow_prompt(
        self, view: EndpointView, loaded: Loaded, doc: Any, call: Call, kh: str | None
    ) -> None:
        assert loaded.prompt is not None
        ts, t0 = time.time(), time.perf_counter()
        shadow_call = Call(call.request_id, t0, ts, view, Role.SHADOW, loaded, call.key)
        status, error, outputs = 200, None, None
        tin = tout = None
        used = pricing.Usage()
        priced = pricing.UNPRICED
        requested = answered = None
        try:
            prepared = loaded.prompt.prepare(doc)
            requested = prepared.model
            answer = await asyncio.wait_for(
                self._upstream(view, shadow_call, prepared.body, self.shadow_http),
                view.route.timeout_s + 1.0,
            )
            used = answer.tokens
            tin, tout = used.input_tokens, used.output_tokens
            outputs = _contents(answer.data)
            priced = pricing.price(view.route.pricing, requested, answer.model, used, ts)
            answered = answer.model or requested
        except InputError as exc:
            status, error = 400, f"shadow: {exc}"
        except Fail as fail:
            status, error = fail.status, f"shadow: {fail.logged_error}"
        except TimeoutError:
            status, error = 504, f"shadow: no answer within {view.route.timeout_s:g}s"
        except asyncio.CancelledError:
            status, error = 503, "shadow: cancelled (the gateway shut down)"
        except Exception as exc:
            status, error = 500, f"shadow: {one_line(exc)}"
        latency = (time.perf_counter() - t0) * 1000.0
        self._shadow_logged(
            view,
            loaded,
            call,
            ts,
            status,
            latency,
            kh,
            error,
            _chat_inputs(doc),
            outputs,
            input_tokens=tin,
            output_tokens=tout,
            cached_input_tokens=used.cached_input_tokens,
            model=answered,
            requested_model=requested,
            **priced.fields(),
        )


def _policy(view: EndpointView) -> dict[str, Any]:
    """The upstream call's policy (``llm.chat`` / ``llm.stream`` keywords): the endpoint
    client's per-attempt timeout, retries, backoff and answer size, and the deadline of the
    whole call (the endpoint's timeout, from now)."""
    client = view.route.client
    assert client is not None
    return {
        "attempt_timeout": client.timeout_s,
        "deadline": time.monotonic() + view.route.timeout_s,
        "retries": client.retries,
        "backoff_s": client.backoff_s,
        "max_response_bytes": client.max_response_bytes,
    }


def _contents(data: dict[str, Any]) -> list[Any]:
    out = []
    for choice in data.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        out.append(message.get("content") if isinstance(message, dict) else None)
    return out


def _chat_inputs(doc: Any) -> Any:
    if not isinstance(doc, dict):
        return doc
    return {"variables": doc.get("variables"), "messages": doc.get("messages") or []}
