"""Counts of one feature in a reference profile's bins: what every drift statistic is computed from.

A :class:`Histogram` is a value that merges by addition: the counts of two windows, two
replicas or two partitions added together equal the counts of their union, so a window too
large for memory is counted in pieces (or by a ``GROUP BY`` in the store) and summed.

Numeric features count into the profile's interior bins plus ``below``/``above`` (outside the
reference's range); categorical features count into the top-K categories plus ``other``. Both
count missing values (``None``, NaN) in ``null``. For numeric features ``offsets`` holds, per
interior bin, the summed distance of its values from the bin's left edge, and
``below_gap``/``above_gap`` the summed distances of the out-of-range values from the
reference's min/max: with them the Wasserstein distance is exact
wherever the two CDFs do not cross inside a bin (:mod:`analysis.drift.binned`). They are
floats, so their merge is exact up to rounding; every count is an exact integer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.base import AnalysisError, check_count, check_real


@dataclass(frozen=True)
class Histogram:
    counts: tuple[int, ...]
    offsets: tuple[float, ...] = ()
    null: int = 0
    below: int = 0
    above: int = 0
    other: int = 0
    below_gap: float = 0.0
    above_gap: float = 0.0

    def __post_init__(self) -> None:
        for i, value in enumerate(self.counts):
            check_count(value, f"histogram count of bin {i}")
        if self.offsets and len(self.offsets) != len(self.counts):
            raise AnalysisError(
                f"histogram has {len(self.counts)} counts but {len(self.offsets)} offsets"
            )
        for name in ("null", "below", "above", "other"):
            check_count(getattr(self, name), f"histogram {name}")
        for name in ("below_gap", "above_gap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise AnalysisError(f"histogram {name} must be a number >= 0, got {value!r}")

    @classmethod
    def empty(cls, bins: int) -> Histogram:
        return cls(counts=(0,) * bins)

    @property
    def values(self) -> int:
        """Non-null values counted (in range, out of range and ``other``)."""
        return sum(self.counts) + self.below + self.above + self.other

    @property
    def rows(self) -> int:
        """Every row counted, null included."""
        return self.values + self.null

    @property
    def missing_rate(self) -> float | None:
        """The share of null rows; ``None`` when nothing was counted."""
        return self.null / self.rows if self.rows else None

    def __add__(self, other: object) -> Histogram:
        if not isinstance(other, Histogram):
            return NotImplemented
        if len(self.counts) != len(other.counts):
            raise AnalysisError(
                f"cannot add histograms of {len(self.counts)} and {len(other.counts)} bins: "
                "they were counted against different reference profiles"
            )
        return Histogram(
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            offsets=_add_offsets(self, other),
            null=self.null + other.null,
            below=self.below + other.below,
            above=self.above + other.above,
            other=self.other + other.other,
            below_gap=self.below_gap + other.below_gap,
            above_gap=self.above_gap + other.above_gap,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": list(self.counts),
            "offsets": list(self.offsets),
            "null": self.null,
            "below": self.below,
            "above": self.above,
            "other": self.other,
            "below_gap": self.below_gap,
            "above_gap": self.above_gap,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        counts = data.get("counts")
        if not isinstance(counts, list):
            raise AnalysisError(f"histogram counts must be a list, got {counts!r}")
        return cls(
            counts=tuple(counts),
            offsets=tuple(check_real(v, "histogram offset") for v in data.get("offsets", [])),
            null=data.get("null", 0),
            below=data.get("below", 0),
            above=data.get("above", 0),
            other=data.get("other", 0),
            below_gap=check_real(data.get("below_gap", 0.0), "histogram below_gap", minimum=0),
            above_gap=check_real(data.get("above_gap", 0.0), "histogram above_gap", minimum=0),
        )


def _add_offsets(a: Histogram, b: Histogram) -> tuple[float, ...]:
    """Per-bin offsets add like counts; a side without them (an empty or categorical count)
    contributes nothing."""
    if not a.offsets or not b.offsets:
        return a.offsets or b.offsets
    return tuple(x + y for x, y in zip(a.offsets, b.offsets, strict=True))
