"""Wilson and Newcombe intervals against published tables and scipy."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from analysis.base import AnalysisError
from analysis.intervals import newcombe, wilson

# Newcombe (1998a), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (score interval without continuity correction).
WILSON_PUBLISHED = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]

# Newcombe (1998b), "Interval estimation for the difference between independent
# proportions", Table II, method 10 (hybrid score).
NEWCOMBE_PUBLISHED = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0)),
    ((10, 10, 0, 10), (0.6075, 1.0)),
]


@pytest.mark.parametrize(("counts", "published"), WILSON_PUBLISHED)
def test_wilson_reproduces_newcombes_table(
    counts: tuple[int, int], published: tuple[float, float]
) -> None:
    low, high = wilson(*counts)
    assert (round(low, 4), round(high, 4)) == published


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_PUBLISHED)
def test_newcombe_difference_reproduces_the_published_table(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    low, high = newcombe(*counts)
    assert (round(low, 4), round(high, 4)) == published


@pytest.mark.parametrize("n", [1, 2, 7, 30, 200, 1000, 25_000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy_on_a_grid(n: int, confidence: float) -> None:
    for x in sorted({0, 1, n // 7, n // 2, n - 1, n}):
        expected = stats.binomtest(x, n).proportion_ci(confidence, method="wilson")
        low, high = wilson(x, n, confidence)
        assert low == pytest.approx(expected.low, abs=1e-12)
        assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_by_hand_for_one_error_in_two_hundred() -> None:
    z = 1.959963984540054
    n, p = 200, 1 / 200
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson(1, 200) == pytest.approx((centre - half, centre + half), abs=1e-15)
    # zero successes: the upper bound is z^2 / (n + z^2)
    assert wilson(0, 200) == (0.0, pytest.approx(z * z / (200 + z * z), abs=1e-15))


def test_intervals_refuse_impossible_counts() -> None:
    with pytest.raises(AnalysisError, match="at least one trial"):
        wilson(0, 0)
    with pytest.raises(AnalysisError, match=r"successes \(5\) exceed trials \(4\)"):
        wilson(5, 4)
    with pytest.raises(AnalysisError, match="whole number"):
        wilson(1.5, 4)  # type: ignore[arg-type]
