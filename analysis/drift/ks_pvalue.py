"""The two-sided two-sample Kolmogorov-Smirnov p-value, P(D >= d), with the standard library.

As ``scipy.stats.ks_2samp(method="auto")``: exact when both samples have at most
:data:`EXACT_MAX_N` values (and the count stays under :data:`EXACT_MAX_WORK` steps), by
lattice-path counting (Hodges 1958: the paths from (0, 0) to (m, n) that stay strictly
inside the band |x/m - y/n| < d; the recursion for 1 - p of Viehmann 2021, arXiv:2102.08037,
which keeps the numbers in range), and for equal sizes the closed alternating sum of
Gnedenko-Korolyuk. These equal scipy's to rounding.

Past that size scipy evaluates the one-sample distribution of D at n = mn/(m+n); mlx uses
the Kolmogorov limit with Stephens' small-sample correction, lambda = (sqrt(n) + 0.12 +
0.11/sqrt(n)) * d (Stephens 1970; Numerical Recipes 14.3). The two agree within 0.005 over
the range where a decision at 0.05 is made (tests/analysis/test_drift_raw.py).
"""

from __future__ import annotations

import math

#: Up to this many values in each sample the p-value is exact (scipy's ``MAX_AUTO_N``).
EXACT_MAX_N = 10_000
#: Lattice steps the exact count may take (about a second each million in CPython). Past it
#: the band is so wide that d is far in the tail: for samples of at most 1000 and 10000 values
#: the switch happens at d >= 0.15, where both p-values are below 1e-15.
EXACT_MAX_WORK = 3_000_000


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """P(D_{n1,n2} >= d) for the two-sided statistic ``d`` of samples of ``n1`` and ``n2``."""
    if n1 < 1 or n2 < 1:
        raise ValueError("the KS p-value needs two non-empty samples")
    if max(n1, n2) <= EXACT_MAX_N and exact_work(d, n1, n2) <= EXACT_MAX_WORK:
        return exact_pvalue(d, n1, n2)
    return asymptotic_pvalue(d, n1, n2)


def exact_work(d: float, n1: int, n2: int) -> int:
    """Lattice steps :func:`exact_pvalue` takes (equal sizes: the closed form, a few)."""
    if n1 == n2:
        return n1
    m, n = max(n1, n2), min(n1, n2)
    mg = m // math.gcd(n1, n2)
    return m * min(2 * lattice_h(d, n1, n2) // mg + 2, n + 1)


def lattice_h(d: float, n1: int, n2: int) -> int:
    """``d`` as a whole number of lattice steps: d = h / lcm(n1, n2)."""
    return round(d * (n1 // math.gcd(n1, n2)) * n2)


def exact_pvalue(d: float, n1: int, n2: int) -> float:
    h = lattice_h(d, n1, n2)
    if h <= 0:
        return 1.0
    if n1 == n2:
        return _clip(_outside_square(n1, h))
    return _clip(_outside_band(n1, n2, math.gcd(n1, n2), h))


def _outside_square(n: int, h: int) -> float:
    """P(D_{n,n} >= h/n) = 2 * sum_k (-1)^(k-1) C(2n, n-kh) / C(2n, n), Horner-like."""
    total = 0.0
    k = n // h
    while k >= 0:
        term = 1.0
        for j in range(h):
            term = (n - k * h - j) * term / (n + k * h + j + 1)
        total = term * (1.0 - total)
        k -= 1
    return 2 * total


def _outside_band(m: int, n: int, g: int, h: int) -> float:
    """1 - (the share of lattice paths strictly inside |nx/g - my/g| < h)."""
    if m < n:
        m, n = n, m
    mg, ng = m // g, n // g
    low, high = 0, min(-(-h // mg), n + 1)
    length = high - low
    column = [1.0] * min(2 * high + 2, n + 1)
    for j in range(low, high):
        column[j] = 0.0
    for i in range(1, m + 1):
        last_low, last_length = low, length
        low = min(max((ng * i - h) // mg + 1, 0), n)
        high = min(-(-(ng * i + h) // mg), n + 1)
        if high <= low:
            return 1.0
        value = 0.0 if low == 0 else 1.0
        for jj in range(high - low):
            j = jj + low
            value = (column[jj + low - last_low] * i + value * j) / (i + j)
            column[jj] = value
        length = high - low
        if last_length > length:
            for jj in range(length, last_length):
                column[jj] = 1.0
    return column[high - low - 1]


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (two series, each used where it converges)."""
    if x <= 0.0:
        return 1.0
    if x < 1.18:
        # 1 - sqrt(2 pi)/x * sum_k exp(-(2k-1)^2 pi^2 / (8 x^2))
        w = -(math.pi**2) / (8 * x * x)
        total = sum(math.exp((2 * k - 1) ** 2 * w) for k in range(1, 8))
        return 1.0 - math.sqrt(2 * math.pi) / x * total
    return 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))


def asymptotic_pvalue(d: float, n1: int, n2: int) -> float:
    en = n1 * n2 / (n1 + n2)
    root = math.sqrt(en)
    return _clip(kolmogorov_sf((root + 0.12 + 0.11 / root) * d))


def _clip(p: float) -> float:
    return min(max(p, 0.0), 1.0)
