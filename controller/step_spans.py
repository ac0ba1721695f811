"""Which rollout step served a version during a window: the steps of a rollout (from its
recorded events) that overlapped ``[since, until)``, per candidate version.

A monitor's slice says which (variant, version) answered; this adds *when in the rollout*:
"variant candidate version 7, rollouts.web step 2/3 at 50 %". Each recorded rollout event
carries the state after a controller pass (``controller.state.RolloutState.to_outputs``):
the phase, the candidate's version, ``step``/``steps``, ``weight`` and when the step started.
A step lasts until the next step starts, or until an event shows the rollout no longer
progressing that candidate (completed, aborted, or no candidate) — the event's time ends it;
the last one is still current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from controller.state import Phase

#: Phases in which the candidate takes (or waits with) its step's traffic.
_LIVE = frozenset({Phase.PROGRESSING, Phase.PAUSED})


@dataclass(frozen=True)
class StepSpan:
    rollout: str
    version: str
    step: int  # 1-based
    steps: int
    weight: int
    start: float
    end: float | None  # None: still current

    def as_dict(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout,
            "version": self.version,
            "step": self.step,
            "steps": self.steps,
            "weight": self.weight,
            "from": self.start,
            "to": self.end,
        }

    def label(self) -> str:
        return f"{self.rollout} step {self.step}/{self.steps} at {self.weight} %"


def spans(rollout: str, history: Iterable[tuple[float, Mapping[str, Any]]]) -> list[StepSpan]:
    """The steps a rollout's candidates went through, oldest first, from its recorded
    ``(event time, outputs)`` (oldest first)."""
    out: list[StepSpan] = []
    current: StepSpan | None = None
    for at, state in history:
        version = state.get("candidate_version")
        started = state.get("step_started_at")
        live = state.get("phase", Phase.PROGRESSING) in _LIVE
        if not version or not live or not state.get("steps"):
            if current is not None:
                out.append(replace(current, end=at))
                current = None
            continue
        begins = float(started) if isinstance(started, int | float) else at
        step, steps = int(state.get("step") or 0) + 1, int(state["steps"])
        weight = int(state.get("weight") or 0)
        if current is not None and (current.version, current.step) == (str(version), step):
            current = replace(current, weight=weight)  # a later pass of the same step
            continue
        if current is not None:
            out.append(replace(current, end=begins))
        current = StepSpan(rollout, str(version), step, steps, weight, begins, None)
    if current is not None:
        out.append(current)
    return out


def during(all_spans: Iterable[StepSpan], since: float, until: float) -> list[StepSpan]:
    """The spans overlapping ``[since, until)``."""
    return [s for s in all_spans if s.start < until and (s.end is None or s.end > since)]
