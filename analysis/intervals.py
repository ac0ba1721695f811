"""Confidence intervals for a proportion and for the difference of two proportions.

* Wilson's score interval (Wilson 1927): the set of p a two-sided score test does not
  reject. Unlike the Wald interval it behaves at 0 and at small n (0 errors in 200
  requests gives [0, 0.0188] at 95%, not [0, 0]). statsmodels' ``proportion_confint(...,
  method="wilson")`` and scipy's ``binomtest(...).proportion_ci(method="wilson")`` compute
  the same interval.
* Newcombe's hybrid score interval for p1 - p2 (Newcombe 1998, "Interval estimation for
  the difference between independent proportions", method 10): combines the two Wilson
  intervals; statsmodels' ``confint_proportions_2indep(..., method="newcomb")``.
"""

from __future__ import annotations

import math

from analysis.base import AnalysisError, check_count
from analysis.distributions import z_two_sided


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes / trials`` (``trials`` must be >= 1)."""
    x = check_count(successes, "successes")
    n = check_count(trials, "trials")
    if n == 0:
        raise AnalysisError("a proportion needs at least one trial, got 0")
    if x > n:
        raise AnalysisError(f"successes ({x}) exceed trials ({n})")
    z = z_two_sided(confidence)
    p = x / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return low, high


def newcombe(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p1 - p2`` (each arm needs >= 1 trial)."""
    l1, u1 = wilson(successes_1, trials_1, confidence)
    l2, u2 = wilson(successes_2, trials_2, confidence)
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)
