"""``rollouts``: how a released version reaches traffic (direct alias move, shadow, canary, A/B)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from specs.base import Duration, Exclusive, OwnedResource, SpecModel, ref_field
from specs.evals import Threshold
from specs.kinds import Kind

#: How much higher than stable's a candidate's client-error (4xx) share may be by default:
#: a candidate that refuses what stable accepts is failing (docs/statistics.md).
DEFAULT_CLIENT_ERROR_DROP = 0.01


class Pause(SpecModel):
    """``pause: {duration: 10m}``; ``pause: {}`` waits for ``mlx rollout promote``."""

    duration: Duration | None = None


class Step(SpecModel):
    """Argo Rollouts' ``setWeight`` + ``pause``; a shadow step mirrors instead."""

    weight: int | None = Field(None, ge=0, le=100, description="Candidate's share, percent.")
    mirror: int | None = Field(
        None, ge=0, le=100, description="Shadow: percent of requests copied to the candidate."
    )
    pause: Duration | Literal["manual"] | Pause | None = Field(
        None, description="10m; `manual` or {} waits for `mlx rollout promote`."
    )

    @property
    def manual(self) -> bool:
        return self.pause == "manual" or (isinstance(self.pause, Pause) and not self.pause.duration)

    @property
    def duration(self) -> str | None:
        if isinstance(self.pause, Pause):
            return self.pause.duration
        return None if self.pause in (None, "manual") else str(self.pause)


class Analysis(SpecModel):
    """Judged on the candidate against stable over the same window (docs/statistics.md)."""

    error_rate: Threshold | None = None
    client_error_rate: Threshold = Field(
        default_factory=lambda: Threshold(max_drop=DEFAULT_CLIENT_ERROR_DROP),
        description="The candidate's share of 4xx answers (499 excluded) against stable's: "
        "judged at every look whenever stable had traffic, by default at most "
        f"{DEFAULT_CLIENT_ERROR_DROP} above it.",
    )
    latency_p50_ms: Threshold | None = None
    latency_p95_ms: Threshold | None = None
    latency_p99_ms: Threshold | None = None
    cost_per_request_usd: Threshold | None = None
    metrics: dict[str, Threshold] = Field(
        default_factory=dict,
        description="Custom metrics over feedback (outcome signals); shadow: `agreement`.",
    )
    min_requests: int = Field(100, ge=0, description="Per variant; fewer is inconclusive.")
    failure_limit: int = Field(0, ge=0)
    inconclusive_limit: int = Field(0, ge=0)
    consecutive_error_limit: int = Field(4, ge=0)
    interval: Duration | None = Field(
        None, description="How often to look during a pause (default: once, at its end)."
    )


class Mirror(SpecModel):
    percent: int = Field(..., ge=1, le=100)


#: The decision metric judged on unit cost: spend per successful outcome, lower is better.
COST_PER_SUCCESS = "cost_per_success"


class MaxDrop(SpecModel):
    """How far the candidate's rate may fall below stable's (``{max_drop: 0.02}``)."""

    max_drop: float = Field(..., ge=0, le=1)


class Guard(SpecModel):
    """A quality floor a cheaper candidate must hold: ``{success_rate: {max_drop: 0.02}}``."""

    success_rate: MaxDrop


class Decision(SpecModel):
    """A/B: the outcome metric (a feedback score: conversion 0/1) decides, sequentially; or
    ``metric: cost_per_success`` — spend per successful outcome, lower wins — with a
    ``guard`` on the success rate (docs/rollouts.md, "A/B on unit cost")."""

    metric: str = Field(..., min_length=1)
    min_samples: int = Field(1000, ge=1, description="Per arm, before any decision.")
    alpha: float = Field(0.05, gt=0, lt=1)
    higher_is_better: bool = True
    guard: Guard | None = Field(
        None,
        description="cost_per_success: how far the success rate may drop "
        "(`{success_rate: {max_drop: 0.02}}`).",
    )

    @model_validator(mode="after")
    def _guard_fits_the_metric(self) -> Decision:
        if self.metric == COST_PER_SUCCESS:
            if self.guard is None:
                raise ValueError(
                    "metric cost_per_success needs a quality floor: "
                    "`guard: {success_rate: {max_drop: 0.02}}`"
                )
            if "higher_is_better" in self.model_fields_set and self.higher_is_better:
                raise ValueError("metric cost_per_success: lower is better; drop higher_is_better")
        elif self.guard is not None:
            raise ValueError(
                f"`guard` belongs to metric cost_per_success; metric {self.metric!r} is "
                "itself the outcome the test decides on"
            )
        return self

    @property
    def unit_cost(self) -> bool:
        return self.metric == COST_PER_SUCCESS


class Rollout(OwnedResource):
    section: ClassVar[str] = "rollouts"
    computed: ClassVar[tuple[str, ...]] = ("weight", "phase", "released_version")
    plan_outputs: ClassVar[tuple[str, ...]] = ("released_version",)
    follows_upstream: ClassVar[bool] = True
    release_field: ClassVar[str | None] = "subject"
    exclusive: ClassVar[tuple[Exclusive, ...]] = (
        Exclusive(
            ("endpoint",),
            "an endpoint has at most one rollout",
            hint="Keep one: a canary's last step (weight 100) is its full release, so one "
            "rollout covers a gradual and a direct release.",
        ),
        Exclusive(
            ("subject", "alias"),
            "a registry alias is moved by at most one rollout",
            "alias {1!r} of {0}",
        ),
    )

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
    mirror: Mirror | None = Field(None, description="Shadow: the share of traffic copied.")
    decision: Decision | None = Field(None, description="A/B: what ends the test.")
    timeout: Duration | None = Field(
        None, description="Bounds the whole rollout: past it, it pauses and alerts the owner."
    )
    on_failure: Literal["rollback", "pause"] = "rollback"
    alert: str | None = ref_field(None, kinds=("alerts",))

    @model_validator(mode="after")
    def _needs_a_target(self) -> Rollout:
        if self.endpoint is None and self.alias is None:
            raise ValueError("a rollout needs an `endpoint` (serving) or an `alias` (registry)")
        if self.strategy != "direct" and self.endpoint is None:
            raise ValueError(f"strategy {self.strategy!r} needs an `endpoint` to split traffic on")
        if self.strategy == "canary" and not self.steps:
            raise ValueError("strategy 'canary' needs `steps`")
        if self.strategy == "shadow":
            if self.mirror is None and not any(s.mirror for s in self.steps):
                raise ValueError("strategy 'shadow' needs `mirror: {percent: N}`")
            for i, step in enumerate(self.steps):
                if step.weight not in (None, 0, 100):
                    raise ValueError(
                        f"steps[{i}]: a shadow never exposes the candidate's answers: weight "
                        "must be 0 (or 100, the cut-over after it passed)"
                    )
        if self.strategy == "ab" and self.decision is None:
            raise ValueError("strategy 'ab' needs `decision: {metric, min_samples}`")
        if self.strategy == "canary" and any(s.mirror for s in self.steps):
            raise ValueError("`mirror` belongs to shadow steps; a canary step sets `weight`")
        return self


KIND = Kind("rollouts", Rollout, default_provider="rollout", order=60)
