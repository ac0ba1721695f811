"""Count values into a reference profile's bins: ``count(values, feature_profile)``.

Missing values (``None``, NaN) and the non-finite ±inf count as ``null``: they are not
measurements, and the missing rate is its own signal. A numeric feature refuses values that
are not numbers (naming the feature); a categorical feature counts ``str(value)``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from analysis.base import AnalysisError
from analysis.drift.histogram import Histogram

if TYPE_CHECKING:
    from analysis.drift.profile import CategoricalProfile, FeatureProfile


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def count(values: Iterable[object], feature: FeatureProfile) -> Histogram:
    """Count ``values`` into ``feature``'s bins (see :class:`Histogram`)."""
    if feature.kind == "numeric":
        top = feature.max if feature.max is not None else math.inf
        return count_numeric(values, feature.name, feature.edges, top)
    return _count_categorical(values, feature)


def count_numeric(
    values: Iterable[object], name: str, edges: Sequence[float], maximum: float
) -> Histogram:
    """Count into the interior bins of ``edges``; ``maximum`` is the reference's (the
    ``above_gap`` is measured from it)."""
    if not edges:
        # a reference without values has no bins: every value is `other`
        return _count_without_edges(values, name)
    last = len(edges) - 1
    low, high = edges[0], maximum
    counts = [0] * last
    offsets = [0.0] * last
    null = below = above = 0
    below_gap: list[float] = []
    above_gap: list[float] = []
    for value in values:
        if is_missing(value):
            null += 1
            continue
        x = _number(value, name)
        if not math.isfinite(x):
            null += 1
            continue
        i = bisect_right(edges, x) - 1
        if i < 0:
            below += 1
            below_gap.append(low - x)
        elif i >= last:
            above += 1
            above_gap.append(x - high)
        else:
            counts[i] += 1
            offsets[i] += x - edges[i]
    return Histogram(
        counts=tuple(counts),
        offsets=tuple(offsets),
        null=null,
        below=below,
        above=above,
        below_gap=math.fsum(below_gap),
        above_gap=math.fsum(above_gap),
    )


def _count_without_edges(values: Iterable[object], name: str) -> Histogram:
    null = other = 0
    for value in values:
        if is_missing(value) or not math.isfinite(_number(value, name)):
            null += 1
        else:
            other += 1
    return Histogram(counts=(), null=null, other=other)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnalysisError(f"feature {name!r} is numeric, got {value!r}")
    return float(value)


def _count_categorical(values: Iterable[object], feature: CategoricalProfile) -> Histogram:
    index = {category: i for i, category in enumerate(feature.categories)}
    counts = [0] * len(index)
    null = other = 0
    for value in values:
        if is_missing(value):
            null += 1
            continue
        i = index.get(str(value))
        if i is None:
            other += 1
        else:
            counts[i] += 1
    return Histogram(counts=tuple(counts), null=null, other=other)
