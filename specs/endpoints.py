"""``endpoints``: a model or prompt served behind a URL (the embedded gateway, SageMaker, …).

An endpoint serves its subject's version as released by its last completed
rollout; with no rollout naming it, an apply moves it at once,
create-before-destroy. Either way it serves only a version for which every
gate it requires has passed for exactly that version's fingerprints.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from specs.base import Duration, OwnedResource, SpecModel, ref_field
from specs.evals import OpenAIClient, Price
from specs.kinds import Kind


class EndpointLog(SpecModel):
    """What the inference log keeps: metadata always, payloads for a share of requests."""

    payloads: float = Field(
        0.0, ge=0, le=1, description="Share of requests whose inputs/outputs are kept (0..1)."
    )


class EndpointCache(SpecModel):
    """Exact-match response cache (prompt endpoints)."""

    ttl: Duration = Field(..., description="How long an answer is reused, e.g. 10m.")


#: The default bound of an LLM upstream's answer (``client.max_response_bytes``): 8 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class EndpointClient(OpenAIClient):
    """The LLM upstream of a prompt endpoint: an eval gate's client, plus serving's bounds."""

    max_response_bytes: int = Field(
        DEFAULT_MAX_RESPONSE_BYTES,
        gt=0,
        description="An upstream answer larger than this is a 502 and is never held whole "
        "(default 8 MiB).",
    )


class Endpoint(OwnedResource):
    section: ClassVar[str] = "endpoints"
    computed: ClassVar[tuple[str, ...]] = ("url", "stable_version", "weights")
    plan_outputs: ClassVar[tuple[str, ...]] = ("stable_version",)
    follows_upstream: ClassVar[bool] = True
    release_field: ClassVar[str | None] = "serves"
    create_before_destroy: ClassVar[bool] = True

    serves: str = ref_field(..., kinds=("models", "prompts"))
    requires: list[str] | None = Field(
        None,
        description='Gates the served version must have passed: ["${evals.x}"]. '
        "Default: every gate whose subject is the served model or prompt.",
    )
    log: EndpointLog = Field(default_factory=EndpointLog)
    cache: EndpointCache | None = None
    client: EndpointClient | None = Field(
        None, description="The LLM upstream of a prompt endpoint (OpenAI-compatible)."
    )
    pricing: dict[str, Price] = Field(
        default_factory=dict, description="Per-model prices overriding the bundled price table."
    )
    timeout_s: float = Field(30, gt=0, description="Per-request deadline, upstream included.")
    max_body_bytes: int = Field(
        1_048_576, gt=0, description="Larger request bodies get 413 (default 1 MiB)."
    )


KIND = Kind("endpoints", Endpoint, default_provider="gateway", order=50)
