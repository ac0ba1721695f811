"""Fixed-horizon z-tests and sample sizes against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.base import AnalysisError
from analysis.fixed import sample_size_proportions, z_test_means, z_test_proportions


@pytest.mark.parametrize(
    "counts",
    [(50, 1000, 65, 1000), (500, 10_000, 600, 10_000), (3, 40, 11, 52), (120, 900, 80, 1100)],
)
def test_pooled_z_test_equals_pearson_chi_square_without_correction(
    counts: tuple[int, int, int, int],
) -> None:
    xa, na, xb, nb = counts
    table = np.array([[xa, na - xa], [xb, nb - xb]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    result = z_test_proportions(xa, na, xb, nb)
    assert result.z**2 == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-10)
    assert result.effect == pytest.approx(xb / nb - xa / na)


def test_unpooled_z_test_matches_the_normal_by_hand() -> None:
    pa, pb = 50 / 1000, 65 / 1000
    se = math.sqrt(pa * (1 - pa) / 1000 + pb * (1 - pb) / 1000)
    result = z_test_proportions(50, 1000, 65, 1000, pooled=False)
    assert result.z == pytest.approx((pb - pa) / se, rel=1e-13)
    assert result.p_value == pytest.approx(2 * stats.norm.sf((pb - pa) / se), rel=1e-12)


def test_mean_z_test_is_welchs_statistic_against_the_normal() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 400), rng.normal(10.4, 3, 500)
    t = stats.ttest_ind(b, a, equal_var=False)
    result = z_test_means(400, a.mean(), a.var(ddof=1), 500, b.mean(), b.var(ddof=1))
    assert result.z == pytest.approx(t.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(t.statistic)), rel=1e-12)


def test_sample_size_of_the_five_to_six_percent_example() -> None:
    # Fleiss' formula; the classic ~8,150 per arm for 5% -> 6%, alpha 0.05, power 0.8
    assert sample_size_proportions(0.05, 0.06) == 8158
    assert sample_size_proportions(0.10, 0.13) == 1774
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    by_hand = (z_a * math.sqrt(2 * 0.055 * 0.945) + z_b * math.sqrt(0.05 * 0.95 + 0.06 * 0.94)) ** 2
    assert sample_size_proportions(0.05, 0.06) == math.ceil(by_hand / 0.01**2)


def test_sample_size_gives_the_stated_power_in_simulation() -> None:
    n = sample_size_proportions(0.10, 0.13)
    rng = np.random.default_rng(11)
    xa, xb = rng.binomial(n, 0.10, 4000), rng.binomial(n, 0.13, 4000)
    power = np.mean(
        [
            z_test_proportions(int(a), n, int(b), n).p_value < 0.05
            for a, b in zip(xa, xb, strict=True)
        ]
    )
    assert abs(power - 0.8) < 3 * math.sqrt(0.8 * 0.2 / 4000)


def test_fixed_tests_refuse_empty_arms() -> None:
    with pytest.raises(AnalysisError, match="successes <= trials"):
        z_test_proportions(0, 0, 1, 10)
    with pytest.raises(AnalysisError, match="no effect"):
        sample_size_proportions(0.1, 0.1)
