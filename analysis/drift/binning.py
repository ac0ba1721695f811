"""Frozen bin edges for a numeric feature: quantiles of the reference, and where a value lands.

Edges ``e_0 < e_1 < ... < e_k`` make the interior bins ``[e_i, e_(i+1))``. ``e_0`` is the
reference minimum and ``e_k`` the next float above the reference maximum, so the maximum
falls in the last bin and a value lands ``above`` exactly when it exceeds the reference's
maximum (and ``below`` when under its minimum).

* Continuous data: ``e_0..e_(k-1)`` are the reference quantiles at ``i / bins`` (numpy's
  default, linear interpolation), repeated values dropped (a quantile shared by an atom opens
  one bin, whose left edge holds the atom).
* Discrete data (at most ``bins`` distinct values): every distinct value is an edge, so each
  value has a bin of its own and the counts are exact per value.

Finding a value's bin is one ``bisect`` (``analysis.drift.counting``), never a loop over bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Bins PSI is computed over (SPEC.md: "10 quantile bins of the reference").
PSI_BINS = 10


def quantile(ordered: Sequence[float], level: float) -> float:
    """The ``level`` quantile of sorted values by linear interpolation (numpy's default)."""
    position = (len(ordered) - 1) * level
    low = math.floor(position)
    if low + 1 >= len(ordered):
        return ordered[-1]
    fraction = position - low
    return ordered[low] + fraction * (ordered[low + 1] - ordered[low])


def numeric_edges(ordered: Sequence[float], bins: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Edges for sorted, non-empty reference values, and each interior bin's PSI group.

    A bin's PSI group is the reference decile its left quantile level falls in, so with
    ``bins`` a multiple of 10 the groups are exactly the 10 decile bins; with discrete data
    each value is its own group.
    """
    distinct = _first_distinct(ordered, bins + 1)
    if len(distinct) <= bins:
        return discrete_edges(distinct)
    return quantile_edges([quantile(ordered, level) for level in levels(bins)], ordered[-1])


def levels(bins: int) -> list[float]:
    """The quantile levels whose values open the interior bins: ``i / bins``."""
    return [i / bins for i in range(bins)]


def discrete_edges(distinct: Sequence[float]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Edges of discrete data (its sorted distinct values, at most ``bins``): a bin each."""
    top = math.nextafter(distinct[-1], math.inf)
    return (*distinct, top), tuple(range(len(distinct)))


def quantile_edges(
    quantiles: Sequence[float], maximum: float
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Edges of continuous data from its quantiles at :func:`levels` (computed by whoever
    holds the data: here from sorted values, or by DuckDB's ``quantile_cont``, the same
    linear interpolation) and its maximum; each interior bin's PSI group."""
    bins = len(quantiles)
    top = math.nextafter(maximum, math.inf)
    edges: list[float] = []
    groups: list[int] = []
    for i, edge in enumerate(quantiles):
        if edges and edge <= edges[-1]:
            continue
        edges.append(edge)
        groups.append(i * PSI_BINS // bins)
    dense = {group: n for n, group in enumerate(sorted(set(groups)))}
    return (*edges, top), tuple(dense[g] for g in groups)


def _first_distinct(ordered: Sequence[float], limit: int) -> list[float]:
    """The distinct values of sorted data, stopping once there are ``limit``."""
    out: list[float] = []
    for x in ordered:
        if not out or x != out[-1]:
            out.append(x)
            if len(out) >= limit:
                break
    return out
