"""One feature's drift verdict, from counts (and raw values when the reference is small).

**Effect size, not p-values, on large samples.** A p-value test (ks, chisquare) on large
samples flags differences too small to matter. Every verdict carries an effect: the
Wasserstein distance normed by the reference's std for a numeric feature, the Jensen-Shannon
distance for a categorical one (for wasserstein, jensenshannon and psi the statistic is the
effect). Once the effective sample size n_ref * n_cur / (n_ref + n_cur) exceeds
:data:`LARGE_SAMPLE` (1000, where KS at p < 0.05 already resolves about a tenth of a
standard deviation), a p-value test is a drift only when the effect also reaches
:data:`MIN_EFFECT` (0.1, SPEC.md's threshold for those distances on large references).

**Significance, not only distance, on small windows.** The mirror image: a distance test
(wasserstein, jensenshannon, psi) on a small window measures mostly sampling noise — 100 rows
drawn from the reference itself give a normed Wasserstein distance over 0.1 in about two runs of
three. So while the effective sample size is at most :data:`LARGE_SAMPLE`, a distance is a
drift only when the companion test also finds the difference significant (p <
:data:`SMALL_SAMPLE_P`): KS for a numeric feature, chi-square for a categorical one.

**No data is a state.** A feature whose current window (or reference) has no non-null value
is ``no_data``, never ``ok``: its missing rate is then the finding (:func:`judge_missing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from analysis.base import AnalysisError, check_real, fmt
from analysis.drift import binned, vectors
from analysis.drift.histogram import Histogram
from analysis.drift.ks_pvalue import ks_pvalue
from analysis.drift.methods import TESTS, Test, choose
from analysis.drift.profile import FeatureProfile, NumericProfile
from analysis.drift.raw import ks_2samp, norm, wasserstein

LARGE_SAMPLE = 1000
MIN_EFFECT = 0.1
#: On small windows a distance must also be significant at this level (companion test).
SMALL_SAMPLE_P = 0.05
#: The missing rate may rise this much over the reference's before it is a finding.
MISSING_INCREASE = 0.1


class State(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class FeatureVerdict:
    """One signal of one feature: the distribution (``method``) or ``missing_rate``."""

    feature: str
    method: str
    statistic: float | None
    threshold: float
    effect: float | None
    effect_name: str
    n_ref: int
    n_cur: int
    drifted: bool
    state: State
    reason: str
    p_value: float | None = None
    min_effect: float | None = None
    exact: bool = True
    bounds: tuple[float, float] | None = None
    warning: bool = False
    #: On a small window, the significance test that backed a distance, and its p-value.
    companion: str | None = None
    companion_p: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "method": self.method,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "effect": self.effect,
            "effect_name": self.effect_name,
            "min_effect": self.min_effect,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "drifted": self.drifted,
            "state": self.state.value,
            "exact": self.exact,
            "bounds": list(self.bounds) if self.bounds is not None else None,
            "warning": self.warning,
            "companion": self.companion,
            "companion_p": self.companion_p,
            "reason": self.reason,
        }


def effective_n(n_ref: int, n_cur: int) -> float:
    return n_ref * n_cur / (n_ref + n_cur) if n_ref and n_cur else 0.0


@dataclass(frozen=True)
class _Measured:
    statistic: float
    p_value: float | None = None
    exact: bool = True
    bounds: tuple[float, float] | None = None


def judge_feature(
    profile: FeatureProfile,
    current: Histogram,
    *,
    method: str = "auto",
    threshold: float | None = None,
    current_values: Sequence[float] | None = None,
) -> FeatureVerdict:
    """Judge one feature's current counts against its reference profile.

    ``current_values`` (the window's non-null values) make ks and wasserstein exact when
    the profile kept the reference's values (at most 1000); otherwise they come from bins,
    with the range the raw value lies in (``bounds``; KS's p-value is taken at the lower end,
    so a binned KS never flags more than the raw one would).
    """
    test = choose(method, profile)
    limit = test.threshold if threshold is None else check_real(threshold, "threshold", minimum=0)
    n_ref, n_cur = profile.reference.values, current.values
    effect_name = _effect_name(test, profile)
    if len(current.counts) != len(profile.reference.counts):
        raise AnalysisError(
            f"feature {profile.name!r}: the counts have {len(current.counts)} bins, "
            f"its profile {len(profile.reference.counts)}"
        )
    if n_ref == 0 or n_cur == 0:
        where = "reference" if n_ref == 0 else "current window"
        return FeatureVerdict(
            profile.name, test.name, None, limit, None, effect_name, n_ref, n_cur, False,
            State.NO_DATA, f"no non-null values in the {where}: no drift statistic",
        )  # fmt: skip
    raw = _raw_pair(profile, current_values)
    measured = _measure(test, profile, current, raw)
    effect = _effect(test, profile, current, raw, measured)
    companion = None
    if not test.p_value and effective_n(n_ref, n_cur) <= LARGE_SAMPLE:
        companion = _companion(profile, current, raw)
    return _decide(
        test, limit, profile.name, effect_name, effect, measured, n_ref, n_cur, companion
    )


def _effect_name(test: Test, profile: FeatureProfile) -> str:
    if test.name == "wasserstein":
        return "wasserstein_norm"
    if not test.p_value:
        return test.name
    return "wasserstein_norm" if profile.kind == "numeric" else "jensenshannon"


def _raw_pair(
    profile: FeatureProfile, current_values: Sequence[float] | None
) -> tuple[Sequence[float], Sequence[float]] | None:
    if (
        isinstance(profile, NumericProfile)
        and profile.values is not None
        and current_values is not None
        and len(current_values) > 0
    ):
        return profile.values, current_values
    return None


def _measure(
    test: Test,
    profile: FeatureProfile,
    current: Histogram,
    raw: tuple[Sequence[float], Sequence[float]] | None,
) -> _Measured:
    if test.name == "psi":
        return _Measured(binned.psi(*vectors.for_psi(profile, current)))
    if test.name == "jensenshannon":
        return _Measured(binned.jensenshannon(*vectors.fine(profile, current)))
    if test.name == "chisquare":
        chi = binned.chisquare(*vectors.for_chisquare(profile, current))
        return _Measured(chi.statistic, chi.p_value)
    assert isinstance(profile, NumericProfile)
    if test.name == "ks":
        if raw is not None:
            result = ks_2samp(*raw)
            return _Measured(result.statistic, result.p_value)
        ks = binned.ks_from_bins(
            profile.reference.counts, current.counts, current.below, current.above
        )
        p = ks_pvalue(ks.low, profile.reference.values, current.values)
        return _Measured(ks.estimate, p, exact=False, bounds=(ks.low, ks.high))
    return _wasserstein_norm(profile, current, raw)


def _wasserstein_norm(
    profile: NumericProfile,
    current: Histogram,
    raw: tuple[Sequence[float], Sequence[float]] | None,
) -> _Measured:
    scale = norm(profile.std)
    if raw is not None:
        return _Measured(wasserstein(*raw) / scale)
    w = binned.wasserstein_from_bins(profile.edges, profile.reference, current)
    return _Measured(w.estimate / scale, exact=False, bounds=(w.low / scale, w.high / scale))


def _companion(
    profile: FeatureProfile,
    current: Histogram,
    raw: tuple[Sequence[float], Sequence[float]] | None,
) -> tuple[str, float]:
    """The significance test that backs a distance on a small window: (its name, p-value)."""
    if isinstance(profile, NumericProfile):
        p = _measure(TESTS["ks"], profile, current, raw).p_value
        return "ks", float(p if p is not None else 1.0)
    chi = binned.chisquare(*vectors.for_chisquare(profile, current))
    return "chisquare", chi.p_value


def _effect(
    test: Test,
    profile: FeatureProfile,
    current: Histogram,
    raw: tuple[Sequence[float], Sequence[float]] | None,
    measured: _Measured,
) -> float:
    if not test.p_value:
        return measured.statistic
    if isinstance(profile, NumericProfile):
        return _wasserstein_norm(profile, current, raw).statistic
    return binned.jensenshannon(*vectors.fine(profile, current))


def _decide(
    test: Test,
    limit: float,
    feature: str,
    effect_name: str,
    effect: float,
    measured: _Measured,
    n_ref: int,
    n_cur: int,
    companion: tuple[str, float] | None = None,
) -> FeatureVerdict:
    """``companion``: on a small window, the significance test a distance must also pass."""
    gate = test.p_value and effective_n(n_ref, n_cur) > LARGE_SAMPLE
    if test.p_value:
        assert measured.p_value is not None
        crossed = measured.p_value < limit
        said = f"p = {fmt(measured.p_value)} {'<' if crossed else '>='} {fmt(limit)}"
    else:
        crossed = measured.statistic >= limit
        said = f"{test.name} {fmt(measured.statistic)} {'>=' if crossed else '<'} {fmt(limit)}"
    drifted = crossed and (not gate or effect >= MIN_EFFECT)
    said += f"; effect {effect_name} {fmt(effect)}"
    if gate:
        said += f" ({'>=' if effect >= MIN_EFFECT else '<'} {fmt(MIN_EFFECT)}, large samples)"
    if companion is not None:
        name, p = companion
        significant = p < SMALL_SAMPLE_P
        drifted = drifted and significant
        said += (
            f"; {name} p = {fmt(p)} {'<' if significant else '>='} {fmt(SMALL_SAMPLE_P)}"
            " (small window)"
        )
    return FeatureVerdict(
        feature=feature,
        method=test.name,
        statistic=measured.statistic,
        threshold=limit,
        effect=effect,
        effect_name=effect_name,
        n_ref=n_ref,
        n_cur=n_cur,
        drifted=drifted,
        state=State.DRIFT if drifted else State.OK,
        reason=said,
        p_value=measured.p_value,
        min_effect=MIN_EFFECT if gate else None,
        exact=measured.exact,
        bounds=measured.bounds,
        warning=test.warn is not None and measured.statistic >= test.warn,
        companion=companion[0] if companion is not None else None,
        companion_p=companion[1] if companion is not None else None,
    )


def judge_missing(
    profile: FeatureProfile, current: Histogram, *, max_increase: float = MISSING_INCREASE
) -> FeatureVerdict:
    """The missing-value rate as its own signal: drift when it rises by ``max_increase`` or
    more over the reference's (a column gone empty: from its rate to 1.0)."""
    limit = check_real(max_increase, "missing-rate increase", minimum=0)
    ref_rate, cur_rate = profile.reference.missing_rate, current.missing_rate
    n_ref, n_cur = profile.reference.rows, current.rows
    if ref_rate is None or cur_rate is None:
        where = "reference" if ref_rate is None else "current window"
        return FeatureVerdict(
            profile.name, "missing_rate", None, limit, None, "missing_rate_increase",
            n_ref, n_cur, False, State.NO_DATA, f"no rows in the {where}",
        )  # fmt: skip
    increase = cur_rate - ref_rate
    drifted = increase >= limit
    reason = (
        f"missing rate {fmt(cur_rate)} (reference {fmt(ref_rate)}): "
        f"increase {fmt(increase)} {'>=' if drifted else '<'} {fmt(limit)}"
    )
    return FeatureVerdict(
        profile.name, "missing_rate", cur_rate, limit, increase, "missing_rate_increase",
        n_ref, n_cur, drifted, State.DRIFT if drifted else State.OK, reason,
    )  # fmt: skip
