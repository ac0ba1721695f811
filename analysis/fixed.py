"""Fixed-horizon tests and sample sizes: the baseline the sequential test is measured against.

These are valid only when looked at **once**, at a sample size fixed in advance. Peeking at
them repeatedly and stopping at the first p < alpha inflates the false-positive rate far
past alpha (about 25% for 20 looks at alpha = 0.05; Johari et al. 2017): mlx decides A/B
tests with :mod:`analysis.sequential` and keeps these to size experiments and to compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.base import AnalysisError, check_count, check_level, check_real
from analysis.distributions import norm_ppf, two_sided_p


@dataclass(frozen=True)
class ZTest:
    effect: float  # B - A
    z: float
    p_value: float  # two-sided


def z_test_proportions(
    a_successes: int, a_trials: int, b_successes: int, b_trials: int, *, pooled: bool = True
) -> ZTest:
    """Two-proportion z-test of p_B - p_A; ``pooled``: the variance under H0 (equal to
    Pearson's chi-square on the 2x2 table without continuity correction)."""
    xa, na = check_count(a_successes, "a_successes"), check_count(a_trials, "a_trials")
    xb, nb = check_count(b_successes, "b_successes"), check_count(b_trials, "b_trials")
    if na == 0 or nb == 0 or xa > na or xb > nb:
        raise AnalysisError(f"z-test needs 0 <= successes <= trials > 0, got {xa}/{na}, {xb}/{nb}")
    pa, pb = xa / na, xb / nb
    if pooled:
        p = (xa + xb) / (na + nb)
        variance = p * (1 - p) * (1 / na + 1 / nb)
    else:
        variance = pa * (1 - pa) / na + pb * (1 - pb) / nb
    return _z(pb - pa, variance)


def z_test_means(
    a_n: int, a_mean: float, a_variance: float, b_n: int, b_mean: float, b_variance: float
) -> ZTest:
    """Two-sample z-test of mean_B - mean_A with per-arm sample variances (Welch's
    statistic, judged against the normal: the large-sample form)."""
    na, nb = check_count(a_n, "a_n"), check_count(b_n, "b_n")
    if na == 0 or nb == 0:
        raise AnalysisError(f"z-test needs observations in both arms, got {na} and {nb}")
    va = check_real(a_variance, "a_variance", minimum=0.0)
    vb = check_real(b_variance, "b_variance", minimum=0.0)
    effect = check_real(b_mean, "b_mean") - check_real(a_mean, "a_mean")
    return _z(effect, va / na + vb / nb)


def _z(effect: float, variance: float) -> ZTest:
    if variance <= 0:
        return ZTest(
            effect,
            0.0 if effect == 0 else math.copysign(math.inf, effect),
            1.0 if effect == 0 else 0.0,
        )
    z = effect / math.sqrt(variance)
    return ZTest(effect, z, two_sided_p(z))


def sample_size_proportions(
    p_a: float, p_b: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Per-arm size of a fixed-horizon two-sided two-proportion z-test (pooled variance
    under H0, unpooled under H1; Fleiss, Levin & Paik, "Statistical Methods for Rates and
    Proportions", 4.14): 5% -> 6% at alpha 0.05, power 0.8 needs 8,158 per arm."""
    for name, value in (("p_a", p_a), ("p_b", p_b)):
        check_level(value, name)
    check_level(alpha, "alpha")
    check_level(power, "power")
    if p_a == p_b:
        raise AnalysisError("sample size: p_a and p_b are equal; there is no effect to detect")
    mean = (p_a + p_b) / 2
    z_alpha = norm_ppf(1 - alpha / 2)
    z_power = norm_ppf(power)
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        p_a * (1 - p_a) + p_b * (1 - p_b)
    )
    return math.ceil(root**2 / (p_b - p_a) ** 2)
