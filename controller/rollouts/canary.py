"""Canary (Argo Rollouts' steps) and direct: the candidate takes each step's weight, and a
look judges its traffic against stable's over the same window (``analysis.judge_canary``:
error rate, latency, cost, feedback). Direct is a canary of one step to 100."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import judge_canary
from analysis.base import Measurement
from analysis.canary import VariantStats
from controller.state import RolloutState
from specs.rollouts import Rollout, Step


@dataclass(frozen=True)
class Canary:
    sequential: bool = False
    reads_pairs: bool = False

    def steps(self, spec: Rollout) -> list[Step]:
        steps = list(spec.steps)
        if not steps or steps[-1].weight != 100:
            steps.append(Step(weight=100))
        return steps

    def measure(
        self,
        spec: Rollout,
        metrics: Mapping[str, VariantStats],
        pairs: Sequence[Any] | None,
    ) -> list[Measurement]:
        if spec.analysis is None:
            return []
        stable = metrics.get("stable") or VariantStats(0, 0)
        candidate = metrics.get("candidate") or VariantStats(0, 0)
        return judge_canary(candidate, stable, spec.analysis)

    def window_from(self, state: RolloutState) -> float:
        return state.window_from  # since the last look


@dataclass(frozen=True)
class Direct(Canary):
    def steps(self, spec: Rollout) -> list[Step]:
        return [Step(weight=100)]


CANARY = Canary()
DIRECT = Direct()
