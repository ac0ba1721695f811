"""Statistics from counts: PSI by hand, JS and chi-square equal scipy's on the same bins, and
KS / Wasserstein from bins always inside their documented range of the raw-value statistic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from analysis.drift import NumericProfile, build_feature, count
from analysis.drift.binned import chisquare, jensenshannon, ks_from_bins, psi, wasserstein_from_bins
from analysis.drift.vectors import fine, for_chisquare, for_psi


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        # 0.1 ln 1.25 + 0 + 0.1 ln 1.5
        ([50, 30, 20], [40, 30, 30], 0.1 * math.log(1.25) + 0.1 * math.log(1.5)),
        # an empty reference bin takes epsilon 1e-4: -0.1 ln 0.9 + (0.1 - 1e-4) ln(1000)
        ([100, 0], [90, 10], -0.1 * math.log(0.9) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)),
        # the smallest share is already below 1e-4: epsilon is a millionth of it
        ([99_999, 1, 0], [99_999, 1, 0], 0.0),
        ([10, 10], [10, 10], 0.0),
    ],
)
def test_psi_by_hand(reference: list[int], current: list[int], expected: float) -> None:
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_psi_uses_the_reference_deciles() -> None:
    # 0..999: each decile holds 100 values; the current puts 190 in the first decile, 10 in
    # the second and 100 in each other one (800 + 200 = 1000)
    profile = build_feature("x", [float(i) for i in range(1000)])
    current = [float(i % 100) for i in range(190)] + [150.0] * 10
    current += [float(i) for i in range(200, 1000)]
    ref_v, cur_v = for_psi(profile, count(current, profile))
    assert ref_v == [0, *[100] * 10, 0] and cur_v == [0, 190, 10, *[100] * 8, 0]
    expected = (0.19 - 0.1) * math.log(1.9) + (0.01 - 0.1) * math.log(0.1)
    assert psi(ref_v, cur_v) == pytest.approx(expected, rel=1e-12)


CASES = [
    ([10, 20, 30, 40], [12, 18, 33, 37]),
    ([500, 1, 0, 7], [400, 0, 3, 9]),
    ([1, 1], [0, 5]),
    ([5, 0, 5], [5, 0, 5]),
]


@pytest.mark.parametrize(("reference", "current"), CASES)
def test_jensenshannon_equals_scipy(reference: list[int], current: list[int]) -> None:
    expected = distance.jensenshannon(reference, current)
    assert jensenshannon(reference, current) == pytest.approx(float(expected), abs=1e-12)


@pytest.mark.parametrize(("reference", "current"), CASES[:2])
def test_chisquare_equals_scipy(reference: list[int], current: list[int]) -> None:
    kept = [(r, c) for r, c in zip(reference, current, strict=True) if r or c]
    n_ref, n_cur = sum(reference), sum(current)
    f_exp = [r * n_cur / n_ref for r, _ in kept]
    if any(e == 0 for e in f_exp):
        got = chisquare(reference, current)
        assert (got.statistic, got.p_value) == (math.inf, 0.0)
        return
    expected = stats.chisquare([c for _, c in kept], f_exp)
    got = chisquare(reference, current)
    assert got.statistic == pytest.approx(float(expected.statistic), rel=1e-12)
    assert got.p_value == pytest.approx(float(expected.pvalue), abs=1e-12)
    assert got.df == len(kept) - 1


def test_chisquare_of_a_single_bin_is_no_test() -> None:
    got = chisquare([10, 0], [7, 0])
    assert (got.statistic, got.p_value, got.df) == (0.0, 1.0, 0)


def test_chisquare_folds_out_of_range_values_into_the_extreme_bins() -> None:
    profile = build_feature("x", [float(i) for i in range(100)])
    h = count([-5.0, 0.5, 150.0, 99.0], profile)
    _, cur = for_chisquare(profile, h)
    assert cur[0] == 2 and cur[-1] == 2 and sum(cur) == 4
    _, fine_cur = fine(profile, h)
    assert fine_cur[0] == 1 and fine_cur[-1] == 1  # below and above stay visible elsewhere


def _profile(xs: np.ndarray, bins: int) -> NumericProfile:
    profile = build_feature("x", xs.tolist(), bins=bins)
    assert isinstance(profile, NumericProfile)
    return profile


SHAPES = [
    # (label, reference sampler, current sampler)
    ("same", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1, n)),
    ("shifted", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.4, 1, n)),
    ("far", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(3, 2, n)),
    ("wider", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 3, n)),
    ("skewed", lambda r, n: r.lognormal(0, 1, n), lambda r, n: r.lognormal(0.2, 1.2, n)),
    ("discrete", lambda r, n: r.poisson(3, n) * 1.0, lambda r, n: r.poisson(3.5, n) * 1.0),
    ("atoms", lambda r, n: np.where(r.random(n) < 0.6, 0.0, r.exponential(1, n)),
     lambda r, n: np.where(r.random(n) < 0.4, 0.0, r.exponential(1.5, n))),
]  # fmt: skip


@pytest.mark.parametrize(("label", "ref_of", "cur_of"), SHAPES)
@pytest.mark.parametrize("bins", [20, 50])
def test_ks_and_wasserstein_from_bins_bracket_the_raw_values(
    label: str, ref_of, cur_of, bins: int
) -> None:
    for seed in range(12):
        rng = np.random.default_rng(seed * 101 + bins)
        n_ref, n_cur = int(rng.integers(200, 3000)), int(rng.integers(50, 3000))
        a, b = ref_of(rng, n_ref), cur_of(rng, n_cur)
        profile = _profile(a, bins)
        h = count(b.tolist(), profile)
        ref = profile.reference

        ks = ks_from_bins(ref.counts, h.counts, h.below, h.above)
        raw_d = float(stats.ks_2samp(a, b).statistic)
        assert ks.low - 1e-12 <= raw_d <= ks.high + 1e-12, (label, seed)
        # the documented simple bound: at most the largest bin mass of either sample
        biggest = max(max(ref.counts) / n_ref, max([h.below, h.above, *h.counts]) / n_cur)
        assert ks.high <= ks.low + biggest + 1e-12

        w = wasserstein_from_bins(profile.edges, ref, h)
        raw_w = float(stats.wasserstein_distance(a, b))
        assert w.low - 1e-9 <= raw_w <= w.high + 1e-9, (label, seed)
        assert w.low - 1e-12 <= w.estimate <= w.high + 1e-12


@pytest.mark.parametrize("shift", [0.05, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("bins", [20, 50])
def test_binned_wasserstein_is_exact_when_the_cdfs_do_not_cross_inside_a_bin(
    shift: float, bins: int
) -> None:
    # a shift: F - G keeps its sign, so every bin's integral is exact
    rng = np.random.default_rng(int(shift * 100) + bins)
    a = rng.normal(0, 1, 20_000)
    b = a + shift  # the same values moved: G(x) = F(x - shift) <= F(x) everywhere
    profile = _profile(a, bins)
    w = wasserstein_from_bins(profile.edges, profile.reference, count(b.tolist(), profile))
    assert w.estimate == pytest.approx(float(stats.wasserstein_distance(a, b)), rel=1e-9)
    assert w.estimate == w.low


def test_without_offsets_the_estimate_interpolates_and_the_range_still_holds() -> None:
    from analysis.drift import Histogram

    rng = np.random.default_rng(8)
    a, b = rng.normal(0, 1, 5000), rng.normal(0.2, 1.3, 4000)
    profile = _profile(a, 20)
    h = count(b.tolist(), profile)
    bare = Histogram(h.counts, (), h.null, h.below, h.above, 0, h.below_gap, h.above_gap)
    ref = Histogram(profile.reference.counts)
    w = wasserstein_from_bins(profile.edges, ref, bare)
    assert w.low <= float(stats.wasserstein_distance(a, b)) <= w.high
    assert w.low <= w.estimate <= w.high
    with_offsets = wasserstein_from_bins(profile.edges, profile.reference, h)
    assert with_offsets.high - with_offsets.low < w.high - w.low  # offsets narrow the range


def test_wasserstein_tails_are_exact_outside_the_reference_range() -> None:
    # everything in the current lies beyond the reference's max: W = mean distance moved
    a = np.arange(100, dtype=float)
    b = np.array([200.0, 300.0])
    profile = _profile(a, 20)
    h = count(b.tolist(), profile)
    w = wasserstein_from_bins(profile.edges, profile.reference, h)
    raw = float(stats.wasserstein_distance(a, b))
    assert w.estimate == pytest.approx(raw, rel=1e-12)
    assert w.low == w.estimate == w.high
    assert h.above_gap == pytest.approx((200 - 99) + (300 - 99))
