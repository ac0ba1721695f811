"""Exact raw-value KS and Wasserstein against scipy, to 1e-9 (table-driven sizes and shapes)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.base import AnalysisError
from analysis.drift.ks_pvalue import asymptotic_pvalue, exact_work, ks_pvalue
from analysis.drift.raw import ks_2samp, wasserstein

CASES = [
    # (n_ref, n_cur, shift, scale, discrete)
    (5, 7, 0.0, 1.0, False),
    (30, 30, 0.0, 1.0, False),
    (30, 30, 1.0, 1.0, False),
    (100, 37, 0.3, 1.0, False),
    (200, 1000, 0.0, 1.5, False),
    (500, 500, 0.2, 1.0, False),
    (1000, 3000, 0.1, 1.0, False),
    (1000, 10_000, 0.05, 1.0, False),
    (1000, 10_000, 0.5, 1.0, False),  # a wide band: past the exact count's work limit
    (1000, 2000, 0.0, 1.0, True),  # ties
    (300, 700, 1.0, 1.0, True),
]


def _samples(n1: int, n2: int, shift: float, scale: float, discrete: bool, seed: int):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, scale, n2)
    if discrete:
        a, b = np.round(a * 2), np.round(b * 2)
    return a, b


@pytest.mark.parametrize(("n1", "n2", "shift", "scale", "discrete"), CASES)
def test_ks_equals_scipy(n1: int, n2: int, shift: float, scale: float, discrete: bool) -> None:
    a, b = _samples(n1, n2, shift, scale, discrete, seed=n1 + n2)
    got = ks_2samp(a.tolist(), b.tolist())
    expected = stats.ks_2samp(a, b)
    assert got.statistic == pytest.approx(float(expected.statistic), abs=1e-12)
    assert got.p_value == pytest.approx(float(expected.pvalue), abs=1e-9)
    # the same in the other order
    assert ks_2samp(b.tolist(), a.tolist()).p_value == pytest.approx(got.p_value, abs=1e-12)


@pytest.mark.parametrize(("n1", "n2", "shift", "scale", "discrete"), CASES)
def test_wasserstein_equals_scipy(
    n1: int, n2: int, shift: float, scale: float, discrete: bool
) -> None:
    a, b = _samples(n1, n2, shift, scale, discrete, seed=7 * n1 + n2)
    got = wasserstein(a.tolist(), b.tolist())
    assert got == pytest.approx(float(stats.wasserstein_distance(a, b)), rel=1e-9, abs=1e-12)


def test_identical_samples_have_no_distance() -> None:
    xs = [1.0, 2.0, 2.0, 5.0]
    assert ks_2samp(xs, xs).statistic == 0.0 and ks_2samp(xs, xs).p_value == 1.0
    assert wasserstein(xs, list(reversed(xs))) == 0.0


def test_the_large_sample_p_value_stays_near_scipys() -> None:
    """Past 10 000 values scipy and mlx both approximate; they agree within 0.005."""
    worst = 0.0
    for n1, n2 in [(1000, 20_000), (5000, 50_000), (200_000, 1_000_000)]:
        en = n1 * n2 / (n1 + n2)
        for d in np.linspace(0.2, 3.0, 15) / np.sqrt(en):
            worst = max(worst, abs(ks_pvalue(float(d), n1, n2) - stats.kstwo.sf(d, round(en))))
    assert worst < 0.005


def test_the_exact_count_gives_way_only_where_p_is_negligible() -> None:
    d = 0.15
    assert exact_work(d, 1000, 10_000) > 3_000_000  # too long to count
    assert asymptotic_pvalue(d, 1000, 10_000) < 1e-15


def test_empty_samples_are_refused() -> None:
    with pytest.raises(AnalysisError, match="current sample is empty"):
        ks_2samp([1.0], [])
    with pytest.raises(AnalysisError, match="reference sample is empty"):
        wasserstein([], [1.0])
