"""Shadow: the candidate answers a mirrored share of the traffic in the background, its
answers never returned; a look judges the pairs of answers (``analysis.judge_shadow``:
agreement, errors, latency). A shadow that passed its steps is cut over (weight 100)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import judge_shadow, summarize
from analysis.base import Measurement
from analysis.canary import VariantStats
from controller.rollouts.canary import Canary
from specs.rollouts import Rollout, Step


@dataclass(frozen=True)
class Shadow(Canary):
    reads_pairs: bool = True

    def steps(self, spec: Rollout) -> list[Step]:
        mirror = spec.mirror.percent if spec.mirror else 0
        window = (spec.analysis.interval if spec.analysis else None) or "10m"
        out = []
        for step in spec.steps or [Step(pause=window)]:
            if step.weight == 100:
                out.append(step)
            elif step.mirror is None:
                out.append(step.model_copy(update={"mirror": mirror, "weight": 0}))
            else:
                out.append(step.model_copy(update={"weight": 0}))
        if out[-1].weight != 100:
            out.append(Step(weight=100))  # a shadow that passed is cut over
        return out

    def measure(
        self,
        spec: Rollout,
        metrics: Mapping[str, VariantStats],
        pairs: Sequence[Any] | None,
    ) -> list[Measurement]:
        if spec.analysis is None:
            return []
        return judge_shadow(summarize(pairs or []), spec.analysis)


SHADOW = Shadow()
