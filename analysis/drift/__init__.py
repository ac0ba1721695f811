"""Drift statistics from counts: the core a monitor uses (docs/monitors.md, "Statistics").

* :mod:`~analysis.drift.profile` — the frozen reference summary (bins, top-K, moments)
* :mod:`~analysis.drift.binning` — quantile edges of a numeric reference
* :mod:`~analysis.drift.histogram` — counts that merge by addition
* :mod:`~analysis.drift.counting` — ``count(values, feature_profile)``
* :mod:`~analysis.drift.vectors` — which bins each statistic reads
* :mod:`~analysis.drift.binned` — PSI, Jensen-Shannon, chi-square; KS, Wasserstein with bounds
* :mod:`~analysis.drift.raw` — exact KS and Wasserstein from raw values (small references)
* :mod:`~analysis.drift.ks_pvalue` — the two-sample KS p-value
* :mod:`~analysis.drift.methods` — tests by name, defaults, ``auto``
* :mod:`~analysis.drift.verdict` — a feature's verdict; the effect-size rule; missing rate
* :mod:`~analysis.drift.dataset` — the share of drifted features
"""

from analysis.drift.counting import count
from analysis.drift.dataset import DatasetVerdict, judge_dataset
from analysis.drift.histogram import Histogram
from analysis.drift.profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
    build_feature,
    build_reference,
)
from analysis.drift.verdict import FeatureVerdict, State, judge_feature, judge_missing

__all__ = [
    "CategoricalProfile",
    "DatasetVerdict",
    "FeatureProfile",
    "FeatureVerdict",
    "Histogram",
    "NumericProfile",
    "ReferenceProfile",
    "State",
    "build_feature",
    "build_reference",
    "count",
    "judge_dataset",
    "judge_feature",
    "judge_missing",
]
