"""Which bins each statistic reads, as two aligned count vectors (reference, current).

* ``fine``: numeric — below, every interior bin, above; categorical — the top-K, other.
  Jensen-Shannon uses these.
* ``psi``: numeric — below, the interior bins merged into the reference's deciles
  (``psi_groups``), above; categorical — as ``fine``. SPEC.md: PSI uses 10 quantile bins.
* ``chisquare``: numeric — the interior bins with below folded into the first and above into
  the last (the extreme bins are open-ended: a value past the reference's range is in the
  tail, not in a bin the reference "never saw", which would make the statistic infinite);
  categorical — as ``fine``: a category the reference never had is a real change.
"""

from __future__ import annotations

from analysis.drift.histogram import Histogram
from analysis.drift.profile import FeatureProfile

Pair = tuple[list[int], list[int]]


def fine(profile: FeatureProfile, current: Histogram) -> Pair:
    ref = profile.reference
    if profile.kind == "numeric":
        return (
            [ref.below, *ref.counts, ref.above],
            [current.below, *current.counts, current.above],
        )
    return [*ref.counts, ref.other], [*current.counts, current.other]


def _grouped(counts: tuple[int, ...], groups: tuple[int, ...]) -> list[int]:
    out = [0] * (max(groups) + 1 if groups else 0)
    for c, g in zip(counts, groups, strict=True):
        out[g] += c
    return out


def for_psi(profile: FeatureProfile, current: Histogram) -> Pair:
    if profile.kind != "numeric":
        return fine(profile, current)
    ref, groups = profile.reference, profile.psi_groups
    return (
        [ref.below, *_grouped(ref.counts, groups), ref.above],
        [current.below, *_grouped(current.counts, groups), current.above],
    )


def for_chisquare(profile: FeatureProfile, current: Histogram) -> Pair:
    if profile.kind != "numeric":
        return fine(profile, current)

    def folded(h: Histogram) -> list[int]:
        out = list(h.counts)
        out[0] += h.below
        out[-1] += h.above
        return out

    return folded(profile.reference), folded(current)
