"""One data-drift run judged from counts: per-feature verdicts, the missing-rate signal, the
dataset verdict, per (variant, version) slice, with the drift attributed to the slices that
drifted.

The monitor's state is one of SPEC.md's fixed states:

* ``firing`` — some feature drifts (its distribution or its missing rate) in at least one slice
  or in the whole window. The dataset verdict (share of drifted features, drift at 0.5) is
  reported with it but does not gate the alert: a monitor lists the features its owner cares
  about, and two of five drifting is already worth a look (docs/decisions.md);
* ``ok`` — some slice had data and none drifted;
* ``no_data`` — no slice had a value of any feature (a window with no traffic), never ``ok``;
* ``error`` — decided by the caller (an unreadable reference or log), never ``ok``.

Slices are judged on their own *and* the window as a whole: a variant that takes a tenth of
the traffic can drift without moving the total, and is still named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analysis.drift import (
    DatasetVerdict,
    FeatureVerdict,
    Histogram,
    ReferenceProfile,
    State,
    judge_dataset,
    judge_feature,
    judge_missing,
)
from inference.drift_bins import Slice, SliceCounts, total

OK, FIRING, NO_DATA, ERROR = "ok", "firing", "no_data", "error"


@dataclass(frozen=True)
class SliceResult:
    variant: str | None
    version: str | None
    requests: int
    rows: int
    dataset: DatasetVerdict
    features: dict[str, list[FeatureVerdict]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "version": self.version,
            "requests": self.requests,
            "rows": self.rows,
            "breach": bool(self.dataset.drifted_features),
            "findings": self.findings(),
            "dataset": self.dataset.as_dict(),
            "features": {n: [v.as_dict() for v in vs] for n, vs in self.features.items()},
        }

    def findings(self) -> list[str]:
        """Each drifted signal as one line: the method, its statistic, threshold and effect."""
        out = []
        for name, signals in self.features.items():
            for v in signals:
                if v.drifted:
                    d = v.as_dict()
                    effect = (
                        f" (effect {d['effect_name']} {_num(d['effect'])})" if d["effect"] else ""
                    )
                    if d["p_value"] is not None:  # ks / chisquare: the p-value was judged
                        said = (
                            f"{d['method']} {_num(d['statistic'])}, p {_num(d['p_value'])} < "
                            f"{_num(d['threshold'])}"
                        )
                    else:
                        said = f"{d['method']} {_num(d['statistic'])} >= {_num(d['threshold'])}"
                    out.append(f"{name}: {said}{effect}")
        return out


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else str(x)


@dataclass(frozen=True)
class RunResult:
    state: str
    whole: SliceResult | None
    slices: list[SliceResult] = field(default_factory=list)
    reason: str = ""

    @property
    def drifted_slices(self) -> list[SliceResult]:
        return [s for s in self.slices if s.dataset.drifted_features]

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "whole": self.whole.as_dict() if self.whole is not None else None,
            "slices": [s.as_dict() for s in self.slices],
            "drifted_slices": [[s.variant, s.version] for s in self.drifted_slices],
        }


def error(reason: str) -> RunResult:
    return RunResult(ERROR, None, [], reason)


def judge_slice(
    key: Slice,
    counts: SliceCounts,
    profile: ReferenceProfile,
    *,
    method: str = "auto",
    threshold: float | None = None,
) -> SliceResult:
    verdicts: dict[str, list[FeatureVerdict]] = {}
    for name, feature in profile.features.items():
        got = counts.features.get(name)
        hist = (
            Histogram.from_dict(got.as_dict())
            if got is not None
            else Histogram.empty(len(feature.reference.counts))
        )
        verdicts[name] = [
            judge_feature(feature, hist, method=method, threshold=threshold),
            judge_missing(feature, hist),
        ]
    return SliceResult(
        key[0], key[1], counts.requests, counts.rows, judge_dataset(verdicts), verdicts
    )


def judge_run(
    window: Mapping[Slice, SliceCounts],
    profile: ReferenceProfile,
    *,
    method: str = "auto",
    threshold: float | None = None,
) -> RunResult:
    """Judge a window (a dataset is the one slice ``(None, None)``)."""
    slices = [
        judge_slice(key, counts, profile, method=method, threshold=threshold)
        for key, counts in sorted(window.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
    ]
    if len(slices) == 1:
        whole: SliceResult | None = slices[0]
    elif slices:
        whole = judge_slice((None, None), total(window), profile, method=method,
                            threshold=threshold)  # fmt: skip
    else:
        whole = None
    judged = [s for s in [*slices, whole] if s is not None]
    if not judged or all(s.dataset.state is State.NO_DATA for s in judged):
        return RunResult(NO_DATA, whole, slices, "no values in the window")
    drifted = [s for s in judged if s.dataset.drifted_features]
    if drifted:
        names = sorted({f for s in drifted for f in s.dataset.drifted_features})
        return RunResult(FIRING, whole, slices, f"drift in {', '.join(names)}")
    return RunResult(OK, whole, slices, "no drift")
