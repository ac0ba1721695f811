"""The reference profile: a frozen, JSON-serialisable summary of a reference dataset.

Built once per dataset fingerprint and kept; every later run counts its window into the same
bins (:func:`analysis.drift.counting.count`) and computes its statistics from the counts.

* numeric feature: bin edges (:mod:`analysis.drift.binning`), the reference's counts in them,
  row count, missing rate, min, max, mean and (population) standard deviation — the
  normaliser of the Wasserstein distance, as Evidently's ``wasserstein_distance_norm`` — and,
  for a small reference (at most :data:`KEEP_VALUES` values), the values themselves, for the
  exact raw-value KS and Wasserstein;
* categorical feature: the top-K categories (most frequent first, ties by name), ``other``
  and ``null`` counts.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from analysis.base import AnalysisError
from analysis.drift.binning import numeric_edges
from analysis.drift.counting import count_numeric
from analysis.drift.histogram import Histogram

DEFAULT_BINS = 20
MIN_BINS, MAX_BINS = 20, 50
DEFAULT_TOP_K = 20
#: Evidently's boundary between small and large references (its ``auto`` test choice).
KEEP_VALUES = 1000

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class NumericProfile:
    name: str
    edges: tuple[float, ...]
    psi_groups: tuple[int, ...]
    reference: Histogram
    distinct: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    values: tuple[float, ...] | None = field(default=None, repr=False)
    kind: Literal["numeric"] = "numeric"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": list(self.edges),
            "psi_groups": list(self.psi_groups),
            "reference": self.reference.as_dict(),
            "distinct": self.distinct,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "values": list(self.values) if self.values is not None else None,
            "rows": self.reference.rows,
            "missing_rate": self.reference.missing_rate,
        }


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    categories: tuple[str, ...]
    reference: Histogram
    kind: Literal["categorical"] = "categorical"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "categories": list(self.categories),
            "reference": self.reference.as_dict(),
            "rows": self.reference.rows,
            "missing_rate": self.reference.missing_rate,
        }


FeatureProfile = NumericProfile | CategoricalProfile


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def infer_kind(values: Iterable[object]) -> Kind:
    """Numeric when every non-null value is an int or float (not a bool), else categorical."""
    for value in values:
        if _missing(value):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "categorical"
    return "numeric"


def build_feature(
    name: str,
    values: Iterable[object],
    *,
    kind: Kind | None = None,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
) -> FeatureProfile:
    """Profile one reference column (an iterable of its values, ``None`` for missing)."""
    if isinstance(bins, bool) or not isinstance(bins, int) or not MIN_BINS <= bins <= MAX_BINS:
        raise AnalysisError(
            f"bins must be a whole number from {MIN_BINS} to {MAX_BINS}, got {bins!r}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise AnalysisError(f"top_k must be a whole number >= 1, got {top_k!r}")
    column = list(values)
    chosen = kind or infer_kind(column)
    if chosen == "numeric":
        return _numeric(name, column, bins)
    if chosen == "categorical":
        return _categorical(name, column, top_k)
    raise AnalysisError(f"feature kind must be numeric or categorical, got {kind!r}")


def _numeric(name: str, column: list[object], bins: int) -> NumericProfile:
    xs: list[float] = []
    for value in column:
        if _missing(value):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AnalysisError(f"feature {name!r} is numeric, got {value!r}")
        xs.append(float(value))
    xs.sort()
    if not xs:
        return NumericProfile(name, (), (), Histogram(counts=(), null=len(column)), 0)
    edges, groups = numeric_edges(xs, bins)
    mean = math.fsum(xs) / len(xs)
    return NumericProfile(
        name=name,
        edges=edges,
        psi_groups=groups,
        reference=count_numeric(column, name, edges, xs[-1]),
        distinct=_distinct(xs),
        min=xs[0],
        max=xs[-1],
        mean=mean,
        std=math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / len(xs)),
        values=tuple(xs) if len(xs) <= KEEP_VALUES else None,
    )


def _distinct(ordered: list[float]) -> int:
    return 1 + sum(1 for a, b in itertools.pairwise(ordered) if a != b)


def _categorical(name: str, column: list[object], top_k: int) -> CategoricalProfile:
    seen = Counter(str(v) for v in column if not _missing(v))
    ranked = sorted(seen.items(), key=lambda item: (-item[1], item[0]))
    top = ranked[:top_k]
    return CategoricalProfile(
        name=name,
        categories=tuple(category for category, _ in top),
        reference=Histogram(
            counts=tuple(n for _, n in top),
            null=sum(1 for v in column if _missing(v)),
            other=sum(n for _, n in ranked[top_k:]),
        ),
    )


def feature_from_dict(data: Mapping[str, Any]) -> FeatureProfile:
    """The inverse of ``as_dict`` (a profile read back from JSON)."""
    try:
        reference = Histogram.from_dict(data["reference"])
        if data["kind"] == "categorical":
            return CategoricalProfile(str(data["name"]), tuple(data["categories"]), reference)
        if data["kind"] != "numeric":
            raise AnalysisError(
                f"feature kind must be numeric or categorical, got {data['kind']!r}"
            )
        values = data.get("values")
        return NumericProfile(
            name=str(data["name"]),
            edges=tuple(float(e) for e in data["edges"]),
            psi_groups=tuple(int(g) for g in data["psi_groups"]),
            reference=reference,
            distinct=int(data["distinct"]),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            values=tuple(float(v) for v in values) if values is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, AnalysisError):
            raise
        raise AnalysisError(f"not a feature profile: {exc!r}") from None


@dataclass(frozen=True)
class ReferenceProfile:
    """Every feature of one reference dataset, keyed by the dataset's fingerprint."""

    fingerprint: str
    rows: int
    features: Mapping[str, FeatureProfile]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "features": {name: f.as_dict() for name, f in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        features = data.get("features")
        if not isinstance(features, Mapping):
            raise AnalysisError("a reference profile needs a `features` mapping")
        return cls(
            fingerprint=str(data.get("fingerprint", "")),
            rows=int(data.get("rows", 0)),
            features={name: feature_from_dict(f) for name, f in features.items()},
        )


def build_reference(
    fingerprint: str,
    columns: Mapping[str, Iterable[object]],
    *,
    kinds: Mapping[str, Kind] | None = None,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
) -> ReferenceProfile:
    """Profile each column of a reference dataset (every column has one value per row)."""
    features = {
        name: build_feature(name, values, kind=(kinds or {}).get(name), bins=bins, top_k=top_k)
        for name, values in columns.items()
    }
    rows = {f.reference.rows for f in features.values()}
    if len(rows) > 1:
        raise AnalysisError(f"reference columns differ in length: {sorted(rows)} rows")
    return ReferenceProfile(fingerprint, next(iter(rows), 0), features)
