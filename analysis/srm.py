"""Sample-ratio mismatch: did the arms get the traffic the split intended?

Pearson's chi-square goodness-of-fit test of the observed arm counts against the
intended weights: expected_i = N * w_i / sum(w), X^2 = sum (o_i - e_i)^2 / e_i with
k - 1 degrees of freedom. A mismatch is flagged at p < 0.001 (the usual threshold:
Kohavi et al., "Trustworthy Online Controlled Experiments", ch. 21; Fabijan et al. 2019,
"Diagnosing Sample Ratio Mismatch"). A mismatch means assignment or logging is broken,
so any A/B verdict is void: :mod:`analysis.sequential` turns it into INCONCLUSIVE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analysis.base import AnalysisError, check_count, check_level, check_real, fmt
from analysis.distributions import chi2_sf

#: Flag a mismatch when the goodness-of-fit p-value is below this.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    df: int
    p_value: float
    mismatch: bool
    reason: str


def check_srm(
    observed: Mapping[str, int] | Sequence[int],
    weights: Mapping[str, float] | Sequence[float],
    *,
    threshold: float = SRM_THRESHOLD,
) -> SrmResult:
    """Test the observed counts per arm against the intended split ``weights``.

    Both are mappings keyed by arm name (the same names) or sequences in the same order.
    Weights need not sum to 1 (``[50, 50]`` works). An arm of weight 0 that received
    traffic is a mismatch outright (p = 0); one that received none is left out.
    """
    check_level(threshold, "SRM threshold")
    arms, counts, shares = _align(observed, weights)
    total = sum(counts)
    label = ", ".join(f"{a} {c}" for a, c in zip(arms, counts, strict=True))
    for arm, count, share in zip(arms, counts, shares, strict=True):
        if share == 0 and count > 0:
            return SrmResult(
                arms,
                counts,
                tuple(0.0 for _ in arms),
                float("inf"),
                len(arms) - 1,
                0.0,
                True,
                f"sample ratio mismatch: arm {arm} has weight 0 but {count} observations",
            )
    kept = [(a, c, w) for a, c, w in zip(arms, counts, shares, strict=True) if w > 0]
    weight_sum = sum(w for _, _, w in kept)
    expected = tuple(total * w / weight_sum if w > 0 else 0.0 for w in shares)
    df = len(kept) - 1
    if total == 0 or df < 1:
        why = "no observations" if total == 0 else "fewer than two arms with weight"
        return SrmResult(arms, counts, expected, 0.0, max(df, 0), 1.0, False, f"no SRM test: {why}")
    statistic = sum(
        (c - total * w / weight_sum) ** 2 / (total * w / weight_sum) for _, c, w in kept
    )
    p = chi2_sf(statistic, df)
    mismatch = p < threshold
    intended = ":".join(f"{w / weight_sum * 100:g}" for _, _, w in kept)
    if mismatch:
        reason = (
            f"sample ratio mismatch: observed {label} against an intended {intended} split "
            f"(chi-square {statistic:.2f}, df {df}, p = {p:.2g} < {threshold:g}); "
            "assignment or logging is broken, the comparison is void"
        )
    else:
        reason = f"no sample ratio mismatch (chi-square {statistic:.2f}, df {df}, p = {fmt(p)})"
    return SrmResult(arms, counts, expected, statistic, df, p, mismatch, reason)


def _align(
    observed: Mapping[str, int] | Sequence[int], weights: Mapping[str, float] | Sequence[float]
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...]]:
    if isinstance(observed, Mapping) != isinstance(weights, Mapping):
        raise AnalysisError(
            "SRM: give observed counts and weights both as mappings or both as lists"
        )
    if isinstance(observed, Mapping) and isinstance(weights, Mapping):
        if set(observed) != set(weights):
            raise AnalysisError(
                f"SRM: arms differ between counts ({', '.join(sorted(observed))}) "
                f"and weights ({', '.join(sorted(weights))})"
            )
        arms = tuple(observed)
        counts = [observed[a] for a in arms]
        shares = [weights[a] for a in arms]
    else:
        assert not isinstance(observed, Mapping) and not isinstance(weights, Mapping)
        if len(observed) != len(weights):
            raise AnalysisError(f"SRM: {len(observed)} observed counts but {len(weights)} weights")
        arms = tuple(chr(ord("A") + i) if i < 26 else f"arm{i}" for i in range(len(observed)))
        counts, shares = list(observed), list(weights)
    if len(arms) < 2:
        raise AnalysisError(f"SRM needs at least two arms, got {len(arms)}")
    checked = tuple(check_count(c, f"SRM count of {a}") for a, c in zip(arms, counts, strict=True))
    share_values = tuple(
        check_real(w, f"SRM weight of {a}", minimum=0.0) for a, w in zip(arms, shares, strict=True)
    )
    if sum(share_values) <= 0:
        raise AnalysisError("SRM: the weights sum to 0")
    return arms, checked, share_values
