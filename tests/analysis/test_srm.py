"""Sample-ratio mismatch against scipy.stats.chisquare, and in simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.base import AnalysisError
from analysis.srm import check_srm


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([10_400, 9_600], [50, 50]),
        ([10_050, 9_950], [0.5, 0.5]),
        ([9_100, 900], [90, 10]),
        ([3_300, 3_400, 3_100], [1, 1, 1]),
        ([120, 260, 610, 10], [10, 25, 60, 5]),
    ],
)
def test_statistic_and_p_value_match_scipy(observed: list[int], weights: list[float]) -> None:
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    reference = stats.chisquare(observed, expected)
    result = check_srm(observed, weights)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.df == len(observed) - 1
    assert result.mismatch == (reference.pvalue < 0.001)


def test_a_52_48_split_of_20000_is_a_mismatch() -> None:
    result = check_srm({"a": 10_400, "b": 9_600}, {"a": 50, "b": 50})
    assert result.statistic == pytest.approx(32.0)
    assert result.p_value == pytest.approx(1.5417e-8, rel=1e-4)
    assert result.mismatch
    assert result.reason.startswith("sample ratio mismatch: observed a 10400, b 9600 against")
    assert "50:50 split" in result.reason


def test_the_boundary_is_p_below_one_in_a_thousand() -> None:
    # chi-square 10.828 with df 1 is p = 0.001: just under is fine, just over is flagged
    # 10_165 / 9_835 of 20,000: chi2 = 2 * 165^2 / 10_000 = 5.445 (fine)
    assert not check_srm([10_165, 9_835], [1, 1]).mismatch
    # 10_233 / 9_767: chi2 = 10.8578, p = 0.00098 (flagged); 10_232: 10.7648, p = 0.00103
    assert check_srm([10_233, 9_767], [1, 1]).mismatch
    assert not check_srm([10_232, 9_768], [1, 1]).mismatch
    assert check_srm([10_232, 9_768], [1, 1], threshold=0.01).mismatch


def test_no_false_alarms_on_a_true_50_50_split() -> None:
    rng = np.random.default_rng(2019)
    a = rng.binomial(20_000, 0.5, size=1000)
    alarms = sum(check_srm([int(x), 20_000 - int(x)], [50, 50]).mismatch for x in a)
    # expected 1 in 1,000; P(more than 5 | rate 0.001) < 0.001
    assert alarms <= 5


def test_a_true_52_48_split_is_caught_nearly_always() -> None:
    rng = np.random.default_rng(48)
    a = rng.binomial(20_000, 0.52, size=500)
    caught = sum(check_srm([int(x), 20_000 - int(x)], [50, 50]).mismatch for x in a)
    assert caught / 500 >= 0.99


def test_an_arm_of_weight_zero() -> None:
    leaked = check_srm(
        {"stable": 900, "canary": 100, "dark": 3}, {"stable": 9, "canary": 1, "dark": 0}
    )
    assert leaked.mismatch and leaked.p_value == 0.0
    assert "arm dark has weight 0 but 3 observations" in leaked.reason
    quiet = check_srm(
        {"stable": 900, "canary": 100, "dark": 0}, {"stable": 9, "canary": 1, "dark": 0}
    )
    assert not quiet.mismatch and quiet.df == 1 and quiet.statistic == 0.0


def test_no_observations_is_no_mismatch() -> None:
    result = check_srm([0, 0], [1, 1])
    assert not result.mismatch and result.reason == "no SRM test: no observations"


@pytest.mark.parametrize(
    ("observed", "weights", "message"),
    [
        ([1, 2], [1], "2 observed counts but 1 weights"),
        ({"a": 1, "b": 2}, {"a": 1, "c": 1}, "arms differ"),
        ([1, 2], {"a": 1, "b": 1}, "both as mappings or both as lists"),
        ([5], [1], "at least two arms"),
        ([1, -2], [1, 1], "SRM count of B must be >= 0"),
        ([1, 2], [1, -1], "SRM weight of B must be >= 0"),
        ([1, 2], [0, 0], "weights sum to 0"),
    ],
)
def test_bad_input(observed: object, weights: object, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        check_srm(observed, weights)  # type: ignore[arg-type]
