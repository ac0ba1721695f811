"""A distance on a small window must also be significant (analysis.drift.verdict).

Without the rule, 100 rows drawn from the reference itself drift by normed Wasserstein (or
Jensen-Shannon) in most runs: a monitor with a quiet hour would page on noise."""

from __future__ import annotations

import random

import pytest

from analysis.drift.counting import count
from analysis.drift.profile import build_feature
from analysis.drift.verdict import LARGE_SAMPLE, SMALL_SAMPLE_P, effective_n, judge_feature

TRIALS = 200


def _numeric_reference(rng: random.Random) -> list[object]:
    return [rng.gauss(0, 1) for _ in range(5000)]


def _rate(kind: str, n: int, shift: float, seed: int) -> tuple[float, list[object]]:
    rng = random.Random(seed)
    if kind == "numeric":
        feature = build_feature("x", _numeric_reference(rng))
        draw = lambda: [rng.gauss(shift, 1) for _ in range(n)]  # noqa: E731
    else:
        letters = "abcdefghij"
        feature = build_feature("c", [rng.choice(letters) for _ in range(5000)])
        weights = [1.0 + shift * (i == 0) for i in range(len(letters))]
        draw = lambda: rng.choices(letters, weights, k=n)  # noqa: E731
    verdicts = [judge_feature(feature, count(draw(), feature)) for _ in range(TRIALS)]
    return sum(v.drifted for v in verdicts) / TRIALS, verdicts


@pytest.mark.parametrize(
    ("kind", "n", "method", "companion"),
    [
        ("numeric", 100, "wasserstein", "ks"),
        ("numeric", 50, "wasserstein", "ks"),
        ("categorical", 100, "jensenshannon", "chisquare"),
    ],
)
def test_no_shift_on_a_small_window_is_rarely_drift(
    kind: str, n: int, method: str, companion: str
) -> None:
    rate, verdicts = _rate(kind, n, 0.0, seed=7)
    assert {v.method for v in verdicts} == {method}
    assert {v.companion for v in verdicts} == {companion}
    # the distance alone crosses its threshold on many of these same-distribution windows…
    crossed = sum(v.statistic is not None and v.statistic >= v.threshold for v in verdicts)
    assert crossed / TRIALS > 0.2
    # …the companion test keeps the false alarms near its level
    assert rate <= 2 * SMALL_SAMPLE_P
    for v in verdicts:
        assert v.companion_p is not None
        assert v.drifted == (v.statistic >= v.threshold and v.companion_p < SMALL_SAMPLE_P)
        assert f"{companion} p = " in v.reason and "(small window)" in v.reason


@pytest.mark.parametrize(("kind", "shift"), [("numeric", 0.5), ("categorical", 3.0)])
def test_a_real_shift_on_a_small_window_still_drifts(kind: str, shift: float) -> None:
    rate, _ = _rate(kind, 100, shift, seed=11)
    assert rate >= 0.9


def test_large_windows_have_no_companion() -> None:
    rng = random.Random(3)
    feature = build_feature("x", _numeric_reference(rng))
    current = [rng.gauss(0, 1) for _ in range(3000)]
    assert effective_n(5000, 3000) > LARGE_SAMPLE
    verdict = judge_feature(feature, count(current, feature))
    assert verdict.companion is None and verdict.companion_p is None
    assert "small window" not in verdict.reason


def test_p_value_tests_have_no_companion() -> None:
    rng = random.Random(5)
    feature = build_feature("x", [rng.gauss(0, 1) for _ in range(500)])
    verdict = judge_feature(feature, count([rng.gauss(0, 1) for _ in range(100)], feature))
    assert verdict.method == "ks"
    assert verdict.companion is None
