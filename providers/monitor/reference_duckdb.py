"""Numeric reference columns profiled inside DuckDB: nothing but aggregates leaves the engine.

``analysis.drift.build_feature`` profiles a column it holds in memory: every value a Python
float, the column sorted in Python. On a reference of 10 million rows x 20 features that is
gigabytes (and minutes); here each numeric column is summarised where the data lives, one
column at a time, so the memory needed is about one column of doubles in DuckDB (for the
exact quantiles) whatever the number of features, and nothing row-sized reaches Python:

* one aggregate per column: the finite values' count, min, max, sum (``fsum``, compensated),
  population standard deviation, distinct count (exact up to :data:`EXACT_DISTINCT`, the
  HyperLogLog estimate above) and the quantiles at
  ``analysis.drift.binning.levels`` (``quantile_cont``: the same linear interpolation as
  numpy's default and :func:`analysis.drift.binning.quantile`);
* for discrete data (at most ``bins`` distinct values) those values, and for a small
  reference (at most ``KEEP_VALUES``) the sorted values themselves, as the in-memory builder
  keeps them;
* the reference's counts in its own bins: the one ``GROUP BY`` that counts every current
  window (:func:`inference.drift_files.file_counts`), so a reference and a window are counted
  by the same code.

The profile equals ``build_feature``'s on the same values: counts, min, max and distinct
(up to :data:`EXACT_DISTINCT`) exactly; the edges (the same interpolation: DuckDB may round
its last bit otherwise), mean, std and the bins' summed offsets up to floating-point
rounding (the sums run in another order). Only columns of DuckDB's integer and floating
types take this path: the rest (text, booleans, ``DECIMAL``, which Python reads as
``Decimal``) keep the in-memory builder, which decides their kind as before.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from analysis.drift import Histogram, NumericProfile
from analysis.drift.binning import discrete_edges, levels, quantile, quantile_edges
from analysis.drift.profile import DEFAULT_BINS, KEEP_VALUES
from inference.drift_bins import NumericBins
from inference.drift_files import NUMBERS, file_counts

#: DuckDB column types profiled in the engine (``DECIMAL`` is not: Python sees ``Decimal``).
NUMERIC_TYPES = frozenset(NUMBERS) - {"DECIMAL"}


#: Up to this many distinct values (by DuckDB's HyperLogLog estimate, within a few percent)
#: the distinct count is exact; above it the estimate is kept. Only "more than 5" (``auto``)
#: and "at most ``bins``" (discrete edges) are ever asked of it, and an exact count of ten
#: million distinct doubles is a hash table of ten million entries: the memory this module
#: exists to save.
EXACT_DISTINCT = 100_000
#: Up to this many values a column's quantiles are DuckDB's ``quantile_cont``, which holds
#: the column (8 bytes a value, a few copies while it grows: ~300 MB at 10 million); above
#: it they come from exact order statistics found by bucket counts (:func:`order_statistics`),
#: in memory bounded by what it fetches.
SORT_IN_MEMORY = 2_000_000
#: Buckets of each counting pass of :func:`order_statistics`, and the most values of the
#: buckets holding the wanted ranks it fetches at once (8 bytes each).
BUCKETS = 4096
FETCH_VALUES = 1_000_000


def in_engine(column_type: str) -> bool:
    """Whether a column of this DuckDB type is profiled here."""
    return column_type.split("(")[0].upper() in NUMERIC_TYPES


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _finite(source: str, name: str) -> str:
    """The column's finite values as doubles (NULL, NaN and +-inf left out, as missing)."""
    big = repr(sys.float_info.max)
    return (
        f"(SELECT CAST({_ident(name)} AS DOUBLE) AS x FROM {source}) v "
        f"WHERE x BETWEEN -{big} AND {big}"
    )


def profile_numeric(
    con: Any,
    source: str,
    path: str,
    names: Sequence[str],
    rows: int,
    *,
    bins: int = DEFAULT_BINS,
) -> dict[str, NumericProfile]:
    """Profiles of the numeric columns ``names`` of ``source`` (``read_parquet``/``read_csv``
    of ``path``, ``rows`` rows), computed by DuckDB on the connection ``con``."""
    shells: dict[str, dict[str, Any]] = {}
    for name in names:
        shells[name] = _summary(con, source, name, bins)
    counted_bins = [
        NumericBins(name, s["edges"], s["max"]) for name, s in shells.items() if s["edges"]
    ]
    counted = file_counts(path, counted_bins).get((None, None)) if counted_bins else None
    out: dict[str, NumericProfile] = {}
    for name, s in shells.items():
        if not s["edges"]:
            out[name] = NumericProfile(name, (), (), Histogram(counts=(), null=rows), 0)
            continue
        assert counted is not None
        reference = Histogram.from_dict(counted.features[name].as_dict())
        out[name] = NumericProfile(
            name=name,
            edges=s["edges"],
            psi_groups=s["groups"],
            reference=reference,
            distinct=s["distinct"],
            min=s["min"],
            max=s["max"],
            mean=s["mean"],
            std=s["std"],
            values=s["values"],
        )
    return out


def _summary(con: Any, source: str, name: str, bins: int) -> dict[str, Any]:
    """One column's aggregates, edges and (small reference) values."""
    finite = _finite(source, name)
    n, low, high, total, std, distinct = con.execute(
        f"SELECT count(x), min(x), max(x), fsum(x), stddev_pop(x), approx_count_distinct(x) "
        f"FROM {finite}"
    ).fetchone()
    if not n:
        return {"edges": ()}
    if distinct <= EXACT_DISTINCT:
        (distinct,) = con.execute(f"SELECT count(DISTINCT x) FROM {finite}").fetchone()
    values: tuple[float, ...] | None = None
    if n <= KEEP_VALUES:
        values = tuple(r[0] for r in con.execute(f"SELECT x FROM {finite} ORDER BY x").fetchall())
    if distinct <= bins:
        few = [r[0] for r in con.execute(f"SELECT DISTINCT x FROM {finite} ORDER BY x").fetchall()]
        edges, groups = discrete_edges(few)
    else:
        edges, groups = quantile_edges(_quantiles(con, finite, n, bins), float(high))
    return {
        "edges": edges,
        "groups": groups,
        "distinct": int(distinct),
        "min": float(low),
        "max": float(high),
        "mean": float(total) / n,
        "std": float(std),
        "values": values,
    }


def _quantiles(con: Any, finite: str, n: int, bins: int) -> list[float]:
    """The quantiles at ``levels(bins)``: ``quantile_cont`` up to :data:`SORT_IN_MEMORY`
    values, else from the exact order statistics (:func:`order_statistics`)."""
    if n <= SORT_IN_MEMORY:
        (got,) = con.execute(f"SELECT quantile_cont(x, {levels(bins)!r}) FROM {finite}").fetchone()
        return [float(q) for q in got]
    ranks: set[int] = set()
    for level in levels(bins):
        position = math.floor((n - 1) * level)
        ranks.update(r for r in (position, position + 1) if r < n)
    sparse = _Sparse(n, order_statistics(con, finite, sorted(ranks)))
    return [quantile(sparse, level) for level in levels(bins)]


def order_statistics(con: Any, finite: str, ranks: Sequence[int]) -> dict[int, float]:
    """The values of rank ``r`` (0-based, ascending) of the column, exactly, in memory
    bounded by :data:`FETCH_VALUES` instead of the column's length.

    One pass counts the values of ``[low, high]`` (first the whole column) into
    :data:`BUCKETS` equal-width buckets (``floor((x - low) / width)``: monotone in ``x``, so
    the running counts say which bucket holds each rank, and its min and max); the values of
    the buckets holding a rank are then fetched and sorted when they are few, or the bucket
    is split again (a skewed column), until every rank is found.
    """
    found: dict[int, float] = {}
    (low, high) = con.execute(f"SELECT min(x), max(x) FROM {finite}").fetchone()
    pending = [(float(low), float(high), 0, sorted(set(ranks)))] if ranks else []
    while pending:
        low, high, before, wanted = pending.pop()
        if low == high:
            found.update((r, low) for r in wanted)
            continue
        band = f"{finite} AND x BETWEEN {low!r} AND {high!r}"
        half = (high * 0.5 - low * 0.5) / BUCKETS  # halves: no overflow on +-1e308
        if half == 0:  # a range of a few adjacent doubles: peel off its lowest value
            (at_low, above) = con.execute(
                f"SELECT count(*) FILTER (WHERE x = {low!r}), min(x) FILTER (WHERE x > {low!r}) "
                f"FROM {band}"
            ).fetchone()
            found.update((r, low) for r in wanted if r < before + at_low)
            rest = [r for r in wanted if r >= before + at_low]
            if rest:
                pending.append((float(above), high, before + at_low, rest))
            continue
        bucket = (
            f"least(CAST(floor((x * 0.5 - {low * 0.5!r}) / {half!r}) AS BIGINT), {BUCKETS - 1})"
        )
        rows = con.execute(
            f"SELECT {bucket} AS k, count(*), min(x), max(x) FROM {band} GROUP BY k ORDER BY k"
        ).fetchall()
        holding: dict[int, tuple[int, float, float, int, list[int]]] = {}
        running = before
        it = iter(wanted)
        r = next(it, None)
        for k, count, first, last in rows:
            while r is not None and r < running + count:
                holding.setdefault(int(k), (running, float(first), float(last), count, []))[
                    4
                ].append(r)
                r = next(it, None)
            running += count
        small = {k: h for k, h in holding.items() if h[3] <= FETCH_VALUES}
        if small:
            keys = ", ".join(str(k) for k in small)
            fetched: dict[int, list[float]] = {k: [] for k in small}
            for k, x in con.execute(
                f"SELECT {bucket} AS k, x FROM {band} AND {bucket} IN ({keys})"
            ).fetchall():
                fetched[int(k)].append(float(x))
            for k, (start, _, _, _, rs) in small.items():
                values = sorted(fetched[k])
                found.update((r, values[r - start]) for r in rs)
        for k, (start, first, last, _, rs) in holding.items():
            if k not in small:
                pending.append((first, last, start, rs))
    return found


class _Sparse(Sequence[float]):
    """A sorted column of ``n`` values of which only some ranks are known: what
    :func:`analysis.drift.binning.quantile` reads (so the interpolation is bit for bit the
    in-memory builder's)."""

    def __init__(self, n: int, known: dict[int, float]) -> None:
        self._n, self._known = n, known

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            raise TypeError("only single ranks are known")
        return self._known[index % self._n]
