"""The normal and chi-square distributions with the standard library alone.

``norm_cdf``/``norm_sf`` use ``math.erfc`` (accurate far into the tails, unlike
``1 - cdf``); ``norm_ppf`` is the standard library's ``statistics.NormalDist``
(Wichura's AS241, about 1e-16). ``chi2_sf`` is exact for whole degrees of freedom
through the closed forms of the regularised upper incomplete gamma function
Q(k/2, x/2) (Abramowitz & Stegun 26.4.4 and 26.4.5). Tests compare each with scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from analysis.base import AnalysisError, check_level, check_real

_SQRT2 = math.sqrt(2.0)
_STANDARD = NormalDist()


def norm_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_sf(x: float) -> float:
    """P(Z > x) for a standard normal Z (the survival function)."""
    return 0.5 * math.erfc(x / _SQRT2)


def two_sided_p(z: float) -> float:
    """P(|Z| >= |z|)."""
    return math.erfc(abs(z) / _SQRT2)


def norm_ppf(p: float) -> float:
    """The standard normal quantile: ``norm_cdf(norm_ppf(p)) == p``."""
    return _STANDARD.inv_cdf(check_level(p, "normal quantile probability"))


def z_two_sided(confidence: float) -> float:
    """The critical value of a two-sided interval: 1.959964 for 0.95."""
    return norm_ppf(0.5 + check_level(confidence, "confidence level") / 2.0)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X chi-square with ``df`` (a whole number >= 1) degrees of freedom.

    With y = x/2: for even df, Q = e^-y * sum_{i<df/2} y^i / i!; for odd df,
    Q = erfc(sqrt y) + sum_{i<(df-1)/2} e^-y * y^(i+1/2) / Gamma(i+3/2). Each term is
    formed in log space, so nothing overflows; the terms are positive, so nothing cancels.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise AnalysisError(
            f"chi-square degrees of freedom must be a whole number >= 1, got {df!r}"
        )
    x = check_real(x, "chi-square statistic")
    if x <= 0.0:
        return 1.0
    y = x / 2.0
    log_y = math.log(y)
    if df % 2 == 0:
        total = 0.0
        for i in range(df // 2):
            total += math.exp(i * log_y - y - math.lgamma(i + 1.0))
    else:
        total = math.erfc(math.sqrt(y))
        for i in range((df - 1) // 2):
            a = i + 0.5
            total += math.exp(a * log_y - y - math.lgamma(a + 1.0))
    return min(total, 1.0)
