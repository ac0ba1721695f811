"""Values every analysis shares: verdicts, bounds, one judged measurement, input errors.

The package is pure Python (the standard library only) so that the rollout
controller runs in a small CI job without numpy or scipy: counts in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class AnalysisError(ValueError):
    """Bad input to an analysis function; the message names what and where, on one line."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class BoundsLike(Protocol):
    """Anything with ``min``/``max``/``max_drop``: ``specs.evals.Threshold`` or :class:`Bounds`."""

    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def max_drop(self) -> float | None: ...


@dataclass(frozen=True)
class Bounds:
    """A copy of a threshold kept with each measurement (``specs.evals.Threshold``'s fields).

    ``min``/``max`` are absolute and judge the candidate alone; ``max_drop`` is how much
    worse than the baseline (the stable variant) the candidate may be, in the metric's
    own units, with "worse" following the metric's direction.
    """

    min: float | None = None
    max: float | None = None
    max_drop: float | None = None

    def __post_init__(self) -> None:
        for name in ("min", "max", "max_drop"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not _is_real(value)):
                raise AnalysisError(f"threshold {name} must be a finite number, got {value!r}")
        if self.max_drop is not None and self.max_drop < 0:
            raise AnalysisError(f"threshold max_drop must be >= 0, got {self.max_drop!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise AnalysisError(f"threshold min ({self.min:g}) is greater than max ({self.max:g})")

    @classmethod
    def of(cls, bounds: BoundsLike) -> Bounds:
        if isinstance(bounds, Bounds):
            return bounds
        return cls(bounds.min, bounds.max, bounds.max_drop)

    @property
    def relative(self) -> bool:
        """Whether judging needs the stable variant's value (only ``max_drop`` does)."""
        return self.max_drop is not None

    @property
    def empty(self) -> bool:
        return self.min is None and self.max is None and self.max_drop is None

    def describe(self) -> str:
        shown = [f"{k} {v:g}" for k, v in self.as_dict().items() if v is not None]
        return ", ".join(shown) if shown else "no bounds"

    def as_dict(self) -> dict[str, float | None]:
        return {"min": self.min, "max": self.max, "max_drop": self.max_drop}


@dataclass(frozen=True)
class Measurement:
    """One metric judged at one look.

    ``candidate``/``stable`` are the metric's values (``None`` when there was no data);
    ``interval`` is the confidence interval that guarded the verdict, when there was one
    (Wilson for a rate against ``min``/``max``, Newcombe for a difference against
    ``max_drop``).
    """

    metric: str
    candidate: float | None
    stable: float | None
    threshold: Bounds
    verdict: Verdict
    reason: str
    interval: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "candidate": self.candidate,
            "stable": self.stable,
            "threshold": self.threshold.as_dict(),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "interval": list(self.interval) if self.interval is not None else None,
        }


def combine(verdicts: list[Verdict]) -> Verdict:
    """Any FAIL → FAIL; else any INCONCLUSIVE → INCONCLUSIVE; else PASS (also for none)."""
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def check_count(value: object, where: str) -> int:
    """A non-negative integer count, or an :class:`AnalysisError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnalysisError(f"{where} must be a whole number, got {value!r}")
    if value < 0:
        raise AnalysisError(f"{where} must be >= 0, got {value}")
    return value


def check_real(value: object, where: str, *, minimum: float | None = None) -> float:
    """A finite number (optionally ``>= minimum``), or an :class:`AnalysisError`."""
    if isinstance(value, bool) or not _is_real(value):
        raise AnalysisError(f"{where} must be a finite number, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if minimum is not None and number < minimum:
        raise AnalysisError(f"{where} must be >= {minimum:g}, got {number:g}")
    return number


def check_level(value: object, where: str) -> float:
    """A probability strictly between 0 and 1 (a significance or confidence level)."""
    number = check_real(value, where)
    if not 0.0 < number < 1.0:
        raise AnalysisError(f"{where} must be between 0 and 1 (exclusive), got {number:g}")
    return number


def at_most(value: float, bound: float) -> bool:
    """``value <= bound``, forgiving float noise (``0.1 + 0.2`` is at most ``0.3``)."""
    return value <= bound or math.isclose(value, bound, rel_tol=1e-12, abs_tol=1e-15)


def fmt(value: float | None) -> str:
    if value is None:
        return "no value"
    if value == 0 or 1e-4 <= abs(value) < 1e4:
        return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return f"{value:.4g}"


def span(low: float, high: float) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"
