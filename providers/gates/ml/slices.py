"""Slices (one per value of each ``slices.by`` column) and metrics over all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.gates.ml.metrics import Options, Scored, compute
from providers.gates.ml.table import Table


@dataclass(frozen=True)
class Slice:
    column: str
    value: str
    mask: Any
    rows: int

    @property
    def name(self) -> str:
        return f"{self.column}={self.value}"


def make_slices(table: Table, by: Sequence[str]) -> list[Slice]:
    """One slice per distinct value of each column, in sorted order (columns kept apart)."""
    import numpy as np

    out: list[Slice] = []
    for column in by:
        values = np.asarray([str(v) for v in table.column(column, "slice")])
        distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        for i, value in enumerate(distinct):
            out.append(Slice(column, str(value), inverse == i, int(counts[i])))
    return out


@dataclass
class Measured:
    """Metric values of one model: overall and per slice name."""

    overall: dict[str, Any]
    slices: dict[str, dict[str, Any]]


def measure(
    scored: Scored,
    overall_metrics: Sequence[str],
    slices: Sequence[Slice],
    slice_metrics: Sequence[str],
    opts: Options,
) -> Measured:
    per_slice = {s.name: compute(slice_metrics, scored.subset(s.mask), opts) for s in slices}
    return Measured(compute(overall_metrics, scored, opts), per_slice)
