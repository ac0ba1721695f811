"""A rollout's recorded state: everything a controller needs to take the next step.

It lives in the rollout's state record (its outputs), so a controller killed at any
moment resumes from what was recorded — the next pass reads it, looks at the clock and
the traffic, and takes one step (Kubernetes-style reconcile: level-triggered, each step
idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from contract import VersionRef


class Phase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"  # waiting for a person: a manual step, inconclusive, a timeout
    COMPLETED = "completed"  # the candidate is stable, the alias moved
    ABORTED = "aborted"  # stable serves everything; the candidate is out


#: How many earlier stable versions a rollout remembers (Argo Rollouts' ``rollbackWindow``).
KEEP_RELEASED = 10


class Waiting(StrEnum):
    """Why a paused rollout waits, and for what."""

    PROMOTE = "promote"  # a step without a duration
    INCONCLUSIVE = "inconclusive"  # too little traffic to judge, past inconclusive_limit
    FAILURE = "failure"  # on_failure: pause
    TIMEOUT = "timeout"  # past the rollout's deadline
    DECISION = "decision"  # A/B: no difference yet, and out of time


@dataclass
class RolloutState:
    address: str
    subject: str
    strategy: str
    endpoint: str | None = None
    alias: str | None = None
    #: outputs (version, fingerprint, uri) of what users get fully, and of the candidate
    stable: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None
    phase: Phase = Phase.PROGRESSING
    waiting: Waiting | None = None
    step: int = 0
    steps: int = 0
    started_at: float = 0.0
    step_started_at: float = 0.0
    #: when the current pause ends (``None``: no pause, or a manual one)
    pause_until: float | None = None
    deadline: float | None = None
    #: the window of the next analysis starts here (the step's start, or the last look)
    window_from: float = 0.0
    next_look_at: float | None = None
    weight: int = 0
    mirror: int = 0
    tally: dict[str, int] = field(default_factory=dict)
    ab: dict[str, Any] | None = None
    #: the last looks, newest last (what `mlx rollout status` shows)
    looks: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    #: a candidate this rollout aborted: not started again until `mlx rollout retry`
    aborted_fingerprint: str | None = None
    #: requests from `mlx rollout promote|abort` not yet acted on
    requested: str | None = None
    #: who asked, and why: ``bob: support tickets doubled`` (recorded in the rollout's message)
    requested_by: str | None = None
    #: outputs of the versions this rollout made stable before the current one, newest last
    #: (at most ``KEEP_RELEASED``): going back to one of them is a rollback, at once
    released_before: list[dict[str, Any]] = field(default_factory=list)

    @property
    def candidate_variant(self) -> str | None:
        return variant_name(self.candidate)

    @property
    def stable_variant(self) -> str | None:
        return variant_name(self.stable)

    def to_outputs(self) -> dict[str, Any]:
        """The record's outputs: the state, plus what plans and releases read."""
        data = asdict(self)
        data["phase"] = str(self.phase)
        data["waiting"] = str(self.waiting) if self.waiting else None
        released = self.stable or {}
        data.update(
            released=released or None,
            released_version=VersionRef.of(released).version,
            fingerprint=released.get("fingerprint"),
            candidate_version=VersionRef.of(self.candidate).version,
        )
        return data

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> RolloutState:
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in outputs.items() if k in names}
        state = cls(**data)
        state.phase = Phase(state.phase)
        state.waiting = Waiting(state.waiting) if state.waiting else None
        return state


def same_version(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two version outputs name the same bytes (by fingerprint, else by version)."""
    return VersionRef.of(a).same_as(VersionRef.of(b))


def variant_name(outputs: dict[str, Any] | None) -> str | None:
    """The serving variant of a registered version: ``v<version>``."""
    return VersionRef.of(outputs).label
