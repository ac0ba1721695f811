"""A/B: one split, sticky by key, held until a sequential test on the outcome metric (a
feedback score: conversion 0/1) decides for one side (mSPRT, always valid: looking every
interval does not inflate false positives; docs/statistics.md). Any analysis metric is a
guardrail, judged first as a canary's; the test counts feedback since the split began.

``decision.metric: cost_per_success`` decides on spend per successful outcome instead, with a
success-rate guard (:mod:`analysis.unitcost`; docs/rollouts.md, "A/B on unit cost")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis import SequentialState, Verdict, compare_proportions
from analysis.canary import VariantStats
from analysis.sequential import ABVerdict
from analysis.unitcost import CostArm, UnitCostState, decide_unit_cost
from controller.rollouts.canary import Canary
from controller.state import RolloutState
from specs.rollouts import Rollout, Step


@dataclass(frozen=True)
class AB(Canary):
    sequential: bool = True

    def steps(self, spec: Rollout) -> list[Step]:
        weight = next((s.weight for s in spec.steps if s.weight is not None), 50)
        return [Step(weight=weight)]

    def window_from(self, state: RolloutState) -> float:
        return state.step_started_at  # the sequential test takes the counts since it began


AB_TEST = AB()


def decide(
    spec: Rollout, state: RolloutState, metrics: dict[str, VariantStats], look: dict[str, Any]
) -> tuple[Verdict, Any]:
    """The sequential test on this look's counts (``look["ab"]`` records it): ``(PASS,
    result)`` once it decided; else ``(PASS, None)`` to keep collecting — its state saved in
    ``state.ab`` — or ``(INCONCLUSIVE, None)`` on a sample-ratio mismatch."""
    assert spec.decision is not None
    a = metrics.get("stable") or VariantStats(0, 0)
    b = metrics.get("candidate") or VariantStats(0, 0)
    if spec.decision.unit_cost:
        return decide_on_unit_cost(spec, state, a, b, look)
    a_s, a_n = _counts(a)
    b_s, b_n = _counts(b)
    prior = SequentialState.from_dict(state.ab) if state.ab else None
    result = compare_proportions(
        a_s,
        a_n,
        b_s,
        b_n,
        alpha=spec.decision.alpha,
        min_samples=spec.decision.min_samples,
        higher_is_better=spec.decision.higher_is_better,
        state=prior,
        split=[100 - state.weight, state.weight],
    )
    look["ab"] = {
        "verdict": str(result.verdict),
        "reason": result.reason,
        "effect": result.effect,
        "relative_effect": result.relative_effect,
        "interval": [result.low, result.high],
        "p_value": result.p_value,
        "a": {"successes": a_s, "trials": a_n},
        "b": {"successes": b_s, "trials": b_n},
    }
    if result.verdict in (ABVerdict.B_BETTER, ABVerdict.A_BETTER):
        return Verdict.PASS, result
    state.ab = result.state.to_dict()
    if result.verdict is ABVerdict.INCONCLUSIVE and b_n >= spec.decision.min_samples:
        return Verdict.INCONCLUSIVE, None  # a sample-ratio mismatch, not too little data
    return Verdict.PASS, None  # keep collecting


def _counts(v: VariantStats) -> tuple[int, int]:
    """(successes, trials) of the outcome: feedback scores 0/1, their count and mean."""
    trials = int(v.feedback_count or 0)
    mean = v.feedback_mean if v.feedback_mean is not None else 0.0
    return round(mean * trials), trials


def decide_on_unit_cost(
    spec: Rollout, state: RolloutState, a: VariantStats, b: VariantStats, look: dict[str, Any]
) -> tuple[Verdict, Any]:
    """``decide`` for ``metric: cost_per_success``: the same returns, the same SRM rule; a
    look that waiting cannot settle (a mismatch, unpriced spend) is INCONCLUSIVE at once."""
    decision = spec.decision
    assert decision is not None and decision.guard is not None

    def arm(v: VariantStats) -> CostArm:
        successes, trials = _counts(v)
        return CostArm(answers=v.requests, cost_usd=v.cost_usd, trials=trials, successes=successes)

    prior = UnitCostState.from_dict(state.ab) if state.ab else None
    result = decide_unit_cost(
        arm(a),
        arm(b),
        max_drop=decision.guard.success_rate.max_drop,
        alpha=decision.alpha,
        min_samples=decision.min_samples,
        state=prior,
        split=[100 - state.weight, state.weight],
    )
    guard = result.guard

    def side(c: CostArm) -> dict[str, Any]:
        return {
            "successes": c.successes,
            "trials": c.trials,
            "answers": c.answers,
            "cost_usd": c.cost_usd,
            "cost_per_success": c.cost_per_success,
        }

    look["ab"] = {
        "metric": decision.metric,
        "verdict": str(result.verdict),
        "reason": result.reason,
        "effect": result.relative_change,
        "interval": None if result.interval is None else list(result.interval),
        "p_value": None if result.cost is None else result.cost.p_value,
        "guard": None
        if guard is None
        else {
            "max_drop": decision.guard.success_rate.max_drop,
            "effect": guard.effect,
            "interval": [guard.low, guard.high],
        },
        "a": side(result.a),
        "b": side(result.b),
    }
    if result.verdict in (ABVerdict.B_BETTER, ABVerdict.A_BETTER):
        return Verdict.PASS, result
    state.ab = result.state.to_dict()
    if result.verdict is ABVerdict.INCONCLUSIVE and not result.keep_collecting:
        return Verdict.INCONCLUSIVE, None
    return Verdict.PASS, None  # keep collecting


def candidate_won(result: Any) -> bool:
    return bool(result.verdict is ABVerdict.B_BETTER)


def effect(look: dict[str, Any]) -> str:
    """The decided effect in words: ``effect +0.0123 (95% always-valid interval …, p …)``;
    on unit cost, the decision's reason (both costs per success, the interval, the guard)."""
    ab = look["ab"]
    if ab.get("metric") == "cost_per_success":
        return str(ab["reason"])
    return (
        f"effect {ab['effect']:+.4f} (95% always-valid interval "
        f"{ab['interval'][0]:+.4f} .. {ab['interval'][1]:+.4f}, p {ab['p_value']:.3g})"
    )
