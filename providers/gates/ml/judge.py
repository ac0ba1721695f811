"""Judging metric values against ``min``/``max`` and, with a baseline, ``max_drop``.

``max_drop`` is direction-aware and in the metric's own units: for a metric
where higher is better the candidate fails when ``baseline - value > max_drop``;
for a loss or an error (``specs.evals.LOWER_IS_BETTER``) when
``value - baseline > max_drop``. A metric that is undefined on the rows (ROC
AUC with one class) fails when judged overall and is reported, not judged, in
a slice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from providers.gates.ml.metrics import higher_is_better
from specs.evals import Threshold

#: Float noise allowed before a difference counts (two runs of one model agree exactly).
_EPS = 1e-12
OVERALL = "overall"


@dataclass
class Check:
    metric: str
    scope: str  # "overall" or a slice name such as "site=north"
    value: float | None
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    baseline: float | None = None
    judged: bool = True
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


def fmt(value: float | None) -> str:
    if value is None:
        return "undefined"
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def judge(
    metric: str,
    scope: str,
    value: float | None,
    bounds: Threshold,
    baseline: float | None,
    baseline_name: str | None,
    mention_baseline: bool = True,
) -> Check:
    check = Check(metric, scope, value, bounds.min, bounds.max, bounds.max_drop, baseline)
    where = "" if scope == OVERALL else f" on {scope}"
    if value is None:
        if scope == OVERALL:
            check.reasons.append(f"{metric}{where} is undefined on these rows")
        else:
            check.judged = False
            check.notes.append("undefined on this slice: reported, not judged")
        return check
    shown = mention_baseline and baseline is not None
    versus = f" ({baseline_name}: {fmt(baseline)})" if shown else ""
    if bounds.min is not None and value < bounds.min - _EPS:
        check.reasons.append(f"{metric}{where} {fmt(value)} < min {bounds.min:g}{versus}")
    if bounds.max is not None and value > bounds.max + _EPS:
        check.reasons.append(f"{metric}{where} {fmt(value)} > max {bounds.max:g}{versus}")
    if bounds.max_drop is not None:
        if baseline is None:
            check.notes.append("max_drop not judged: no baseline value")
        else:
            worse = baseline - value if higher_is_better(metric) else value - baseline
            if worse > bounds.max_drop + _EPS:
                direction = "fell" if higher_is_better(metric) else "rose"
                check.reasons.append(
                    f"{metric}{where} {fmt(value)} {direction} {worse:.4f} from "
                    f"{baseline_name or 'baseline'} ({fmt(baseline)}), "
                    f"max_drop {bounds.max_drop:g}"
                )
    return check
