"""A/B on unit cost: is the candidate's cost per successful outcome lower than stable's,
without its success rate dropping by more than a margin?

Cost per success of an arm is R = (spend / answers) / (successes / trials): the mean cost of
an answer over the success rate (feedback scoring > 0 among the answers that got feedback).
When every answer gets feedback this is spend / successes. No success: R is undefined, never
0 — the decision is inconclusive.

The test works on log R (a ratio of two means: the delta method makes log R's estimate close
to normal with variance Var(log cbar) + Var(log phat) = cv^2 / n + (1 - p) / (m p)). The
per-answer cost spread cv^2 (variance / mean^2) is not in the log's per-variant sums, so it is
0 unless given: the interval then carries the outcome's noise alone, exact when each arm's
answers cost the same (one model, one prompt, similar lengths) and too narrow when their
costs vary a lot (docs/rollouts.md says so). The difference log R_B - log R_A is fed to the
same mSPRT as the outcome A/B (:func:`analysis.sequential.compare`), always valid under
repeated looks, with tau = log(1 + mde): a relative change of ``mde`` in cost per success.

The quality guard is the sequential test on the success rates (the outcome A/B's
:func:`compare_proportions`): its always-valid interval for p_B - p_A must lie above
``-max_drop`` (the candidate is not worse by more than ``max_drop``) for the candidate to win;
entirely below it, the candidate lost. Its mixing variance is max_drop^2 (the mSPRT is most
sensitive near effects of size tau: here, the margin). A two-sided 1 - alpha interval used
one-sidedly errs on the safe side (its one-sided level is 1 - alpha/2).

Ending rules (``decide_unit_cost``): guard violated → A (stable) wins; candidate costlier per
success → A wins; candidate cheaper per success and guard holds → B wins; otherwise keep
collecting. Too few samples or no success yet → keep collecting; a sample-ratio mismatch or a
spend of $0 (every answer unpriced: cost is null, never 0) → inconclusive, stop and ask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.base import AnalysisError, check_count, check_level, check_real
from analysis.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_MDE,
    ABResult,
    ABVerdict,
    Arm,
    SequentialState,
    compare,
    compare_proportions,
)
from analysis.srm import check_srm


@dataclass(frozen=True)
class CostArm:
    """One arm since the test began: ``answers`` given, their total ``cost_usd``, and the
    outcome's ``successes`` among ``trials`` (answers that got feedback)."""

    answers: int
    cost_usd: float
    trials: int
    successes: int
    cost_cv2: float = 0.0  # per-answer cost variance / mean^2, when known

    def __post_init__(self) -> None:
        check_count(self.answers, "answers")
        check_real(self.cost_usd, "cost_usd", minimum=0.0)
        check_count(self.trials, "trials")
        check_count(self.successes, "successes")
        check_real(self.cost_cv2, "cost_cv2", minimum=0.0)
        if self.successes > self.trials:
            raise AnalysisError(f"successes ({self.successes}) exceed trials ({self.trials})")

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def cost_per_success(self) -> float | None:
        """(cost / answers) / (successes / trials); ``None`` (never 0) with no success."""
        if not self.successes or not self.answers or not self.cost_usd:
            return None
        return (self.cost_usd / self.answers) / (self.successes / self.trials)

    def log_arm(self) -> Arm:
        """log R as an :class:`Arm` over ``trials``: per-observation variance m * Var(log R)."""
        r = self.cost_per_success
        assert r is not None
        p = self.successes / self.trials
        q = p if self.successes < self.trials else (self.successes + 0.5) / (self.trials + 1)
        var = self.cost_cv2 / self.answers + (1 - q) / (self.trials * q)
        return Arm(self.trials, math.log(r), self.trials * var)


@dataclass(frozen=True)
class UnitCostState:
    """The two sequential tests' states, stored between looks (``to_dict()`` as JSON)."""

    cost: SequentialState = field(default_factory=SequentialState)
    guard: SequentialState = field(default_factory=SequentialState)

    def to_dict(self) -> dict[str, Any]:
        return {"cost": self.cost.to_dict(), "guard": self.guard.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "unit cost state") -> UnitCostState:
        if not isinstance(data, Mapping) or set(data) != {"cost", "guard"}:
            raise AnalysisError(f"{where} must be a JSON object with keys cost and guard")
        return cls(
            SequentialState.from_dict(data["cost"], f"{where}.cost"),
            SequentialState.from_dict(data["guard"], f"{where}.guard"),
        )


@dataclass(frozen=True)
class UnitCostResult:
    """The decision at one look. ``keep_collecting``: an INCONCLUSIVE or NO_DIFFERENCE_YET
    that more data can settle (too few samples, no success yet); False on an INCONCLUSIVE
    that waiting does not fix (a sample-ratio mismatch, unpriced spend)."""

    verdict: ABVerdict
    reason: str
    a: CostArm
    b: CostArm
    keep_collecting: bool
    state: UnitCostState
    cost: ABResult | None = None
    guard: ABResult | None = None

    @property
    def relative_change(self) -> float | None:
        """R_B / R_A - 1 (negative: the candidate is cheaper per success)."""
        return None if self.cost is None else math.expm1(self.cost.effect)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The always-valid interval of R_B / R_A - 1."""
        if self.cost is None:
            return None
        return _rel(self.cost.low), _rel(self.cost.high)


def _rel(log_ratio: float) -> float:
    if log_ratio == math.inf:
        return math.inf
    return math.expm1(log_ratio) if log_ratio > -math.inf else -1.0


def decide_unit_cost(
    a: CostArm,
    b: CostArm,
    *,
    max_drop: float,
    alpha: float = DEFAULT_ALPHA,
    min_samples: int = 1000,
    mde: float = DEFAULT_MDE,
    state: UnitCostState | None = None,
    split: Sequence[float] | None = None,
) -> UnitCostResult:
    """Stable (``a``) against the candidate (``b``) on cost per success, with the success
    rate guard; see the module docstring for the rules."""
    check_level(alpha, "alpha")
    check_count(min_samples, "min_samples")
    if not 0 <= check_real(max_drop, "max_drop") <= 1:
        raise AnalysisError(f"max_drop must be within [0, 1], got {max_drop:g}")
    if check_real(mde, "mde") <= 0:
        raise AnalysisError(f"mde must be > 0, got {mde:g}")
    state = state or UnitCostState()

    def end(verdict: ABVerdict, reason: str, wait: bool, **kw: Any) -> UnitCostResult:
        new = UnitCostState(
            kw["cost"].state if kw.get("cost") else state.cost,
            kw["guard"].state if kw.get("guard") else state.guard,
        )
        return UnitCostResult(verdict, reason, a, b, wait, new, **kw)

    waiting = _not_ready(a, b, min_samples, split)
    if waiting is not None:
        return end(ABVerdict.INCONCLUSIVE, *waiting)
    guard = compare_proportions(
        a.successes,
        a.trials,
        b.successes,
        b.trials,
        alpha=alpha,
        tau2=max_drop**2 if max_drop > 0 else None,  # tuned to the margin it judges
        min_samples=min_samples,
        state=state.guard,
    )
    cost = compare(
        a.log_arm(),
        b.log_arm(),
        alpha=alpha,
        tau2=math.log1p(mde) ** 2,
        min_samples=min_samples,
        higher_is_better=False,
        state=state.cost,
    )
    ra, rb = a.cost_per_success, b.cost_per_success
    pct = f"{(1 - alpha) * 100:g}%"
    lo, hi = _rel(cost.low), _rel(cost.high)
    costs = (
        f"cost per success ${ra:.4g} (stable) vs ${rb:.4g} (candidate), "
        f"{math.expm1(cost.effect):+.1%}"
        f" ({pct} always-valid interval {lo:+.1%} .. {hi:+.1%})"
    )
    rates = (
        f"success rate {a.success_rate:.3f} vs {b.success_rate:.3f}, change "
        f"{guard.effect:+.4f} ({pct} interval {guard.low:+.4f} .. {guard.high:+.4f}, "
        f"may drop at most {max_drop:g})"
    )
    if guard.high < -max_drop:
        return end(
            ABVerdict.A_BETTER,
            f"the quality guard failed: the success rate dropped by more than {max_drop:g}: "
            f"{rates}",
            False,
            cost=cost,
            guard=guard,
        )
    for sub in (cost, guard):
        if sub.verdict is ABVerdict.INCONCLUSIVE:  # an empty confidence sequence
            return end(ABVerdict.INCONCLUSIVE, sub.reason, False, cost=cost, guard=guard)
    if cost.verdict is ABVerdict.A_BETTER:
        return end(
            ABVerdict.A_BETTER,
            f"the candidate costs more per success: {costs}; {rates}",
            False,
            cost=cost,
            guard=guard,
        )
    if cost.verdict is ABVerdict.B_BETTER and guard.low > -max_drop:
        return end(
            ABVerdict.B_BETTER,
            f"the candidate is cheaper per success and its quality holds: {costs}; {rates}",
            False,
            cost=cost,
            guard=guard,
        )
    why = (
        "cheaper per success, the guard not settled yet"
        if cost.verdict is ABVerdict.B_BETTER
        else "no difference in cost per success yet"
    )
    return end(
        ABVerdict.NO_DIFFERENCE_YET,
        f"{why}, keep collecting: {costs}; {rates}",
        True,
        cost=cost,
        guard=guard,
    )


def _not_ready(
    a: CostArm, b: CostArm, min_samples: int, split: Sequence[float] | None
) -> tuple[str, bool] | None:
    """Why no comparison can be made at this look, and whether more data can fix it."""
    least = max(min_samples, 1)
    if a.trials < least or b.trials < least:
        return (
            f"stable has {a.trials} outcomes and the candidate {b.trials}; no decision "
            f"before min_samples {min_samples} per arm",
            True,
        )
    if split is not None:
        srm = check_srm([a.trials, b.trials], list(split))
        if srm.mismatch:
            return srm.reason, False
    for name, arm in (("stable", a), ("the candidate", b)):
        if arm.answers and arm.cost_usd == 0:
            return (
                f"{name}'s spend is $0 over {arm.answers} answers: its answers are unpriced "
                "(cost null, never 0), so cost per success cannot be compared; give the "
                "model a price",
                False,
            )
    for name, arm in (("stable", a), ("the candidate", b)):
        if not arm.successes:
            return (
                f"{name} has no success in {arm.trials} outcomes: cost per success is "
                "undefined, keep collecting",
                True,
            )
    return None
