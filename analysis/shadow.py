"""Shadow comparison: the primary and its shadow answered the same requests.

From paired observations (:class:`Pair`: status, latency and, for classifiers, the
predicted label of each side) → :class:`ShadowStats` (:func:`summarize`) → measurements
judged as in the canary rules (:func:`judge_shadow`), the shadow standing as the
candidate and the primary as the stable variant:

* ``error_rate``: the shadow's rate of server errors (status >= 500), Wilson-guarded
  against ``min``/``max``; against ``max_drop`` the rise over the primary's rate on the
  same requests, guarded by Newcombe's interval for independent samples (conservative
  for paired data whose failures go together, which is the usual case);
* ``latency_p50_ms``/``latency_p95_ms``/``latency_p99_ms``: the shadow's percentile over
  the pairs where both sides have a latency (linear interpolation, as numpy's default and
  PostgreSQL's ``percentile_cont``); ``max_drop`` bounds shadow minus primary;
* ``client_error_rate`` (on by default, as for a canary): the shadow's share of 4xx
  answers (499 excluded) against the primary's on the same requests, ``max_drop`` guarded
  by Newcombe's interval: a shadow that refuses what the primary accepts is failing;
* ``agreement`` (set under ``analysis.metrics``): the share of pairs where both sides
  succeeded and gave a label whose labels are equal, Wilson-guarded; ``max_drop`` bounds
  the fall from full agreement (1 - agreement).

Labels are compared with ``==``: normalise them (``"1"`` vs ``1``) before pairing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analysis.base import (
    AnalysisError,
    Bounds,
    BoundsLike,
    Measurement,
    Verdict,
    check_count,
    check_level,
    check_real,
    span,
)
from analysis.canary import LATENCIES, AnalysisLike
from analysis.intervals import newcombe, wilson
from analysis.judge import Estimate, judge_metric

AGREEMENT = "agreement"
CLIENT_ERRORS = "client_error_rate"
#: The status of a caller who hung up or timed out.
CALLER_GONE = 499


def is_server_error(status: int) -> bool:
    return status >= 500


def is_client_error(status: int) -> bool:
    """A refusal (4xx); 499 is a caller who hung up or timed out, nobody's error."""
    return 400 <= status < 500 and status != CALLER_GONE


@dataclass(frozen=True)
class Pair:
    """One request answered by both sides."""

    primary_status: int
    shadow_status: int
    primary_latency_ms: float | None = None
    shadow_latency_ms: float | None = None
    primary_label: object = None
    shadow_label: object = None


@dataclass(frozen=True)
class ShadowStats:
    """Counts and percentiles from the pairs; the controller may also build it in SQL.

    ``latency`` maps ``latency_p50_ms``… to (primary, shadow) over the pairs where both
    sides have a latency; ``compared`` counts pairs where both succeeded with a label,
    ``agreed`` those whose labels are equal.
    """

    pairs: int
    primary_errors: int
    shadow_errors: int
    latency: dict[str, tuple[float, float]]
    compared: int = 0
    agreed: int = 0
    primary_client_errors: int = 0
    shadow_client_errors: int = 0

    def __post_init__(self) -> None:
        check_count(self.pairs, "pairs")
        counts = ("primary_errors", "shadow_errors", "compared")
        for name in (*counts, "primary_client_errors", "shadow_client_errors"):
            if check_count(getattr(self, name), name) > self.pairs:
                raise AnalysisError(f"{name} ({getattr(self, name)}) exceeds pairs ({self.pairs})")
        if check_count(self.agreed, "agreed") > self.compared:
            raise AnalysisError(f"agreed ({self.agreed}) exceeds compared ({self.compared})")
        for name, values in self.latency.items():
            if name not in LATENCIES:
                raise AnalysisError(f"latency: unknown percentile {name!r}")
            for side, value in zip(("primary", "shadow"), values, strict=True):
                check_real(value, f"{side} {name}", minimum=0.0)

    @property
    def shadow_error_rate(self) -> float | None:
        return self.shadow_errors / self.pairs if self.pairs else None

    @property
    def primary_error_rate(self) -> float | None:
        return self.primary_errors / self.pairs if self.pairs else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def agreement_interval(self, confidence: float = 0.95) -> tuple[float, float] | None:
        return wilson(self.agreed, self.compared, confidence) if self.compared else None

    def latency_difference(self, name: str = "latency_p95_ms") -> float | None:
        """Shadow minus primary (positive: the shadow is slower)."""
        if name not in self.latency:
            return None
        primary, shadow = self.latency[name]
        return shadow - primary


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between order statistics
    (Hyndman & Fan type 7: numpy's default, PostgreSQL's ``percentile_cont``)."""
    if not values:
        raise AnalysisError("percentile of no values")
    if not 0 <= q <= 100:
        raise AnalysisError(f"percentile must be within 0..100, got {q:g}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(pairs: Iterable[Pair]) -> ShadowStats:
    n = primary_errors = shadow_errors = compared = agreed = 0
    primary_client = shadow_client = 0
    primary_ms: list[float] = []
    shadow_ms: list[float] = []
    for index, pair in enumerate(pairs):
        where = f"pair {index}"
        for side in ("primary", "shadow"):
            status = getattr(pair, f"{side}_status")
            if isinstance(status, bool) or not isinstance(status, int):
                raise AnalysisError(
                    f"{where}: {side}_status must be an HTTP status code, got {status!r}"
                )
        n += 1
        p_err, s_err = is_server_error(pair.primary_status), is_server_error(pair.shadow_status)
        primary_errors += p_err
        shadow_errors += s_err
        primary_client += is_client_error(pair.primary_status)
        shadow_client += is_client_error(pair.shadow_status)
        if pair.primary_latency_ms is not None and pair.shadow_latency_ms is not None:
            primary_ms.append(
                check_real(pair.primary_latency_ms, f"{where}: primary latency", minimum=0.0)
            )
            shadow_ms.append(
                check_real(pair.shadow_latency_ms, f"{where}: shadow latency", minimum=0.0)
            )
        if (
            not p_err
            and not s_err
            and pair.primary_label is not None
            and pair.shadow_label is not None
        ):
            compared += 1
            agreed += pair.primary_label == pair.shadow_label
    latency = {}
    if primary_ms:
        for name, q in zip(LATENCIES, (50.0, 95.0, 99.0), strict=True):
            latency[name] = (percentile(primary_ms, q), percentile(shadow_ms, q))
    return ShadowStats(
        n, primary_errors, shadow_errors, latency, compared, agreed, primary_client, shadow_client
    )


def judge_shadow(
    stats: ShadowStats,
    analysis: AnalysisLike,
    *,
    confidence: float = 0.95,
    strict: bool = False,
) -> list[Measurement]:
    """Judge the shadow against the analysis block (rules in the module docstring)."""
    check_level(confidence, "confidence")
    min_requests = check_count(analysis.min_requests, "analysis.min_requests")
    if analysis.cost_per_request_usd is not None:
        raise AnalysisError(
            "analysis.cost_per_request_usd: not measured for a shadow (pairs carry status, "
            "latency and label)"
        )
    others = sorted(set(analysis.metrics) - {AGREEMENT})
    if others:
        raise AnalysisError(
            f"analysis.metrics.{others[0]}: a shadow is judged only on {AGREEMENT!r} "
            "among custom metrics"
        )
    level = f"{confidence * 100:g}%"
    out: list[Measurement] = []

    def short(count: int, what: str, metric: str, bounds: Bounds) -> Measurement | None:
        if count == 0 or count < min_requests:
            why = (
                f"{metric}: {count} {what}, fewer than min_requests {min_requests}"
                if count
                else f"{metric}: no {what}"
            )
            return Measurement(
                metric, None, None, bounds, Verdict.INCONCLUSIVE, why + " (no data is not a pass)"
            )
        return None

    if analysis.error_rate is not None:
        bounds = Bounds.of(analysis.error_rate)
        early = short(stats.pairs, "paired requests", "error_rate", bounds)
        out.append(early or _error_rate(stats, bounds, confidence, level, strict))
    for name in LATENCIES:
        given: BoundsLike | None = getattr(analysis, name)
        if given is None:
            continue
        bounds = Bounds.of(given)
        early = short(stats.pairs, "paired requests", name, bounds)
        if early is None and name not in stats.latency:
            early = Measurement(
                name,
                None,
                None,
                bounds,
                Verdict.INCONCLUSIVE,
                f"{name}: no pair has both latencies (no data is not a pass)",
            )
        if early is not None:
            out.append(early)
            continue
        primary, shadow = stats.latency[name]
        worse = Estimate.point(shadow - primary) if bounds.relative else None
        verdict, reason = judge_metric(
            name,
            bounds,
            Estimate.point(shadow),
            worse=worse,
            baseline_name="primary",
            strict=strict,
        )
        out.append(Measurement(name, shadow, primary, bounds, verdict, reason))
    if AGREEMENT in analysis.metrics:
        bounds = Bounds.of(analysis.metrics[AGREEMENT])
        early = short(stats.compared, "labelled pairs where both succeeded", AGREEMENT, bounds)
        out.append(early or _agreement(stats, bounds, confidence, level, strict))
    given_client: BoundsLike | None = getattr(analysis, CLIENT_ERRORS, None)
    if given_client is not None and not Bounds.of(given_client).empty:
        bounds = Bounds.of(given_client)
        absolute = bounds.min is not None or bounds.max is not None
        if stats.pairs or absolute:  # no pairs: nothing to compare with
            early = short(stats.pairs, "paired requests", CLIENT_ERRORS, bounds)
            out.append(early or _client_errors(stats, bounds, confidence, level, strict))
    return out


def _client_errors(
    stats: ShadowStats, bounds: Bounds, confidence: float, level: str, strict: bool
) -> Measurement:
    n = stats.pairs
    ours, theirs = stats.shadow_client_errors, stats.primary_client_errors
    rate, primary = ours / n, theirs / n
    low, high = wilson(ours, n, confidence)
    shadow = Estimate(rate, low, high, f"{ours}/{n}, {level} interval {span(low, high)}")
    worse = None
    if bounds.relative:
        d_low, d_high = newcombe(ours, n, theirs, n, confidence)
        worse = Estimate(
            rate - primary,
            d_low,
            d_high,
            f"primary {theirs}/{n}, difference {level} interval {span(d_low, d_high)}",
        )
    verdict, reason = judge_metric(
        CLIENT_ERRORS, bounds, shadow, worse=worse, baseline_name="primary", strict=strict
    )
    return Measurement(CLIENT_ERRORS, rate, primary, bounds, verdict, reason, (low, high))


def _error_rate(
    stats: ShadowStats, bounds: Bounds, confidence: float, level: str, strict: bool
) -> Measurement:
    n = stats.pairs
    rate, primary = stats.shadow_errors / n, stats.primary_errors / n
    low, high = wilson(stats.shadow_errors, n, confidence)
    shadow = Estimate(
        rate, low, high, f"{stats.shadow_errors}/{n}, {level} interval {span(low, high)}"
    )
    worse = None
    if bounds.relative:
        d_low, d_high = newcombe(stats.shadow_errors, n, stats.primary_errors, n, confidence)
        worse = Estimate(
            rate - primary,
            d_low,
            d_high,
            f"primary {stats.primary_errors}/{n}, "
            f"difference {level} interval {span(d_low, d_high)}",
        )
    verdict, reason = judge_metric(
        "error_rate", bounds, shadow, worse=worse, baseline_name="primary", strict=strict
    )
    return Measurement("error_rate", rate, primary, bounds, verdict, reason, (low, high))


def _agreement(
    stats: ShadowStats, bounds: Bounds, confidence: float, level: str, strict: bool
) -> Measurement:
    rate = stats.agreed / stats.compared
    low, high = wilson(stats.agreed, stats.compared, confidence)
    estimate = Estimate(
        rate, low, high, f"{stats.agreed}/{stats.compared}, {level} interval {span(low, high)}"
    )
    worse = Estimate(1.0 - rate, 1.0 - high, 1.0 - low) if bounds.relative else None
    verdict, reason = judge_metric(
        AGREEMENT, bounds, estimate, worse=worse, baseline_name="full agreement", strict=strict
    )
    return Measurement(AGREEMENT, rate, None, bounds, verdict, reason, (low, high))
