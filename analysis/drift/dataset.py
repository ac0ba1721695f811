"""The dataset-level verdict: the share of drifted features against a threshold.

As Evidently's ``DataDriftPreset`` (``drift_share``, default 0.5): the dataset drifts when
the share of drifted features is at least the threshold. A feature drifts when any of its
signals does (its distribution or its missing rate); features with no data on every signal
are left out of the share and listed. No feature with data: the dataset is ``no_data``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.base import check_real
from analysis.drift.verdict import FeatureVerdict, State

DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class DatasetVerdict:
    features: int
    drifted_features: tuple[str, ...]
    no_data: tuple[str, ...]
    share: float | None
    threshold: float
    drifted: bool
    state: State

    def as_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "drifted_features": list(self.drifted_features),
            "no_data": list(self.no_data),
            "share": self.share,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "state": self.state.value,
        }


def feature_state(verdicts: Sequence[FeatureVerdict]) -> State:
    """Drift if any signal drifts, else ok if any had data, else no data."""
    states = {v.state for v in verdicts}
    if State.DRIFT in states:
        return State.DRIFT
    return State.OK if State.OK in states else State.NO_DATA


def judge_dataset(
    verdicts: Mapping[str, Sequence[FeatureVerdict]], *, share: float = DRIFT_SHARE
) -> DatasetVerdict:
    """``verdicts``: each feature's signals (e.g. its distribution and its missing rate)."""
    limit = check_real(share, "drift share", minimum=0)
    states = {name: feature_state(signals) for name, signals in verdicts.items()}
    drifted = tuple(name for name, s in states.items() if s is State.DRIFT)
    empty = tuple(name for name, s in states.items() if s is State.NO_DATA)
    judged = len(states) - len(empty)
    if judged == 0:
        return DatasetVerdict(0, (), empty, None, limit, False, State.NO_DATA)
    fraction = len(drifted) / judged
    hit = fraction >= limit
    return DatasetVerdict(
        judged, drifted, empty, fraction, limit, hit, State.DRIFT if hit else State.OK
    )
