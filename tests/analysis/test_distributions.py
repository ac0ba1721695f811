"""The normal and chi-square functions against scipy.stats."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.base import AnalysisError
from analysis.distributions import chi2_sf, norm_cdf, norm_ppf, norm_sf, two_sided_p, z_two_sided

XS = [-30.0, -12.5, -5.0, -3.0, -1.959963984540054, -1.0, -0.1, 0.0, 0.3, 1.0, 2.5, 8.0, 30.0]


@pytest.mark.parametrize("x", XS)
def test_normal_cdf_and_sf_match_scipy_to_relative_precision(x: float) -> None:
    assert norm_cdf(x) == pytest.approx(stats.norm.cdf(x), rel=1e-12, abs=0)
    assert norm_sf(x) == pytest.approx(stats.norm.sf(x), rel=1e-12, abs=0)
    assert two_sided_p(x) == pytest.approx(2 * stats.norm.sf(abs(x)), rel=1e-13)


@pytest.mark.parametrize("p", [1e-12, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999999])
def test_normal_quantile_matches_scipy(p: float) -> None:
    assert norm_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-12)


def test_two_sided_critical_values() -> None:
    assert z_two_sided(0.95) == pytest.approx(1.959963984540054, rel=1e-14)
    assert z_two_sided(0.99) == pytest.approx(2.5758293035489004, rel=1e-14)


@pytest.mark.parametrize("df", [*range(1, 31), 49, 100])
def test_chi2_survival_matches_scipy_across_the_range(df: int) -> None:
    xs = np.concatenate([[1e-9, 1e-3, 0.5], np.linspace(0.1, 4 * df + 60, 97), [500.0, 1200.0]])
    for x in xs:
        expected = stats.chi2.sf(x, df)
        assert chi2_sf(float(x), df) == pytest.approx(expected, rel=1e-11, abs=1e-300), (x, df)


def test_chi2_survival_of_published_critical_values() -> None:
    # the 0.001 column of the chi-square table (df 1..4): the SRM threshold
    for df, critical in [(1, 10.828), (2, 13.816), (3, 16.266), (4, 18.467)]:
        assert chi2_sf(critical, df) == pytest.approx(0.001, rel=1e-3)
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(-1.0, 3) == 1.0


@pytest.mark.parametrize("df", [0, -1, 1.5, True])
def test_chi2_refuses_bad_degrees_of_freedom(df: object) -> None:
    with pytest.raises(AnalysisError, match="degrees of freedom"):
        chi2_sf(3.0, df)  # type: ignore[arg-type]


def test_quantile_refuses_probabilities_outside_zero_one() -> None:
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        norm_ppf(1.0)
