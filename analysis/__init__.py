"""Statistics for progressive rollouts: canary judgement, analysis runs, A/B and shadow tests.

Pure functions over counts (the standard library only; no numpy or scipy at run time).
The methods, formulas, defaults and references are in docs/statistics.md.

* :mod:`analysis.canary` — candidate vs stable over one window → measurements
* :mod:`analysis.runs` — Argo Rollouts' failure / inconclusive / error limits over looks
* :mod:`analysis.sequential` — mSPRT: always-valid p-values and confidence sequences
* :mod:`analysis.srm` — sample-ratio mismatch (chi-square goodness of fit)
* :mod:`analysis.shadow` — primary vs shadow on the same requests
* :mod:`analysis.fixed` — fixed-horizon z-tests and sample sizes, for sizing and contrast
"""

from analysis.base import AnalysisError, Bounds, Measurement, Verdict
from analysis.canary import Feedback, VariantStats, judge_canary
from analysis.runs import Action, Decision, Limits, Tally, decide, run_verdict
from analysis.sequential import (
    ABResult,
    ABVerdict,
    SequentialState,
    compare_means,
    compare_proportions,
)
from analysis.shadow import Pair, ShadowStats, judge_shadow, summarize
from analysis.srm import SrmResult, check_srm

__all__ = [
    "ABResult",
    "ABVerdict",
    "Action",
    "AnalysisError",
    "Bounds",
    "Decision",
    "Feedback",
    "Limits",
    "Measurement",
    "Pair",
    "SequentialState",
    "ShadowStats",
    "SrmResult",
    "Tally",
    "VariantStats",
    "Verdict",
    "check_srm",
    "compare_means",
    "compare_proportions",
    "decide",
    "judge_canary",
    "judge_shadow",
    "run_verdict",
    "summarize",
]
