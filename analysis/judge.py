"""Judging one metric against its bounds, guarded by an interval when there is one.

One rule for every bound, applied to an :class:`Estimate` (a value and the interval
the data allow for it; a point metric such as a p95 latency has no interval, so its
interval is the value itself):

* a bound is **failed** only when the whole interval is on the wrong side of it;
* it is **passed** when the value is on the right side of it or exactly on it
  (``strict=True``: when the whole interval is);
* otherwise the measurement is **inconclusive**: the value breaches the bound (or, when
  strict, the interval reaches over it) but the data cannot yet tell.

``max_drop`` is judged the same way on the estimate of how much *worse* than the
baseline the candidate is (a rise for error rate, latency and cost; a fall for
feedback and agreement).
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.base import Bounds, Verdict, at_most, combine, fmt


@dataclass(frozen=True)
class Estimate:
    """A value, the interval around it (``(value, value)`` for a point metric), and how
    it was obtained (``"1/200, 95% interval [0.0009, 0.0277]"``), for the reason text."""

    value: float
    low: float
    high: float
    detail: str = ""

    @classmethod
    def point(cls, value: float) -> Estimate:
        return cls(value, value, value)

    def shown(self) -> str:
        return f"{fmt(self.value)} ({self.detail})" if self.detail else fmt(self.value)


def upper(estimate: Estimate, limit: float, strict: bool) -> Verdict:
    """Judge ``value <= limit``."""
    if not at_most(estimate.low, limit):
        return Verdict.FAIL
    if at_most(estimate.high if strict else estimate.value, limit):
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def lower(estimate: Estimate, limit: float, strict: bool) -> Verdict:
    """Judge ``value >= limit``."""
    if not at_most(limit, estimate.high):
        return Verdict.FAIL
    if at_most(limit, estimate.low if strict else estimate.value):
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def _clause(metric: str, what: str, bound: str, verdict: Verdict, value_inside: bool) -> str:
    if verdict is Verdict.PASS:
        return f"{metric} {what} within {bound}"
    if verdict is Verdict.FAIL:
        return f"{metric} {what} breaches {bound}"
    if value_inside:  # strict: the value is inside, its interval is not
        return f"{metric} {what} within {bound} but its interval reaches over it: not yet shown"
    return f"{metric} {what} breaches {bound} but its interval reaches back: not enough evidence"


def judge_metric(
    metric: str,
    bounds: Bounds,
    candidate: Estimate,
    *,
    worse: Estimate | None,
    baseline_name: str = "stable",
    strict: bool = False,
) -> tuple[Verdict, str]:
    """Judge ``candidate`` against ``bounds``; ``worse`` is how much worse than the
    baseline it is (direction already applied), needed only when ``max_drop`` is set.

    Returns the combined verdict (any FAIL, else any INCONCLUSIVE, else PASS) and one
    line of reason naming every bound.
    """
    verdicts: list[Verdict] = []
    clauses: list[str] = []
    what = candidate.shown()
    if bounds.min is not None:
        verdict = lower(candidate, bounds.min, strict)
        verdicts.append(verdict)
        inside = at_most(bounds.min, candidate.value)
        clauses.append(_clause(metric, what, f"min {bounds.min:g}", verdict, inside))
    if bounds.max is not None:
        verdict = upper(candidate, bounds.max, strict)
        verdicts.append(verdict)
        inside = at_most(candidate.value, bounds.max)
        clauses.append(_clause(metric, what, f"max {bounds.max:g}", verdict, inside))
    if bounds.max_drop is not None:
        if worse is None:
            raise ValueError("max_drop needs the baseline's estimate")  # a caller's bug
        verdict = upper(worse, bounds.max_drop, strict)
        verdicts.append(verdict)
        text = f"worse than {baseline_name} by {worse.shown()}"
        inside = at_most(worse.value, bounds.max_drop)
        clauses.append(_clause(metric, text, f"max_drop {bounds.max_drop:g}", verdict, inside))
    if not verdicts:
        return Verdict.PASS, f"{metric} {what}: no bounds set, reported only"
    return combine(verdicts), "; ".join(clauses)
