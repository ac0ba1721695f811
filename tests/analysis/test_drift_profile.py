"""Reference profiles: quantile and discrete edges, out-of-range bins, top-K, JSON round trip."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from analysis.base import AnalysisError
from analysis.drift import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_feature,
    build_reference,
    count,
)
from analysis.drift.binning import quantile


def _numeric(values: list[object], **kw: object) -> NumericProfile:
    profile = build_feature("x", values, **kw)  # type: ignore[arg-type]
    assert isinstance(profile, NumericProfile)
    return profile


@pytest.mark.parametrize("n", [2, 3, 10, 101, 1000])
@pytest.mark.parametrize("level", [0.0, 0.05, 0.1, 0.37, 0.5, 0.95, 1.0])
def test_quantile_is_numpys_linear_interpolation(n: int, level: float) -> None:
    rng = random.Random(n)
    xs = sorted(rng.gauss(0, 1) for _ in range(n))
    assert quantile(xs, level) == pytest.approx(float(np.quantile(xs, level)), rel=1e-12)


@pytest.mark.parametrize("bins", [20, 30, 50])
def test_continuous_edges_are_reference_quantiles_and_bins_hold_equal_shares(bins: int) -> None:
    rng = random.Random(bins)
    xs = [rng.gauss(10, 3) for _ in range(10_000)]
    profile = _numeric(xs, bins=bins)
    expected = np.quantile(xs, [i / bins for i in range(bins)])
    assert profile.edges[:-1] == pytest.approx(list(expected), rel=1e-12)
    assert profile.edges[-1] == math.nextafter(max(xs), math.inf)
    assert len(profile.reference.counts) == bins
    assert all(abs(c - 10_000 / bins) <= 1 for c in profile.reference.counts)
    assert (profile.reference.below, profile.reference.above) == (0, 0)
    assert profile.min == min(xs) and profile.max == max(xs)
    assert profile.std == pytest.approx(float(np.std(xs)), rel=1e-12)  # population std
    assert profile.values is None  # more than 1000 values: not kept


def test_psi_groups_are_the_reference_deciles() -> None:
    rng = random.Random(5)
    xs = [rng.gauss(0, 1) for _ in range(3000)]
    profile = _numeric(xs, bins=20)
    grouped = [0] * 10
    for c, g in zip(profile.reference.counts, profile.psi_groups, strict=True):
        grouped[g] += c
    deciles = np.quantile(xs, [i / 10 for i in range(11)])
    expected, _ = np.histogram(xs, bins=deciles)
    assert grouped == list(expected)


def test_discrete_data_gets_one_bin_per_value() -> None:
    xs = [1, 2, 2, 3, 3, 3, 7, 7, 7, 7, None]
    profile = _numeric(xs)
    assert profile.edges == (1.0, 2.0, 3.0, 7.0, math.nextafter(7.0, math.inf))
    assert profile.reference.counts == (1, 2, 3, 4)
    assert profile.reference.null == 1
    assert profile.distinct == 4
    assert profile.psi_groups == (0, 1, 2, 3)
    assert profile.values == (1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 7.0, 7.0, 7.0, 7.0)


def test_duplicate_quantiles_are_dropped_and_the_atom_opens_its_bin() -> None:
    # 60% zeros, the rest spread: the quantiles at 0, 0.05, ..., 0.55 are all 0
    xs = [0.0] * 600 + [float(i) for i in range(1, 401)]
    profile = _numeric(xs, bins=20)
    assert profile.edges[0] == 0.0
    assert all(a < b for a, b in zip(profile.edges, profile.edges[1:], strict=False))
    assert len(profile.edges) == 20 - 11 + 1  # 11 repeats of 0 dropped, plus the top edge
    assert profile.edges[1:-1] == pytest.approx(
        list(np.quantile(xs, [i / 20 for i in range(12, 20)]))
    )
    assert profile.reference.counts[0] == 600  # the atom, alone in the bin it opens
    assert sum(profile.reference.counts) == 1000
    # the PSI groups stay dense and ordered
    assert profile.psi_groups == tuple(sorted(profile.psi_groups))
    assert set(profile.psi_groups) == set(range(max(profile.psi_groups) + 1))


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (-0.5, "below"),
        (0.0, "bin 0"),  # the reference minimum
        (99.0, "last bin"),  # the reference maximum
        (99.0000001, "above"),
        (1e9, "above"),
        (-1e9, "below"),
        (None, "null"),
        (float("nan"), "null"),
        (float("inf"), "null"),
    ],
)
def test_out_of_range_and_missing_values_land_in_their_own_bins(value: object, where: str) -> None:
    profile = _numeric([float(i) for i in range(100)])
    h = count([value], profile)
    got = {
        "below": h.below,
        "above": h.above,
        "null": h.null,
        "bin 0": h.counts[0],
        "last bin": h.counts[-1],
    }
    assert got[where] == 1
    assert h.rows == 1
    if where == "below":
        assert h.below_gap == pytest.approx(0.0 - value)  # type: ignore[operator]
    if where == "above":
        assert h.above_gap == pytest.approx(value - 99.0)  # type: ignore[operator]


def test_categories_beyond_top_k_go_to_other() -> None:
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"] + [None] * 2
    profile = build_feature("c", values, top_k=3)
    assert isinstance(profile, CategoricalProfile)
    assert profile.categories == ("a", "b", "c")  # c before d: ties by name
    assert profile.reference.counts == (5, 4, 3)
    assert (profile.reference.other, profile.reference.null) == (4, 2)
    h = count(["a", "z", "d", None, "b", 3], profile)
    assert h.counts == (1, 1, 0)
    assert (h.other, h.null) == (3, 1)


def test_kind_is_inferred_and_can_be_forced() -> None:
    assert build_feature("n", [1, 2.5, None]).kind == "numeric"
    assert build_feature("c", [1, "x"]).kind == "categorical"
    assert build_feature("b", [True, False]).kind == "categorical"
    forced = build_feature("n", [1, 2, 2], kind="categorical")
    assert isinstance(forced, CategoricalProfile) and forced.categories == ("2", "1")


def test_an_all_null_reference_column_has_no_bins() -> None:
    profile = _numeric([None, None, float("nan")])
    assert profile.edges == () and profile.reference.rows == 3
    assert profile.reference.missing_rate == 1.0
    h = count([1.0, None], profile)
    assert (h.other, h.null) == (1, 1)


def test_reference_profile_survives_json() -> None:
    rng = random.Random(9)
    columns = {
        "x": [rng.gauss(0, 1) if rng.random() > 0.1 else None for _ in range(2000)],
        "small": [rng.randint(0, 3) for _ in range(2000)],
        "c": [rng.choice(["u", "v", "w", None]) for _ in range(2000)],
    }
    profile = build_reference("sha256:abc", columns)
    text = json.dumps(profile.as_dict(), allow_nan=False)
    back = ReferenceProfile.from_dict(json.loads(text))
    assert back == profile
    assert back.rows == 2000
    assert back.as_dict()["features"]["x"]["missing_rate"] == pytest.approx(
        sum(v is None for v in columns["x"]) / 2000
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bins": 19}, "bins must be a whole number from 20 to 50"),
        ({"bins": 51}, "bins must be"),
        ({"bins": 20.0}, "bins must be"),
        ({"top_k": 0}, "top_k must be"),
        ({"kind": "text"}, "numeric or categorical"),
    ],
)
def test_bad_profile_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        build_feature("x", [1.0, 2.0], **kwargs)  # type: ignore[arg-type]


def test_a_numeric_feature_names_a_value_that_is_not_a_number() -> None:
    with pytest.raises(AnalysisError, match=r"feature 'x' is numeric, got 'oops'"):
        build_feature("x", [1.0, "oops"], kind="numeric")
    profile = _numeric([1.0, 2.0])
    with pytest.raises(AnalysisError, match=r"feature 'x' is numeric, got True"):
        count([True], profile)


def test_reference_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(AnalysisError, match="differ in length"):
        build_reference("fp", {"a": [1.0, 2.0], "b": [1.0]})


@pytest.mark.parametrize(
    "data",
    [{}, {"kind": "numeric"}, {"kind": "blob", "name": "x", "reference": {"counts": []}}],
)
def test_a_broken_profile_document_is_refused(data: dict[str, object]) -> None:
    from analysis.drift.profile import feature_from_dict

    with pytest.raises(AnalysisError):
        feature_from_dict(data)
