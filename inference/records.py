"""What the gateway logs: one ``InferenceRecord`` per request, ``Feedback`` joined on request_id.

The field names of ``InferenceRecord`` are fixed by the spec (SPEC.md, "Inference log record").
``environment`` is the one extra: endpoint names repeat across mlx environments.

Records are plain slotted dataclasses, not pydantic models, because a request handler builds one
per request: construction must cost about a microsecond. Nothing is validated or serialized on
the request path; the writer's thread turns records into rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from contract import Role

#: The spec's fixed field names, in the spec's order (``--json`` prints them in this order),
#: then the added ones this log keeps (``client_request_id``, ``ttft_ms``, and the raw usage and
#: price of an LLM answer: ``cached_input_tokens``, ``price_source`` and the rates applied,
#: the model that answered and the one asked for — what ``mlx logs --reprice`` prices again).
FIELDS: tuple[str, ...] = (
    "request_id",
    "ts",
    "endpoint",
    "variant",
    "subject",
    "version",
    "fingerprint",
    "prompt_version",
    "retrieval_version",
    "status",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_hit",
    "key_hash",
    "inputs",
    "outputs",
    "error",
    "client_request_id",
    "ttft_ms",
    "cached_input_tokens",
    "price_source",
    "price_input_per_1m",
    "price_output_per_1m",
    "price_cached_input_per_1m",
    "model",
    "requested_model",
)

#: The variant a shadow copy of a request is logged under (same request_id as the caller's):
#: the role's plain text, for SQL.
SHADOW: str = Role.SHADOW.value
#: The status of a request the caller gave up on: it hung up, or sent its body too slowly.
#: The caller's failure, never the variant's (``inference.query.VariantSummary``).
CALLER_GONE = 499
DEFAULT_ENVIRONMENT = "default"


@dataclass(slots=True, kw_only=True)
class InferenceRecord:
    """One request an endpoint answered (or one shadow call it made).

    ``ts`` is when the request arrived, epoch seconds UTC. ``status`` is the HTTP status code
    the caller got (a shadow call: what the shadow answered). ``inputs`` / ``outputs`` are JSON
    values kept for a sampled share of requests (``log: {payloads: 0.1}``), else None; the rest
    is kept for every request. ``(environment, endpoint, request_id, variant)`` identifies a
    request: a shadow copy has the caller's ``request_id`` and ``variant="shadow"``.
    ``status`` 499 is the caller's own failure (it hung up, or sent its body too slowly): never
    an error of the variant. ``client_request_id`` is the caller's ``x-request-id`` when it had
    already been used (``request_id`` is then a fresh one, the one the caller got back).
    ``ttft_ms`` is the time from arrival to the first content token of a streamed answer
    (``latency_ms`` is then the whole stream); None for an answer that was not streamed.

    An LLM answer keeps its raw usage (``input_tokens`` counts every prompt token,
    ``cached_input_tokens`` the subset read from the provider's cache), ``model`` (as the
    upstream answered) and ``requested_model``, and the price it was charged at:
    ``price_source`` (``spec``, ``genai-prices <version>``, ``cache`` for a cache hit, None when
    no price was known — ``cost_usd`` is then None, never 0) and the per-1M-token USD rates
    applied (``price_*_per_1m``).
    """

    request_id: str
    ts: float = field(default_factory=time.time)
    endpoint: str
    variant: str
    subject: str | None = None
    version: str | None = None
    fingerprint: str | None = None
    prompt_version: str | None = None
    retrieval_version: str | None = None
    status: int
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cache_hit: bool = False
    key_hash: str | None = None
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    client_request_id: str | None = None
    ttft_ms: float | None = None
    cached_input_tokens: int | None = None
    price_source: str | None = None
    price_input_per_1m: float | None = None
    price_output_per_1m: float | None = None
    price_cached_input_per_1m: float | None = None
    model: str | None = None
    requested_model: str | None = None
    environment: str = DEFAULT_ENVIRONMENT

    def to_json(self) -> dict[str, Any]:
        """The fixed fields in the spec's order, ``ts`` as ISO-8601, then ``environment``."""
        out = {name: getattr(self, name) for name in FIELDS}
        out["ts"] = iso(self.ts)
        out["environment"] = self.environment
        return out


@dataclass(slots=True, kw_only=True)
class Feedback:
    """What a caller said about an answer (``POST /endpoints/{name}/feedback``).

    ``label``, ``outcome`` and ``value`` are JSON values as sent; at least one is set.
    ``score`` is the number analyses average (see ``score_of``).
    """

    request_id: str
    ts: float = field(default_factory=time.time)
    endpoint: str
    environment: str = DEFAULT_ENVIRONMENT
    label: Any = None
    outcome: Any = None
    value: Any = None

    @property
    def score(self) -> float | None:
        return score_of(self.label, self.outcome, self.value)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ts"] = iso(self.ts)
        out["score"] = self.score
        return out

    @classmethod
    def from_body(
        cls,
        endpoint: str,
        body: Any,
        *,
        environment: str = DEFAULT_ENVIRONMENT,
        ts: float | None = None,
    ) -> Feedback:
        """Validate a feedback request body; a ``FeedbackError`` says what is wrong, in one line."""
        if not isinstance(body, dict):
            raise FeedbackError(
                f"feedback for endpoint {endpoint!r} must be a JSON object, "
                f"got {type(body).__name__}"
            )
        unknown = sorted(set(body) - {"request_id", *_KINDS})
        if unknown:
            raise FeedbackError(
                f"feedback for endpoint {endpoint!r}: unknown field(s) {', '.join(unknown)} "
                f"(expected request_id and one of label, outcome, value)"
            )
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise FeedbackError(
                f"feedback for endpoint {endpoint!r}: request_id must be a non-empty string"
            )
        if all(body.get(kind) is None for kind in _KINDS):
            raise FeedbackError(
                f"feedback for endpoint {endpoint!r}: one of label, outcome, value is required"
            )
        return cls(
            request_id=request_id,
            ts=time.time() if ts is None else ts,
            endpoint=endpoint,
            environment=environment,
            label=body.get("label"),
            outcome=body.get("outcome"),
            value=body.get("value"),
        )


_KINDS = ("label", "outcome", "value")


class FeedbackError(ValueError):
    """A feedback body the gateway should answer with 400 and this message."""


def score_of(label: Any, outcome: Any, value: Any) -> float | None:
    """The numeric score of a feedback: ``value`` if numeric, else a numeric ``outcome``, else a
    numeric ``label``; booleans count 1 / 0. Strings and other JSON values score None (they are
    kept, not averaged). "Successful outcomes" are feedbacks scoring > 0.
    """
    for candidate in (value, outcome, label):
        if isinstance(candidate, bool):
            return 1.0 if candidate else 0.0
        if isinstance(candidate, int | float) and math.isfinite(candidate):
            return float(candidate)
    return None


def iso(ts: float) -> str:
    """Epoch seconds → ``2026-01-31T12:00:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
