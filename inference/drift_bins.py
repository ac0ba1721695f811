"""Bins to count into, counts that merge by addition, and the SQL that bins one value.

The layering keeps ``inference`` from importing ``analysis``, so this module speaks plain
data: :func:`bins_from_profile` reads a reference profile's JSON form
(``analysis.drift.ReferenceProfile.as_dict()``), and :meth:`FeatureCounts.as_dict` is exactly
what ``analysis.drift.Histogram.from_dict`` reads (plus ``invalid``, which it ignores).

How one value is counted (the same on SQLite, PostgreSQL and DuckDB, and equal to
``analysis.drift.count`` on the values with the invalid ones replaced by ``None``):

* a missing feature, JSON ``null``, NaN and ±inf: ``null``;
* numeric feature: a number lands in the interior bin ``edges[i] <= x < edges[i+1]``, or
  ``below`` (``x < edges[0]``) or ``above`` (``x >= edges[-1]``); a string, a boolean, an
  object or an array is **invalid**: counted in ``null`` (it is not a measurement, so the
  missing rate sees it) and also in ``invalid``, so a caller sending ``"3.5"`` is visible;
* categorical feature: a string, a number (its JSON text) or a boolean (``True``/``False``,
  as Python's ``str``) lands in its top-K category or ``other``; an object or array is
  invalid (``null`` and ``invalid``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Bin codes of the SQL (interior bins and categories are 0, 1, …).
BELOW, ABOVE, NULL, OTHER, INVALID = -1, -2, -3, -4, -5
#: Cell kinds the layouts produce: what the JSON (or the column) held.
K_NULL, K_NUMBER, K_TEXT, K_NESTED, K_TRUE, K_FALSE = 0, 1, 2, 3, 4, 5

#: A slice of a window: (variant, version); (None, None) for a dataset.
Slice = tuple[str | None, str | None]


@dataclass(frozen=True)
class NumericBins:
    """A numeric feature's frozen edges, and the reference maximum ``above_gap`` is measured
    from (``analysis.drift.NumericProfile``)."""

    name: str
    edges: tuple[float, ...]
    maximum: float | None = None
    kind: str = "numeric"

    @property
    def interior(self) -> int:
        return max(len(self.edges) - 1, 0)


@dataclass(frozen=True)
class CategoricalBins:
    name: str
    categories: tuple[str, ...]
    kind: str = "categorical"

    @property
    def interior(self) -> int:
        return len(self.categories)


Bins = NumericBins | CategoricalBins


def bins_from_profile(profile: Mapping[str, Any]) -> list[Bins]:
    """The bins of every feature of a reference profile's JSON form (``as_dict()``)."""
    features = profile.get("features", profile)
    out: list[Bins] = []
    for name, f in features.items():
        if f["kind"] == "numeric":
            top = f.get("max")
            out.append(
                NumericBins(
                    str(name),
                    tuple(float(e) for e in f["edges"]),
                    float(top) if top is not None else None,
                )
            )
        else:
            out.append(CategoricalBins(str(name), tuple(str(c) for c in f["categories"])))
    return out


@dataclass
class FeatureCounts:
    """One feature's counts in one slice of a window; ``+`` merges windows or partitions."""

    counts: list[int]
    offsets: list[float] = field(default_factory=list)
    null: int = 0
    below: int = 0
    above: int = 0
    other: int = 0
    below_gap: float = 0.0
    above_gap: float = 0.0
    invalid: int = 0  # values of the wrong type, also counted in ``null``

    @classmethod
    def empty(cls, bins: Bins) -> FeatureCounts:
        numeric = isinstance(bins, NumericBins)
        return cls([0] * bins.interior, [0.0] * bins.interior if numeric else [])

    def __add__(self, other: FeatureCounts) -> FeatureCounts:
        if len(self.counts) != len(other.counts):
            raise ValueError(
                f"cannot add counts of {len(self.counts)} and {len(other.counts)} bins"
            )
        return FeatureCounts(
            [a + b for a, b in zip(self.counts, other.counts, strict=True)],
            [a + b for a, b in zip(self.offsets, other.offsets, strict=True)]
            if self.offsets and other.offsets
            else list(self.offsets or other.offsets),
            self.null + other.null,
            self.below + other.below,
            self.above + other.above,
            self.other + other.other,
            self.below_gap + other.below_gap,
            self.above_gap + other.above_gap,
            self.invalid + other.invalid,
        )

    def as_dict(self) -> dict[str, Any]:
        """``analysis.drift.Histogram.from_dict`` reads this."""
        return {
            "counts": list(self.counts),
            "offsets": list(self.offsets),
            "null": self.null,
            "below": self.below,
            "above": self.above,
            "other": self.other,
            "below_gap": self.below_gap,
            "above_gap": self.above_gap,
            "invalid": self.invalid,
        }


@dataclass
class SliceCounts:
    """A slice of a window: its requests, those with sampled inputs, the data rows counted
    (a request can carry several), and each feature's counts."""

    requests: int = 0
    sampled: int = 0
    truncated: int = 0  # sampled, but the payload was over the log's limit: not counted
    features: dict[str, FeatureCounts] = field(default_factory=dict)
    rows: int = 0  # data rows of the counted requests (a request can carry several)

    @property
    def coverage(self) -> float | None:
        """The share of the slice's requests whose inputs were counted."""
        counted = self.sampled - self.truncated
        return counted / self.requests if self.requests else None

    def __add__(self, other: SliceCounts) -> SliceCounts:
        names = set(self.features) | set(other.features)
        features: dict[str, FeatureCounts] = {}
        for n in sorted(names):
            a, b = self.features.get(n), other.features.get(n)
            if a is not None and b is not None:
                features[n] = a + b
            else:
                features[n] = a if a is not None else b  # type: ignore[assignment]
        return SliceCounts(
            self.requests + other.requests,
            self.sampled + other.sampled,
            self.truncated + other.truncated,
            features,
            self.rows + other.rows,
        )


def merge(*windows: Mapping[Slice, SliceCounts]) -> dict[Slice, SliceCounts]:
    """Windows (or replicas, or partitions) added slice by slice."""
    out: dict[Slice, SliceCounts] = {}
    for window in windows:
        for key, counts in window.items():
            out[key] = out[key] + counts if key in out else counts
    return out


def total(window: Mapping[Slice, SliceCounts]) -> SliceCounts:
    """Every slice of a window added together (the endpoint as a whole)."""
    out = SliceCounts()
    for counts in window.values():
        out = out + counts
    return out


# -- SQL --------------------------------------------------------------------------------------
Param = Callable[[str, Any], str]
"""``param(name, value)`` registers a bound parameter and returns its placeholder."""


def bin_sql(bins: Bins, fi: int, param: Param, *, k: str, x: str, s: str) -> str:
    """The bin code of one cell of feature ``fi`` (kind ``k``, number ``x``, text ``s``)."""
    if isinstance(bins, CategoricalBins):
        whens = " ".join(
            f"WHEN {param(f'c{fi}_{i}', c)} THEN {i}" for i, c in enumerate(bins.categories)
        )
        pick = f"CASE {s} {whens} ELSE {OTHER} END" if whens else str(OTHER)
        nested = f"WHEN {k} = {K_NESTED} THEN {INVALID}"
        return f"CASE WHEN {k} = {K_NULL} THEN {NULL} {nested} ELSE {pick} END"
    big = param("fmax", sys.float_info.max)
    head = (
        f"CASE WHEN {k} = {K_NULL} THEN {NULL} WHEN {k} <> {K_NUMBER} THEN {INVALID} "
        f"WHEN {x} IS NULL OR NOT ({x} BETWEEN -{big} AND {big}) THEN {NULL} "  # NaN, inf
    )
    if not bins.edges:
        return head + f"ELSE {OTHER} END"
    edges = [param(f"e{fi}_{i}", e) for i, e in enumerate(bins.edges)]
    return head + f"ELSE {_search(x, edges, -1, len(edges))} END"


def _search(x: str, edges: list[str], lo: int, hi: int) -> str:
    """A balanced ``CASE`` tree finding the bin of ``x`` given ``edges[lo] <= x < edges[hi]``
    (``lo = -1``: no lower bound; ``hi = len(edges)``: none above): about log2(bins)
    comparisons per value instead of a chain's bins / 2."""
    if hi - lo == 1:
        return str(BELOW if lo < 0 else ABOVE if lo == len(edges) - 1 else lo)
    mid = (lo + hi + 1) // 2 if lo < 0 else (lo + hi) // 2
    return (
        f"CASE WHEN {x} < {edges[mid]} THEN {_search(x, edges, lo, mid)} "
        f"ELSE {_search(x, edges, mid, hi)} END"
    )


def offset_sql(bins: Bins, fi: int, param: Param, *, b: str, x: str) -> str:
    """Per cell of bin ``b``: its distance from the bin's left edge (interior), below the
    reference minimum, or above its maximum; NULL (not summed) otherwise. A balanced ``CASE``
    over the bin codes (``bin_sql`` registered the edges)."""
    if not isinstance(bins, NumericBins) or not bins.edges:
        return "NULL"
    top = bins.maximum if bins.maximum is not None else math.inf
    first = param(f"e{fi}_0", bins.edges[0])
    leaves = [(ABOVE, f"{x} - {param(f'm{fi}', top)}"), (BELOW, f"{first} - {x}")]
    leaves += [(i, f"{x} - {param(f'e{fi}_{i}', e)}") for i, e in enumerate(bins.edges[:-1])]
    return f"CASE WHEN {b} < {ABOVE} THEN NULL ELSE {_pick(b, leaves)} END"


def _pick(b: str, leaves: list[tuple[int, str]]) -> str:
    if len(leaves) == 1:
        return leaves[0][1]
    mid = len(leaves) // 2
    return (
        f"CASE WHEN {b} < {leaves[mid][0]} THEN {_pick(b, leaves[:mid])} "
        f"ELSE {_pick(b, leaves[mid:])} END"
    )


#: Keeps the planner from inlining a sub-select into the one above it (SQLite's ``LIMIT -1``,
#: ``OFFSET 0`` elsewhere). Inlined, every reference to ``x`` or ``b`` would re-run the
#: expression behind it — a ``json_extract`` per comparison of the ``CASE`` tree, the tree
#: per offset branch: twice as slow on SQLite. Fenced, each runs once per cell (streamed as
#: a co-routine, not materialised).
FENCE = {"sqlite": "LIMIT -1"}


def binned_select(
    features: Sequence[Bins],
    cells: str,
    param: Param,
    slices: tuple[str, str],
    dialect: str,
) -> str:
    """``cells`` (a sub-select of ``variant, version, fi, k, x, s``) counted: one GROUP BY of
    (slice, feature, bin) with the count and the summed offsets."""
    fence = FENCE.get(dialect, "OFFSET 0")
    bin_case = " ".join(
        f"WHEN {fi} THEN ({bin_sql(f, fi, param, k='k', x='x', s='s')})"
        for fi, f in enumerate(features)
    )
    off_case = " ".join(
        f"WHEN {fi} THEN ({offset_sql(f, fi, param, b='b', x='x')})"
        for fi, f in enumerate(features)
    )
    variant, version = slices
    return (
        f"SELECT {variant} AS variant, {version} AS version, fi, b, COUNT(*) AS n, "
        f"SUM(CASE fi {off_case} WHEN -1 THEN x END) AS off "
        f"FROM (SELECT c.*, CASE c.fi {bin_case} END AS b "
        f"FROM ({cells} {fence}) c {fence}) binned "
        f"GROUP BY {variant}, {version}, fi, b"
    )


def fold(
    features: Sequence[Bins],
    rows: Iterable[Sequence[Any]],
    coverage: Iterable[Sequence[Any]] = (),
) -> dict[Slice, SliceCounts]:
    """The result rows ``(variant, version, fi, b, n, off)`` (bounded by slices, features and
    bins) into counts per slice; ``coverage`` rows are ``(variant, version, requests,
    sampled, truncated, data rows)`` (added up). A feature counted in fewer cells than its
    slice has data rows was missing from the others: those count ``null``."""
    out: dict[Slice, SliceCounts] = {}

    def slice_of(variant: Any, version: Any) -> SliceCounts:
        key = (variant, version)
        if key not in out:
            out[key] = SliceCounts(features={f.name: FeatureCounts.empty(f) for f in features})
        return out[key]

    for variant, version, requests, sampled, truncated, data_rows in coverage:
        s = slice_of(variant, version)
        s.requests += int(requests or 0)
        s.sampled += int(sampled or 0)
        s.truncated += int(truncated or 0)
        s.rows += int(data_rows or 0)
    for variant, version, fi, b, n, off in rows:
        if int(fi) == -1:  # the data rows, counted with the cells (PostgreSQL)
            slice_of(variant, version).rows += int(off or 0)
            continue
        feature = features[int(fi)]
        c = slice_of(variant, version).features[feature.name]
        b, n, off = int(b), int(n), float(off or 0.0)
        if b >= 0:
            c.counts[b] += n
            if c.offsets:
                c.offsets[b] += off
        elif b == BELOW:
            c.below += n
            c.below_gap += off
        elif b == ABOVE:
            c.above += n
            c.above_gap += off
        elif b == OTHER:
            c.other += n
        elif b == NULL:
            c.null += n
        elif b == INVALID:
            c.null += n
            c.invalid += n
    for s in out.values():
        for c in s.features.values():
            c.null += max(s.rows - (sum(c.counts) + c.below + c.above + c.other + c.null), 0)
    return out
