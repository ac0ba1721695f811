"""``rollouts``: how a released version reaches traffic (direct alias move, shadow, canary, A/B)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from specs.base import Duration, OwnedResource, SpecModel, ref_field
from specs.evals import Threshold
from specs.kinds import Kind


class Step(SpecModel):
    """Argo Rollouts' ``setWeight`` + ``pause``."""

    weight: int = Field(..., ge=0, le=100)
    pause: Duration | None = None


class Analysis(SpecModel):
    error_rate: Threshold | None = None
    latency_p50_ms: Threshold | None = None
    latency_p95_ms: Threshold | None = None
    latency_p99_ms: Threshold | None = None
    cost_per_request_usd: Threshold | None = None
    metrics: dict[str, Threshold] = Field(default_factory=dict)
    min_requests: int = Field(100, ge=0)
    failure_limit: int = Field(0, ge=0)
    interval: Duration | None = None


class Rollout(OwnedResource):
    section: ClassVar[str] = "rollouts"
    computed: ClassVar[tuple[str, ...]] = ("weight", "phase", "released_version")
    plan_outputs: ClassVar[tuple[str, ...]] = ("released_version",)
    follows_upstream: ClassVar[bool] = True
    release_field: ClassVar[str | None] = "subject"

    subject: str = ref_field(..., kinds=("models", "prompts"))
    endpoint: str | None = ref_field(None, kinds=("endpoints",))
    alias: str | None = Field(
        None, description="Registry alias moved to the subject's version when fully rolled out."
    )
    requires: list[str] | None = Field(
        None,
        description='Gates the released version must have passed: ["${evals.x}"]. '
        "Default: every gate whose subject is this rollout's subject; [] for none.",
    )
    strategy: Literal["direct", "shadow", "canary", "ab"] = "direct"
    steps: list[Step] = Field(default_factory=list)
    analysis: Analysis | None = None
    on_failure: Literal["rollback", "pause", "alert"] = "rollback"
    alert: str | None = ref_field(None, kinds=("alerts",))

    @model_validator(mode="after")
    def _needs_a_target(self) -> Rollout:
        if self.endpoint is None and self.alias is None:
            raise ValueError("a rollout needs an `endpoint` (serving) or an `alias` (registry)")
        if self.strategy in ("canary", "ab") and not self.steps:
            raise ValueError(f"strategy {self.strategy!r} needs `steps`")
        return self


KIND = Kind("rollouts", Rollout, default_provider="rollout", order=60)
