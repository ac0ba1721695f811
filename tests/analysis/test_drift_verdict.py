"""Feature verdicts: auto's choice, exact vs binned, the effect-size rule, no data, the missing
rate, and the dataset share."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from analysis.base import AnalysisError
from analysis.drift import (
    FeatureVerdict,
    Histogram,
    State,
    build_feature,
    count,
    judge_dataset,
    judge_feature,
    judge_missing,
)
from analysis.drift.methods import choose


def _normal(n: int, shift: float = 0.0, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(shift, 1) for _ in range(n)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (_normal(1000), "ks"),
        ([float(i % 5) for i in range(1000)], "chisquare"),
        (["a", "b", "c"] * 300, "chisquare"),
        (_normal(1001), "wasserstein"),
        ([float(i % 5) for i in range(5000)], "jensenshannon"),
        (["a", "b"] * 3000, "jensenshannon"),
    ],
)
def test_auto_chooses_as_evidently(values: list[object], expected: str) -> None:
    assert choose("auto", build_feature("f", values)).name == expected


@pytest.mark.parametrize(
    ("method", "message"),
    [("ks", "ks compares numbers"), ("wasserstein", "wasserstein compares"), ("t", "unknown")],
)
def test_a_method_that_does_not_fit_is_refused(method: str, message: str) -> None:
    profile = build_feature("c", ["a", "b"])
    with pytest.raises(AnalysisError, match=message):
        judge_feature(profile, count(["a"], profile), method=method)


def test_counts_from_another_profile_are_refused() -> None:
    profile = build_feature("x", _normal(500))
    with pytest.raises(AnalysisError, match="the counts have 3 bins"):
        judge_feature(profile, Histogram((1, 2, 3)))


def test_a_small_reference_with_raw_values_is_exact() -> None:
    ref, cur = _normal(800, seed=1), _normal(600, 0.25, seed=2)
    profile = build_feature("x", ref)
    h = count(cur, profile)
    exact = judge_feature(profile, h, current_values=cur)
    expected = stats.ks_2samp(ref, cur)
    assert exact.method == "ks" and exact.exact and exact.bounds is None
    assert exact.statistic == pytest.approx(float(expected.statistic), abs=1e-12)
    assert exact.p_value == pytest.approx(float(expected.pvalue), abs=1e-9)
    w = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert exact.effect == pytest.approx(float(w), rel=1e-9)
    assert exact.drifted and exact.state is State.DRIFT

    binned = judge_feature(profile, h)  # no raw current values: from the bins
    assert not binned.exact and binned.bounds is not None
    low, high = binned.bounds
    assert low <= float(expected.statistic) <= high
    assert binned.p_value is not None and binned.p_value >= float(expected.pvalue)


@pytest.mark.parametrize(
    ("n", "shift", "method", "drifted", "gated"),
    [
        # small samples: the p-value decides alone
        (300, 0.6, "ks", True, False),
        (300, 0.0, "ks", False, False),
        # large samples: a shift of 0.05 sd is "significant" but below the minimum effect
        (100_000, 0.05, "ks", False, True),
        (100_000, 0.05, "chisquare", False, True),
        (100_000, 0.3, "ks", True, True),
        (100_000, 0.3, "chisquare", True, True),
        # distances are effects themselves: no gate
        (100_000, 0.05, "wasserstein", False, False),
        (100_000, 0.3, "wasserstein", True, False),
    ],
)
def test_large_samples_need_an_effect_as_well_as_a_p_value(
    n: int, shift: float, method: str, drifted: bool, gated: bool
) -> None:
    profile = build_feature("x", _normal(n, seed=3))
    verdict = judge_feature(profile, count(_normal(n, shift, seed=4), profile), method=method)
    assert verdict.drifted is drifted
    assert (verdict.min_effect is not None) is gated
    assert verdict.effect_name == "wasserstein_norm"
    assert verdict.effect is not None and "effect wasserstein_norm" in verdict.reason
    if gated and not drifted:
        assert verdict.p_value is not None and verdict.p_value < 0.05  # the p-value alone flags
        assert verdict.effect < 0.1


def test_a_categorical_effect_is_the_jensen_shannon_distance() -> None:
    profile = build_feature("c", ["a"] * 400 + ["b"] * 600)
    verdict = judge_feature(profile, count(["a"] * 700 + ["b"] * 300, profile))
    assert verdict.method == "chisquare" and verdict.effect_name == "jensenshannon"
    assert verdict.effect == pytest.approx(
        float(stats.entropy([0.4, 0.6], [0.55, 0.45]) + stats.entropy([0.7, 0.3], [0.55, 0.45]))
        ** 0.5
        / 2**0.5
    )


def test_a_new_category_is_a_drift_by_chi_square() -> None:
    profile = build_feature("c", ["a", "b"] * 100)
    verdict = judge_feature(profile, count(["a", "b", "z"] * 10, profile), method="chisquare")
    assert verdict.statistic == float("inf") and verdict.p_value == 0.0 and verdict.drifted


@pytest.mark.parametrize(
    ("shift", "drifted", "warning"), [(0.0, False, False), (0.5, False, True), (1.5, True, True)]
)
def test_psi_alerts_at_025_and_warns_at_01(shift: float, drifted: bool, warning: bool) -> None:
    profile = build_feature("x", _normal(20_000, seed=5))
    h = count(_normal(20_000, shift, seed=6), profile)
    verdict = judge_feature(profile, h, method="psi")
    assert (verdict.drifted, verdict.warning) == (drifted, warning)
    assert verdict.threshold == 0.25 and verdict.effect == verdict.statistic


def test_a_threshold_overrides_the_default() -> None:
    profile = build_feature("x", _normal(5000, seed=7))
    h = count(_normal(5000, 0.15, seed=8), profile)
    assert judge_feature(profile, h).drifted
    assert not judge_feature(profile, h, threshold=0.5).drifted
    with pytest.raises(AnalysisError, match="threshold must be >= 0"):
        judge_feature(profile, h, threshold=-1.0)


def test_an_all_empty_column_is_no_data_and_its_missing_rate_is_the_finding() -> None:
    profile = build_feature("x", [*_normal(2000), None, None])
    h = count([None] * 500, profile)
    verdict = judge_feature(profile, h)
    assert verdict.state is State.NO_DATA and not verdict.drifted
    assert verdict.statistic is None and verdict.n_cur == 0
    missing = judge_missing(profile, h)
    assert missing.state is State.DRIFT and missing.statistic == 1.0
    assert missing.effect == pytest.approx(1.0 - 2 / 2002)
    dataset = judge_dataset({"x": [verdict, missing]})
    assert dataset.drifted_features == ("x",)


@pytest.mark.parametrize(
    ("nulls", "state"), [(0, State.OK), (50, State.OK), (120, State.DRIFT), (1000, State.DRIFT)]
)
def test_missing_rate_rises_by_the_threshold(nulls: int, state: State) -> None:
    profile = build_feature("x", _normal(1000))
    verdict = judge_missing(profile, count(_normal(1000 - nulls) + [None] * nulls, profile))
    assert verdict.state is state


def test_a_window_without_rows_is_no_data_on_every_signal() -> None:
    profile = build_feature("x", _normal(1000))
    empty = count([], profile)
    assert judge_feature(profile, empty).state is State.NO_DATA
    assert judge_missing(profile, empty).state is State.NO_DATA
    dataset = judge_dataset({"x": [judge_feature(profile, empty), judge_missing(profile, empty)]})
    assert dataset.state is State.NO_DATA and dataset.share is None and dataset.no_data == ("x",)


def _verdict(feature: str, state: State) -> FeatureVerdict:
    return FeatureVerdict(
        feature, "wasserstein", 0.0, 0.1, 0.0, "wasserstein_norm", 10, 10,
        state is State.DRIFT, state, "",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("states", "share", "drifted"),
    [
        ([State.DRIFT, State.OK], 0.5, True),  # at the threshold: drift (as Evidently's >=)
        ([State.DRIFT, State.OK, State.OK], 1 / 3, False),
        ([State.DRIFT, State.OK, State.NO_DATA], 0.5, True),  # no data leaves the share
        ([State.OK, State.OK], 0.0, False),
    ],
)
def test_dataset_share(states: list[State], share: float, drifted: bool) -> None:
    verdicts = {f"f{i}": [_verdict(f"f{i}", s)] for i, s in enumerate(states)}
    dataset = judge_dataset(verdicts)
    assert dataset.share == pytest.approx(share)
    assert dataset.drifted is drifted and dataset.threshold == 0.5
    assert dataset.as_dict()["state"] == ("drift" if drifted else "ok")


def test_every_verdict_carries_what_a_message_prints() -> None:
    profile = build_feature("x", _normal(3000))
    data = judge_feature(profile, count(_normal(3000, 0.2), profile)).as_dict()
    for key in ("method", "statistic", "threshold", "effect", "p_value", "n_ref", "n_cur"):
        assert key in data
    assert data["drifted"] is True and data["state"] == "drift"
    assert data["n_ref"] == 3000 and data["n_cur"] == 3000
