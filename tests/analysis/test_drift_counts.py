"""Histograms merge by addition: windows, replicas and partitions sum to the union's counts."""

from __future__ import annotations

import itertools
import random

import pytest

from analysis.base import AnalysisError
from analysis.drift import Histogram, build_feature, count


def _reference() -> list[object]:
    rng = random.Random(1)
    return [rng.gauss(0, 1) for _ in range(2000)] + [None] * 20


def _parts(seed: int) -> list[list[object]]:
    rng = random.Random(seed)
    parts: list[list[object]] = []
    for shift in (0.0, 1.5, -2.0):
        part: list[object] = [rng.gauss(shift, 2) for _ in range(rng.randint(0, 400))]
        part += [None] * rng.randint(0, 5) + [float("nan")] * rng.randint(0, 2)
        parts.append(part)
    return parts


def _same(a: Histogram, b: Histogram) -> None:
    """Counts exactly; the two gap sums (floats) up to rounding."""
    assert (a.counts, a.null, a.below, a.above, a.other) == (
        b.counts,
        b.null,
        b.below,
        b.above,
        b.other,
    )
    assert a.below_gap == pytest.approx(b.below_gap, rel=1e-12)
    assert a.above_gap == pytest.approx(b.above_gap, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_numeric_counts_of_parts_add_up_to_the_counts_of_the_union(seed: int) -> None:
    profile = build_feature("x", _reference())
    parts = _parts(seed)
    union = count(itertools.chain(*parts), profile)
    a, b, c = (count(p, profile) for p in parts)
    _same(a + b + c, union)
    _same((a + b) + c, a + (b + c))  # associative
    _same(a + b, b + a)  # commutative
    _same(a + Histogram.empty(len(a.counts)), a)  # the empty histogram is neutral
    assert union.rows == sum(len(p) for p in parts)


@pytest.mark.parametrize("seed", range(3))
def test_categorical_counts_of_parts_add_up_exactly(seed: int) -> None:
    rng = random.Random(seed)
    profile = build_feature("c", [rng.choice("abcdefg") for _ in range(500)], top_k=4)
    parts = [[rng.choice("abcdefghij") for _ in range(rng.randint(0, 200))] for _ in range(3)]
    parts[1] += [None, None]
    a, b, c = (count(p, profile) for p in parts)
    assert a + b + c == count(itertools.chain(*parts), profile)
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a


def test_merged_counts_read_back_from_json_still_add() -> None:
    profile = build_feature("x", _reference())
    a, b, _ = (count(p, profile) for p in _parts(7))
    again = Histogram.from_dict(a.as_dict()) + Histogram.from_dict(b.as_dict())
    _same(again, a + b)


def test_histograms_of_different_profiles_do_not_add() -> None:
    with pytest.raises(AnalysisError, match="different reference profiles"):
        _ = Histogram.empty(20) + Histogram.empty(21)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"counts": (1, -1)}, "bin 1 must be >= 0"),
        ({"counts": (1,), "null": 1.5}, "null must be a whole number"),
        ({"counts": (1,), "below_gap": -1.0}, "below_gap must be a number >= 0"),
    ],
)
def test_bad_counts_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        Histogram(**fields)  # type: ignore[arg-type]


def test_a_histogram_document_without_counts_is_refused() -> None:
    with pytest.raises(AnalysisError, match="counts must be a list"):
        Histogram.from_dict({"null": 3})


def test_rows_values_and_missing_rate() -> None:
    h = Histogram(counts=(3, 4), null=2, below=1, above=0)
    assert (h.values, h.rows) == (8, 10)
    assert h.missing_rate == pytest.approx(0.2)
    assert Histogram.empty(3).missing_rate is None
