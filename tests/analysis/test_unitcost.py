"""A/B on cost per success with a success-rate guard: each ending rule from a table, the
delta-method variance against a simulation, and the false-promotion rate under repeated looks.

Simulations use a seeded numpy RNG; tolerances are binomial (3 standard errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.base import AnalysisError
from analysis.sequential import ABVerdict
from analysis.unitcost import CostArm, UnitCostState, decide_unit_cost

# stable: a large model at $0.010 an answer; the candidate: a small one at $0.004
BIG, SMALL = 0.010, 0.004


def arm(n: int, price: float, successes: int, trials: int | None = None) -> CostArm:
    return CostArm(
        answers=n, cost_usd=n * price, trials=n if trials is None else trials, successes=successes
    )


CASES = [
    # (name, stable, candidate, split, verdict, keep_collecting, words in the reason)
    (
        "cheaper and quality holds: promote",
        arm(12000, BIG, 9600),
        arm(12000, SMALL, 9590),
        None,
        ABVerdict.B_BETTER,
        False,
        "cheaper per success and its quality holds",
    ),
    (
        "costlier per success: stable wins",
        arm(4000, SMALL, 3200),
        arm(4000, BIG, 3200),
        None,
        ABVerdict.A_BETTER,
        False,
        "costs more per success",
    ),
    (
        "cheaper but the success rate fell 10 points: guard fails",
        arm(4000, BIG, 3200),
        arm(4000, SMALL, 2800),
        None,
        ABVerdict.A_BETTER,
        False,
        "quality guard failed",
    ),
    (
        "cheaper, guard not yet settled: keep collecting",
        arm(1500, BIG, 1200),
        arm(1500, SMALL, 1185),
        None,
        ABVerdict.NO_DIFFERENCE_YET,
        True,
        "guard not settled yet",
    ),
    (
        "same cost per success: keep collecting",
        arm(2000, BIG, 1600),
        arm(2000, BIG, 1600),
        None,
        ABVerdict.NO_DIFFERENCE_YET,
        True,
        "no difference in cost per success yet",
    ),
    (
        "too few outcomes: keep collecting",
        arm(500, BIG, 400),
        arm(500, SMALL, 400),
        None,
        ABVerdict.INCONCLUSIVE,
        True,
        "no decision before min_samples 1000",
    ),
    (
        "no success on the candidate: undefined, never 0",
        arm(1200, BIG, 900),
        arm(1200, SMALL, 0),
        None,
        ABVerdict.INCONCLUSIVE,
        True,
        "cost per success is undefined",
    ),
    (
        "candidate's spend all unpriced: stop and say why",
        arm(1200, BIG, 900),
        arm(1200, 0.0, 900),
        None,
        ABVerdict.INCONCLUSIVE,
        False,
        "the candidate's spend is $0 over 1200 answers: its answers are unpriced",
    ),
    (
        "a 70/30 log of a 50/50 split: sample-ratio mismatch",
        arm(7000, BIG, 5600),
        arm(3000, SMALL, 2400),
        [50, 50],
        ABVerdict.INCONCLUSIVE,
        False,
        "sample ratio mismatch",
    ),
]


@pytest.mark.parametrize(
    ("a", "b", "split", "verdict", "wait", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_ending_rule(
    a: CostArm, b: CostArm, split: list[int] | None, verdict: ABVerdict, wait: bool, words: str
) -> None:
    r = decide_unit_cost(a, b, max_drop=0.02, min_samples=1000, split=split)
    assert r.verdict is verdict, r.reason
    assert r.keep_collecting is wait
    assert words in r.reason


def test_the_decision_reports_cost_per_success_and_its_interval() -> None:
    r = decide_unit_cost(arm(12000, BIG, 9600), arm(12000, SMALL, 9590), max_drop=0.02)
    assert r.a.cost_per_success == pytest.approx(0.0125)
    assert r.b.cost_per_success == pytest.approx(12000 * SMALL / 9590)
    assert r.b.cost_per_success is not None and r.relative_change is not None
    assert r.relative_change == pytest.approx(r.b.cost_per_success / 0.0125 - 1)
    assert r.interval is not None
    low, high = r.interval
    assert low < r.relative_change < high < 0


def test_no_success_is_none_never_zero() -> None:
    assert arm(10, BIG, 0).cost_per_success is None
    assert CostArm(answers=10, cost_usd=0.0, trials=10, successes=5).cost_per_success is None


def test_cost_per_success_scales_spend_to_the_answers_with_feedback() -> None:
    # 1000 answers cost $10; 500 got feedback, 250 successes: $0.01 / 0.5 = $0.02 a success
    assert CostArm(1000, 10.0, 500, 250).cost_per_success == pytest.approx(0.02)


def test_state_round_trips_and_carries_between_looks() -> None:
    r = decide_unit_cost(arm(2000, BIG, 1600), arm(2000, BIG, 1600), max_drop=0.02)
    state = UnitCostState.from_dict(r.state.to_dict())
    assert state == r.state and state.cost.looks == 1 and state.guard.looks == 1
    with pytest.raises(AnalysisError, match="keys cost and guard"):
        UnitCostState.from_dict({"looks": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_drop": 1.5}, "max_drop must be within"),
        ({"max_drop": 0.02, "alpha": 0.0}, "alpha"),
        ({"max_drop": 0.02, "mde": 0.0}, "mde must be > 0"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        decide_unit_cost(arm(10, BIG, 5), arm(10, BIG, 5), **kwargs)  # type: ignore[arg-type]


def test_bad_arms_are_named() -> None:
    with pytest.raises(AnalysisError, match=r"successes .* exceed trials"):
        CostArm(10, 1.0, 5, 6)
    with pytest.raises(AnalysisError, match="cost_usd"):
        CostArm(10, -1.0, 5, 1)


def test_delta_method_variance_matches_a_simulation() -> None:
    """Var(log R) from the formula against the spread of log R over simulated arms whose
    answers cost a random amount (cost_cv2 given) and succeed with p."""
    rng = np.random.default_rng(22)
    n, p, sims = 2000, 0.3, 4000
    mean, sd = 0.01, 0.004  # per-answer cost: gamma with this mean and sd
    shape = (mean / sd) ** 2
    costs = rng.gamma(shape, mean / shape, size=(sims, n)).sum(axis=1)
    wins = rng.binomial(n, p, size=sims)
    logs = np.log((costs / n) / (wins / n))
    a = CostArm(n, n * mean, n, round(n * p), cost_cv2=(sd / mean) ** 2)
    predicted = a.log_arm().variance / a.log_arm().n
    observed = float(np.var(logs))
    # the sample variance of `sims` near-normal values: relative sd sqrt(2 / sims) ~ 2.2%
    assert observed == pytest.approx(predicted, rel=3 * math.sqrt(2 / sims))


def test_false_promotion_rate_stays_within_alpha_under_repeated_looks() -> None:
    """Same price, same success rate: the candidate is promoted (or stable kept) on a
    difference that is not there at most alpha of the time, looking every 400 outcomes."""
    rng = np.random.default_rng(20261208)
    sims, looks, step, p = 300, 10, 400, 0.2
    wa = rng.binomial(step, p, size=(sims, looks)).cumsum(axis=1)
    wb = rng.binomial(step, p, size=(sims, looks)).cumsum(axis=1)
    decided = 0
    for s in range(sims):
        state = None
        for k in range(looks):
            n = step * (k + 1)
            r = decide_unit_cost(
                arm(n, BIG, int(wa[s, k])),
                arm(n, BIG, int(wb[s, k])),
                max_drop=0.02,
                min_samples=400,
                state=state,
            )
            state = r.state
            if r.verdict in (ABVerdict.A_BETTER, ABVerdict.B_BETTER):
                decided += 1
                break
    rate = decided / sims
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / sims), rate


def test_a_cheaper_equally_good_candidate_is_found() -> None:
    """40% cheaper a success, same success rate: promoted within 20 looks of 800 in most
    runs (the 0.02 guard needs about 10k outcomes a side)."""
    rng = np.random.default_rng(3)
    sims, looks, step, p = 100, 20, 800, 0.8
    wa = rng.binomial(step, p, size=(sims, looks)).cumsum(axis=1)
    wb = rng.binomial(step, p, size=(sims, looks)).cumsum(axis=1)
    promoted = 0
    for s in range(sims):
        state = None
        for k in range(looks):
            n = step * (k + 1)
            r = decide_unit_cost(
                arm(n, BIG, int(wa[s, k])),
                arm(n, 0.6 * BIG, int(wb[s, k])),
                max_drop=0.02,
                min_samples=400,
                state=state,
            )
            state = r.state
            if r.verdict is not ABVerdict.NO_DIFFERENCE_YET and not r.keep_collecting:
                promoted += r.verdict is ABVerdict.B_BETTER
                break
    assert promoted >= 90, promoted
