"""A/B decisions with always-valid inference: the mixture sequential probability ratio test.

Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B Tests: Why it matters, and what to
do about it" (KDD; Operations Research 2022, "Always Valid Inference"), as Optimizely's
Stats Engine uses it. With the effect theta = mean_B - mean_A, its estimate d (the
difference of the arm means) and the estimate's variance V = s_A^2/n_A + s_B^2/n_B, a
normal mixing distribution theta ~ N(theta0, tau^2) gives the likelihood ratio

    Lambda(theta0) = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2)))

which is (approximately, through the normal approximation of d) a martingale under
H0: theta = theta0. By Ville's inequality P(ever Lambda >= 1/alpha) <= alpha, so

* the always-valid p-value is p_n = min over looks of min(1, 1/Lambda_n(0)) (the running
  minimum, kept in :class:`SequentialState`): stopping at the first p_n <= alpha keeps the
  false-positive rate at most alpha however often one looks;
* the confidence sequence at level 1 - alpha is {theta0 : Lambda_n(theta0) < 1/alpha},
  d -+ sqrt(2 V (V + tau^2) / tau^2 * (log(1/alpha) + log(sqrt((V + tau^2) / V)))),
  intersected over looks (valid, since every interval holds at once with probability
  1 - alpha); 0 leaves the sequence exactly when p_n <= alpha.

Proportions use the per-arm variance p(1-p) (Bernoulli); at p = 0 or 1 the variance uses
(x + 1/2) / (n + 1) instead so that it is never 0. Means take each arm's count, mean and
sample variance. The normal approximation needs enough samples: no decision is taken below
``min_samples`` per arm, and looks below it do not enter the state.

The mixing variance tau^2 is best set near the square of the effect one hopes to detect
(the likelihood ratio at the fixed-horizon sample size is largest for tau^2 a little under
theta^2). The default derives it from a relative minimum detectable effect:
tau = ``mde`` * |arm A's mean| at the first look with ``min_samples`` per arm, frozen in
the state from then on. See docs/statistics.md, "How to choose tau and min_samples".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from analysis.base import AnalysisError, check_count, check_level, check_real, fmt
from analysis.srm import SrmResult, check_srm

DEFAULT_ALPHA = 0.05
#: Relative minimum detectable effect the default tau is tuned to (+/-20% of arm A's mean).
DEFAULT_MDE = 0.2
#: Samples per arm before any decision (the spec's ``decision.min_samples`` overrides).
DEFAULT_MIN_SAMPLES = 1000


class ABVerdict(StrEnum):
    B_BETTER = "b_better"
    A_BETTER = "a_better"
    NO_DIFFERENCE_YET = "no_difference_yet"  # keep collecting
    INCONCLUSIVE = "inconclusive"  # too few samples, a sample ratio mismatch, or broken data


@dataclass(frozen=True)
class Arm:
    """One arm's observations: how many, their mean, and the per-observation variance."""

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        check_count(self.n, "arm n")
        check_real(self.mean, "arm mean")
        check_real(self.variance, "arm variance", minimum=0.0)

    @classmethod
    def proportion(cls, successes: int, trials: int, where: str = "arm") -> Arm:
        """A conversion arm: mean x/n, variance p(1-p), with p = (x + 1/2)/(n + 1) at 0 or n."""
        x = check_count(successes, f"{where} successes")
        n = check_count(trials, f"{where} trials")
        if x > n:
            raise AnalysisError(f"{where}: successes ({x}) exceed trials ({n})")
        if n == 0:
            return cls(0, 0.0, 0.0)
        p = x / n
        q = p if 0 < x < n else (x + 0.5) / (n + 1)
        return cls(n, p, q * (1 - q))


@dataclass(frozen=True)
class SequentialState:
    """What the test carries from look to look (store ``to_dict()`` as JSON after each look).

    ``looks``: decision-eligible looks folded in; ``p_value``: the running minimum;
    ``low``/``high``: the running intersection of the confidence intervals (``None`` =
    unbounded); ``tau2``: the mixing variance, frozen at the first eligible look.
    """

    looks: int = 0
    p_value: float = 1.0
    low: float | None = None
    high: float | None = None
    tau2: float | None = None

    def __post_init__(self) -> None:
        check_count(self.looks, "state.looks")
        p = check_real(self.p_value, "state.p_value", minimum=0.0)
        if p > 1:
            raise AnalysisError(f"state.p_value must be <= 1, got {p:g}")
        for name in ("low", "high"):
            if getattr(self, name) is not None:
                check_real(getattr(self, name), f"state.{name}")
        if self.tau2 is not None and check_real(self.tau2, "state.tau2") <= 0:
            raise AnalysisError(f"state.tau2 must be > 0, got {self.tau2:g}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "looks": self.looks,
            "p_value": self.p_value,
            "low": self.low,
            "high": self.high,
            "tau2": self.tau2,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "sequential state") -> SequentialState:
        if not isinstance(data, Mapping):
            raise AnalysisError(f"{where} must be a JSON object, got {type(data).__name__}")
        names = ("looks", "p_value", "low", "high", "tau2")
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise AnalysisError(f"{where}: unknown key(s) {', '.join(unknown)}")
        missing = [n for n in names if n not in data]
        if missing:
            raise AnalysisError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            return cls(**{n: data[n] for n in names})
        except AnalysisError as exc:
            raise AnalysisError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ABResult:
    """The decision at one look.

    ``effect`` is mean_B - mean_A; ``relative_effect`` divides it by mean_A (``None`` at
    0). ``p_value``, ``low``, ``high`` are the always-valid values over all eligible looks
    (the running minimum and intersection); ``look_*`` are this look's alone. ``state`` is
    what to store for the next look.
    """

    verdict: ABVerdict
    reason: str
    a: Arm
    b: Arm
    effect: float
    relative_effect: float | None
    p_value: float
    low: float
    high: float
    look_p_value: float
    look_low: float
    look_high: float
    alpha: float
    tau2: float | None
    state: SequentialState
    srm: SrmResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "n_a": self.a.n,
            "n_b": self.b.n,
            "mean_a": self.a.mean,
            "mean_b": self.b.mean,
            "effect": self.effect,
            "relative_effect": self.relative_effect,
            "p_value": self.p_value,
            "confidence_sequence": [_finite(self.low), _finite(self.high)],
            "alpha": self.alpha,
            "tau2": self.tau2,
            "srm": None
            if self.srm is None
            else {"p_value": self.srm.p_value, "mismatch": self.srm.mismatch},
            "state": self.state.to_dict(),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def log_likelihood_ratio(effect: float, variance: float, tau2: float, theta0: float = 0.0) -> float:
    """log Lambda(theta0) of the normal mixture SPRT (``variance`` and ``tau2`` > 0)."""
    return 0.5 * math.log(variance / (variance + tau2)) + (
        tau2 * (effect - theta0) ** 2 / (2.0 * variance * (variance + tau2))
    )


def half_width(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the 1 - alpha confidence interval {theta0 : Lambda(theta0) < 1/alpha}."""
    total = variance + tau2
    return math.sqrt(
        2.0 * variance * total / tau2 * (math.log(1.0 / alpha) + 0.5 * math.log(total / variance))
    )


def p_value_of(log_lambda: float) -> float:
    """min(1, 1/Lambda)."""
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def compare_proportions(
    a_successes: int,
    a_trials: int,
    b_successes: int,
    b_trials: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    tau2: float | None = None,
    mde: float = DEFAULT_MDE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    higher_is_better: bool = True,
    state: SequentialState | None = None,
    split: Sequence[float] | None = None,
) -> ABResult:
    """Decide between conversion rates at this look (cumulative counts per arm).

    ``split``: the intended weights of A and B (``[50, 50]``); given, a sample ratio
    mismatch of the trial counts makes the verdict INCONCLUSIVE.
    """
    a = Arm.proportion(a_successes, a_trials, "A")
    b = Arm.proportion(b_successes, b_trials, "B")
    return compare(
        a,
        b,
        alpha=alpha,
        tau2=tau2,
        mde=mde,
        min_samples=min_samples,
        higher_is_better=higher_is_better,
        state=state,
        split=split,
    )


def compare_means(
    a_n: int,
    a_mean: float,
    a_variance: float,
    b_n: int,
    b_mean: float,
    b_variance: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    tau2: float | None = None,
    mde: float = DEFAULT_MDE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    higher_is_better: bool = True,
    state: SequentialState | None = None,
    split: Sequence[float] | None = None,
) -> ABResult:
    """Decide between means at this look (count, mean, sample variance per arm)."""
    return compare(
        Arm(a_n, a_mean, a_variance),
        Arm(b_n, b_mean, b_variance),
        alpha=alpha,
        tau2=tau2,
        mde=mde,
        min_samples=min_samples,
        higher_is_better=higher_is_better,
        state=state,
        split=split,
    )


def default_tau2(a: Arm, b: Arm, mde: float) -> float | None:
    """(mde * |mean_A|)^2; arm A's spread stands in when its mean is 0. ``None`` when both
    arms are constant (nothing to scale by)."""
    scale = abs(a.mean) or math.sqrt((a.variance + b.variance) / 2.0)
    return (mde * scale) ** 2 if scale > 0 else None


def compare(
    a: Arm,
    b: Arm,
    *,
    alpha: float = DEFAULT_ALPHA,
    tau2: float | None = None,
    mde: float = DEFAULT_MDE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    higher_is_better: bool = True,
    state: SequentialState | None = None,
    split: Sequence[float] | None = None,
) -> ABResult:
    """The mSPRT decision for two arms; see the module docstring."""
    check_level(alpha, "alpha")
    check_count(min_samples, "min_samples")
    if check_real(mde, "mde") <= 0:
        raise AnalysisError(f"mde must be > 0, got {mde:g}")
    if tau2 is not None and check_real(tau2, "tau2") <= 0:
        raise AnalysisError(f"tau2 must be > 0, got {tau2:g}")
    state = state or SequentialState()
    if tau2 is not None and state.tau2 is not None and not math.isclose(tau2, state.tau2):
        raise AnalysisError(
            f"tau2 {tau2:g} differs from the {state.tau2:g} this test started with; "
            "tau2 cannot change during a test"
        )
    effect = b.mean - a.mean
    relative = effect / a.mean if a.mean else None
    mix = state.tau2 or tau2 or default_tau2(a, b, mde)
    variance = (a.variance / a.n if a.n else math.inf) + (b.variance / b.n if b.n else math.inf)
    if mix is not None and 0 < variance < math.inf:
        log_lr = log_likelihood_ratio(effect, variance, mix)
        look_p = p_value_of(log_lr)
        h = half_width(variance, mix, alpha)
        look_low, look_high = effect - h, effect + h
    else:
        look_p, look_low, look_high = 1.0, -math.inf, math.inf

    def result(
        verdict: ABVerdict, reason: str, new: SequentialState, srm: SrmResult | None = None
    ) -> ABResult:
        if new.looks:
            p, low = new.p_value, -math.inf if new.low is None else new.low
            high = math.inf if new.high is None else new.high
        else:
            p, low, high = look_p, look_low, look_high
        return ABResult(
            verdict,
            reason,
            a,
            b,
            effect,
            relative,
            p,
            low,
            high,
            look_p,
            look_low,
            look_high,
            alpha,
            new.tau2 or mix,
            new,
            srm,
        )

    srm = check_srm([a.n, b.n], list(split)) if split is not None else None
    if a.n < max(min_samples, 1) or b.n < max(min_samples, 1):
        return result(
            ABVerdict.INCONCLUSIVE,
            f"A has {a.n} samples and B {b.n}; no decision before min_samples "
            f"{min_samples} per arm",
            state,
            srm,
        )
    if srm is not None and srm.mismatch:
        return result(ABVerdict.INCONCLUSIVE, srm.reason, state, srm)
    if mix is None or not 0 < variance < math.inf:
        return result(
            ABVerdict.INCONCLUSIVE,
            "no variation in either arm: the normal approximation does not hold",
            state,
            srm,
        )
    low = look_low if state.low is None else max(state.low, look_low)
    high = look_high if state.high is None else min(state.high, look_high)
    new = replace(
        state,
        looks=state.looks + 1,
        p_value=min(state.p_value, look_p),
        low=low,
        high=high,
        tau2=mix,
    )
    level = f"{(1 - alpha) * 100:g}%"
    shown = (
        f"effect B - A {effect:+.4g}"
        + (f" ({relative:+.1%})" if relative is not None else "")
        + f", {level} confidence sequence [{fmt(low)}, {fmt(high)}], "
        f"always-valid p = {new.p_value:.3g}"
    )
    if low > high:
        return result(
            ABVerdict.INCONCLUSIVE,
            f"the confidence sequence is empty ({shown}): the effect moved during the test "
            "or the normal approximation fails; restart the test",
            new,
            srm,
        )
    if low > 0 or high < 0:
        b_higher = low > 0
        verdict = ABVerdict.B_BETTER if b_higher == higher_is_better else ABVerdict.A_BETTER
        who = "B" if verdict is ABVerdict.B_BETTER else "A"
        return result(verdict, f"{who} is better: {shown} <= alpha {alpha:g}", new, srm)
    return result(
        ABVerdict.NO_DIFFERENCE_YET,
        f"no difference yet, keep collecting: {shown} > alpha {alpha:g}",
        new,
        srm,
    )
