"""Exact statistics from raw values, for small references (the profile keeps at most
1000 reference values): the two-sample KS test and the Wasserstein-1 distance.

Both walk the two sorted samples once. ``ks_2samp`` forms the statistic from whole counts
(|c1*n2 - c2*n1| / (n1*n2)) so it lands exactly on scipy's lattice value; ``wasserstein``
is scipy's ``_cdf_distance`` with p = 1: the sum of |U(x) - V(x)| * (gap to the next value)
over the pooled sorted values, summed with ``math.fsum``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from analysis.base import AnalysisError
from analysis.drift.ks_pvalue import ks_pvalue


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float


def _sorted(values: Sequence[float], which: str) -> list[float]:
    if not values:
        raise AnalysisError(f"the {which} sample is empty")
    return sorted(float(v) for v in values)


def _steps(a: list[float], b: list[float]) -> list[tuple[float, int, int]]:
    """Each distinct pooled value with the counts of ``a`` and ``b`` at or below it."""
    out: list[tuple[float, int, int]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        x = min(a[i] if i < len(a) else math.inf, b[j] if j < len(b) else math.inf)
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        out.append((x, i, j))
    return out


def ks_2samp(reference: Sequence[float], current: Sequence[float]) -> KsResult:
    """The two-sided two-sample KS statistic and p-value (as ``scipy.stats.ks_2samp``)."""
    a, b = _sorted(reference, "reference"), _sorted(current, "current")
    n1, n2 = len(a), len(b)
    widest = max(abs(c1 * n2 - c2 * n1) for _, c1, c2 in _steps(a, b))
    d = widest / (n1 * n2)
    return KsResult(d, ks_pvalue(d, n1, n2))


def wasserstein(reference: Sequence[float], current: Sequence[float]) -> float:
    """The Wasserstein-1 distance (as ``scipy.stats.wasserstein_distance``)."""
    a, b = _sorted(reference, "reference"), _sorted(current, "current")
    n1, n2 = len(a), len(b)
    steps = _steps(a, b)
    return math.fsum(
        abs(c1 / n1 - c2 / n2) * (steps[k + 1][0] - x) for k, (x, c1, c2) in enumerate(steps[:-1])
    )


def norm(std: float | None) -> float:
    """Evidently's normaliser: the reference's population std, at least 0.001."""
    return max(std or 0.0, 0.001)
