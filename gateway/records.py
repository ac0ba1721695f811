"""Building the inference-log record of one request (or of one shadow call).

The handler calls ``record`` once the caller's answer is sent and hands the result to
``LogWriter.submit`` (O(1): it is queued; the writer's thread turns it into a row). Field
names are the spec's (``inference.records.InferenceRecord``). ``variant`` is the role that
answered (``stable``, ``candidate``; a shadow copy: ``shadow``, with the caller's
``request_id``); ``version`` which version that was. ``inputs`` / ``outputs`` are kept only
for the share of requests ``log.payloads`` samples — decided by the request id, so a shadow
copy is sampled exactly when its caller's request is.
"""

from __future__ import annotations

from typing import Any

from gateway.control import EndpointView, Loaded
from gateway.routing import sampled
from inference.records import InferenceRecord


def known_fields(
    view: EndpointView,
    workspace: str,
    request_id: str,
    ts: float,
    loaded: Loaded | None,
    key_hash: str | None = None,
    client_request_id: str | None = None,
) -> dict[str, Any]:
    """The fields of a request's record known before anything answered it: what ``record``
    starts from, and what a model shadow job carries to the worker that logs it."""
    prompt = loaded.prompt if loaded is not None else None
    return {
        "request_id": request_id,
        "ts": ts,
        "endpoint": view.name,
        "subject": view.route.subject,
        "version": loaded.version if loaded is not None else None,
        "fingerprint": loaded.fingerprint if loaded is not None else None,
        "prompt_version": loaded.version if prompt is not None and loaded is not None else None,
        "retrieval_version": prompt.retrieval_version if prompt is not None else None,
        "key_hash": key_hash,
        "client_request_id": client_request_id,
        "environment": workspace,
    }


def keeps_payloads(view: EndpointView, request_id: str) -> bool:
    """Whether this request's inputs and outputs are kept (``log.payloads``)."""
    return sampled(view.route.log.payloads, request_id)


def record(
    view: EndpointView,
    workspace: str,
    request_id: str,
    ts: float,
    role: str,
    loaded: Loaded | None,
    status: int,
    latency_ms: float,
    *,
    key_hash: str | None = None,
    error: str | None = None,
    inputs: Any = None,
    outputs: Any = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: float | None = None,
    cache_hit: bool = False,
    client_request_id: str | None = None,
    ttft_ms: float | None = None,
    cached_input_tokens: int | None = None,
    price_source: str | None = None,
    price_input_per_1m: float | None = None,
    price_output_per_1m: float | None = None,
    price_cached_input_per_1m: float | None = None,
    model: str | None = None,
    requested_model: str | None = None,
) -> InferenceRecord:
    keep = keeps_payloads(view, request_id)
    return InferenceRecord(
        **known_fields(view, workspace, request_id, ts, loaded, key_hash, client_request_id),
        variant=role,
        status=status,
        latency_ms=latency_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        cache_hit=cache_hit,
        inputs=inputs if keep else None,
        outputs=outputs if keep else None,
        error=error,
        ttft_ms=ttft_ms,
        cached_input_tokens=cached_input_tokens,
        price_source=price_source,
        price_input_per_1m=price_input_per_1m,
        price_output_per_1m=price_output_per_1m,
        price_cached_input_per_1m=price_cached_input_per_1m,
        model=model,
        requested_model=requested_model,
    )
