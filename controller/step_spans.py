"""Which rollout step served a version during a window: the steps of a rollout (from its
recorded events) that overlapped ``[since, until)``, per candidate version.

A monitor's slice says which (variant, version) answered; this adds *when in the rollout*:
"variant candidate version 7, rollouts.web step 2/3 at 50 %". Each recorded rollout event
carries the state after a controller pass (``controller.state.RolloutState.to_outputs``):
the candidate's version, ``step``/``steps``, ``weight`` and when the step started. A step
lasts until the next step (or another candidate) starts; the last one until ``until``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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


def spans(rollout: str, outputs: Iterable[Mapping[str, Any]]) -> list[StepSpan]:
    """The steps a rollout's candidates went through, oldest first, from its recorded
    outputs (oldest first)."""
    seen: list[tuple[str, int, int, int, float]] = []
    for out in outputs:
        version = out.get("candidate_version")
        started = out.get("step_started_at")
        if not version or not isinstance(started, int | float) or not out.get("steps"):
            continue
        key = (str(version), int(out.get("step") or 0), int(out["steps"]))
        if seen and seen[-1][:3] == key:
            # the same step seen again: keep its start, take the newest weight
            seen[-1] = (*key, int(out.get("weight") or 0), seen[-1][4])
            continue
        seen.append((*key, int(out.get("weight") or 0), float(started)))
    out_spans = []
    for i, (version, step, steps, weight, start) in enumerate(seen):
        end = seen[i + 1][4] if i + 1 < len(seen) else None
        out_spans.append(StepSpan(rollout, version, step + 1, steps, weight, start, end))
    return out_spans


def during(all_spans: Iterable[StepSpan], since: float, until: float) -> list[StepSpan]:
    """The spans overlapping ``[since, until)``."""
    return [s for s in all_spans if s.start < until and (s.end is None or s.end > since)]
