"""Canary judgement: the candidate against the stable variant over the same window.

Inputs are the window statistics of each variant (:class:`VariantStats`, the fields the
inference log produces) and the spec's ``analysis`` block (``specs.rollouts.Analysis``
or anything shaped like it). Output: one :class:`~analysis.base.Measurement` per
configured metric, in the order error rate, latencies, cost, then custom metrics.

Rules (docs/statistics.md, "Canary"):

* **No data is not a pass.** A variant whose data a measurement uses and that has fewer
  than ``min_requests`` requests makes it INCONCLUSIVE; so does a missing latency or
  fewer than ``min_feedback`` feedback scores.
* **Absolute bounds judge the candidate alone** (``min``/``max``); the stable variant's
  value is reported beside it but never enters the verdict, and its request count does
  not matter. **A relative bound compares** (``max_drop``): the candidate may be worse
  than stable by at most ``max_drop``, in the metric's units, "worse" being a rise for
  error rate, latency and cost and a fall for feedback metrics. Either way a bad stable
  variant cannot block a good canary: it is ignored, or it makes the comparison easier.
* **Error rate is guarded by an interval** (Wilson's for ``min``/``max``, Newcombe's for
  the difference against ``max_drop``; :mod:`analysis.judge`): it fails only when the
  whole interval breaches the bound, passes when the observed rate is within it, and is
  inconclusive in between. Latency percentiles, cost and feedback means come without a
  spread, so they are judged on their values; ``min_requests`` is their guard.
* Boundaries: equal to ``max`` passes, equal to ``min`` passes, a drop equal to
  ``max_drop`` passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from analysis.base import (
    AnalysisError,
    Bounds,
    BoundsLike,
    Measurement,
    Verdict,
    check_count,
    check_level,
    check_real,
    fmt,
    span,
)
from analysis.intervals import newcombe, wilson
from analysis.judge import Estimate, judge_metric

#: Built-in metrics in the order they are reported (the client-error comparison last).
LATENCIES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
BUILT_IN = ("error_rate", *LATENCIES, "cost_per_request_usd")
CLIENT_ERRORS = "client_error_rate"
#: Feedback means judged on fewer scores than this are inconclusive (the usual n >= 30
#: for a mean; the inference log gives no spread to do better).
MIN_FEEDBACK = 30


class AnalysisLike(Protocol):
    """The fields of ``specs.rollouts.Analysis`` the judgement reads."""

    @property
    def error_rate(self) -> BoundsLike | None: ...
    @property
    def latency_p50_ms(self) -> BoundsLike | None: ...
    @property
    def latency_p95_ms(self) -> BoundsLike | None: ...
    @property
    def latency_p99_ms(self) -> BoundsLike | None: ...
    @property
    def cost_per_request_usd(self) -> BoundsLike | None: ...
    @property
    def client_error_rate(self) -> BoundsLike | None: ...
    @property
    def metrics(self) -> Mapping[str, BoundsLike]: ...
    @property
    def min_requests(self) -> int: ...


@dataclass(frozen=True)
class Feedback:
    """One feedback metric of one variant over the window: how many scores, their mean."""

    count: int
    mean: float | None


@dataclass(frozen=True)
class VariantStats:
    """One variant's statistics over the analysis window (from the inference log).

    ``server_errors`` counts responses with status >= 500 among ``requests``;
    ``client_errors`` those with a 4xx status other than 499 (a caller who hung up or timed
    out is neither side's error); ``cost_usd`` is the window's total; ``feedback_mean`` is
    the mean score of the window's ``feedback_count`` feedback records (``None`` when none
    has a numeric score: then the feedback metric is inconclusive).
    """

    requests: int
    server_errors: int
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    cost_usd: float = 0.0
    feedback_count: int = 0
    feedback_mean: float | None = None
    client_errors: int = 0

    def __post_init__(self) -> None:
        check_count(self.requests, "requests")
        check_count(self.server_errors, "server_errors")
        check_count(self.client_errors, "client_errors")
        if self.server_errors + self.client_errors > self.requests:
            raise AnalysisError(
                f"server_errors ({self.server_errors}) and client_errors "
                f"({self.client_errors}) exceed requests ({self.requests})"
            )
        for name in LATENCIES:
            value = getattr(self, name)
            if value is not None:
                check_real(value, name, minimum=0.0)
        check_real(self.cost_usd, "cost_usd", minimum=0.0)
        check_count(self.feedback_count, "feedback_count")
        if self.feedback_mean is not None:
            check_real(self.feedback_mean, "feedback_mean")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "variant stats") -> VariantStats:
        """Build from a mapping (a row of the log query, a JSON record); errors name ``where``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AnalysisError(f"{where}: unknown field(s) {', '.join(unknown)}")
        missing = [name for name in ("requests", "server_errors") if name not in data]
        if missing:
            raise AnalysisError(f"{where}: missing field(s) {', '.join(missing)}")
        try:
            return cls(**dict(data))
        except AnalysisError as exc:
            raise AnalysisError(f"{where}: {exc}") from None

    @classmethod
    def from_metrics(cls, metrics: Any) -> VariantStats:
        """From what a serving provider reported (``contract.VariantMetrics``: the same
        fields, unchecked), checked here: ``AnalysisError`` if the counts do not add up."""
        return cls(**{f.name: getattr(metrics, f.name) for f in fields(cls)})

    @classmethod
    def from_summary(cls, summary: Any) -> VariantStats:
        """From the inference log's per-variant summary (``inference.query.VariantSummary``:
        its ``feedback`` count and ``mean_score`` are this class's feedback fields). A
        request whose caller hung up or timed out (499) got no answer: it is not counted."""
        return cls(
            requests=summary.requests,  # answers given: the summary leaves 499s out
            server_errors=summary.server_errors,
            client_errors=summary.client_errors,
            latency_p50_ms=summary.latency_p50_ms,
            latency_p95_ms=summary.latency_p95_ms,
            latency_p99_ms=summary.latency_p99_ms,
            cost_usd=summary.cost_usd,
            feedback_count=summary.feedback,
            feedback_mean=summary.mean_score,
        )

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None

    @property
    def client_error_rate(self) -> float | None:
        return self.client_errors / self.requests if self.requests else None

    @property
    def cost_per_request_usd(self) -> float | None:
        return self.cost_usd / self.requests if self.requests else None

    @property
    def feedback(self) -> Feedback:
        return Feedback(self.feedback_count, self.feedback_mean)


def judge_canary(
    candidate: VariantStats,
    stable: VariantStats,
    analysis: AnalysisLike,
    *,
    confidence: float = 0.95,
    strict: bool = False,
    min_feedback: int = MIN_FEEDBACK,
    feedback: Mapping[str, tuple[Feedback, Feedback]] | None = None,
) -> list[Measurement]:
    """Judge every metric ``analysis`` sets; one measurement each.

    ``confidence``: the two-sided level of the error-rate intervals. ``strict``: pass a
    bound only when the whole interval is within it (the canary must *show* it is good,
    not merely not be shown bad). ``feedback``: per custom metric, the (candidate,
    stable) feedback when there is more than one feedback metric; a single custom metric
    is read from the variants' ``feedback_count``/``feedback_mean``.
    """
    check_level(confidence, "confidence")
    check_count(min_feedback, "min_feedback")
    min_requests = check_count(analysis.min_requests, "analysis.min_requests")
    judge = _Judge(candidate, stable, min_requests, confidence, strict)
    out: list[Measurement] = []
    for metric in BUILT_IN:
        bounds = getattr(analysis, metric)
        if bounds is not None:
            out.append(judge.built_in(metric, Bounds.of(bounds)))
    custom = dict(analysis.metrics)
    clash = sorted(set(custom) & {*BUILT_IN, CLIENT_ERRORS})
    if clash:
        raise AnalysisError(
            f"analysis.metrics.{clash[0]}: {clash[0]} is built in; set `{clash[0]}:` directly"
        )
    given = dict(feedback or {})
    stray = sorted(set(given) - set(custom))
    if stray:
        raise AnalysisError(f"feedback given for {stray[0]!r}, which analysis.metrics does not set")
    for name, bounds in custom.items():
        if name in given:
            pair = given[name]
        elif len(custom) == 1:
            pair = (candidate.feedback, stable.feedback)
        else:
            raise AnalysisError(
                f"analysis.metrics sets {len(custom)} feedback metrics ({', '.join(custom)}) "
                f"but the variant statistics hold one feedback mean: pass feedback[{name!r}]"
            )
        out.append(judge.feedback(name, Bounds.of(bounds), pair, min_feedback))
    client = judge.client_errors(_bounds_or_none(getattr(analysis, CLIENT_ERRORS, None)))
    if client is not None:
        out.append(client)
    return out


def _bounds_or_none(given: BoundsLike | None) -> Bounds | None:
    return Bounds.of(given) if given is not None else None


@dataclass(frozen=True)
class _Judge:
    candidate: VariantStats
    stable: VariantStats
    min_requests: int
    confidence: float
    strict: bool

    @property
    def level(self) -> str:
        return f"{self.confidence * 100:g}%"

    def _short(self, bounds: Bounds, metric: str) -> str | None:
        """Why the data are too few for this measurement, or ``None``."""
        used = [("candidate", self.candidate)]
        if bounds.relative:
            used.append(("stable", self.stable))
        for name, stats in used:
            if stats.requests == 0:
                return f"{metric}: no {name} requests in the window"
            if stats.requests < self.min_requests:
                return (
                    f"{metric}: {name} has {stats.requests} requests, "
                    f"fewer than min_requests {self.min_requests}"
                )
        return None

    def _inconclusive(
        self, metric: str, bounds: Bounds, cand: float | None, stab: float | None, why: str
    ) -> Measurement:
        return Measurement(
            metric, cand, stab, bounds, Verdict.INCONCLUSIVE, why + " (no data is not a pass)"
        )

    def built_in(self, metric: str, bounds: Bounds) -> Measurement:
        cand = getattr(self.candidate, metric)
        stab = getattr(self.stable, metric)
        short = self._short(bounds, metric)
        if short is not None:
            return self._inconclusive(metric, bounds, cand, stab, short)
        if metric == "error_rate":
            return self._error_rate(bounds)
        if cand is None or (bounds.relative and stab is None):
            who = "candidate" if cand is None else "stable"
            return self._inconclusive(metric, bounds, cand, stab, f"{metric}: no {who} value")
        worse = Estimate.point(cand - stab) if bounds.relative else None
        verdict, reason = judge_metric(
            metric, bounds, Estimate.point(cand), worse=worse, strict=self.strict
        )
        return Measurement(metric, cand, stab, bounds, verdict, _versus(reason, stab, bounds))

    def _error_rate(self, bounds: Bounds) -> Measurement:
        return self._rate("error_rate", "server_errors", bounds)

    def client_errors(self, bounds: Bounds | None) -> Measurement | None:
        """The candidate's client-error share against stable's (``None``: not judged).

        A candidate that refuses what stable accepts (another input schema, a stricter
        check) answers 4xx where stable answers 200: it is failing, whatever its 5xx count.
        A comparison needs stable traffic: with none in the window, a relative-only bound is
        not judged at all (the other measurements decide); with some, it is judged like any
        ``max_drop`` (``min_requests`` on both sides, Newcombe's interval).
        """
        if bounds is None or bounds.empty:
            return None
        absolute = bounds.min is not None or bounds.max is not None
        if self.stable.requests == 0 and not absolute:
            return None
        short = self._short(bounds, CLIENT_ERRORS)
        if short is not None:
            cand, stab = self.candidate.client_error_rate, self.stable.client_error_rate
            return self._inconclusive(CLIENT_ERRORS, bounds, cand, stab, short)
        return self._rate(CLIENT_ERRORS, "client_errors", bounds)

    def _rate(self, metric: str, count: str, bounds: Bounds) -> Measurement:
        """A share of requests (``count`` of them) judged with its interval: Wilson's for
        ``min``/``max``, Newcombe's for the difference against ``max_drop``."""
        c, s = self.candidate, self.stable
        c_count, s_count = getattr(c, count), getattr(s, count)
        rate = c_count / c.requests
        low, high = wilson(c_count, c.requests, self.confidence)
        detail = f"{c_count}/{c.requests}, {self.level} interval {span(low, high)}"
        cand = Estimate(rate, low, high, detail)
        worse = None
        interval = (low, high)
        if bounds.relative:
            diff_low, diff_high = newcombe(
                c_count, c.requests, s_count, s.requests, self.confidence
            )
            diff = rate - s_count / s.requests
            detail = (
                f"{c_count}/{c.requests} against stable {s_count}/{s.requests}, "
                f"difference {self.level} interval {span(diff_low, diff_high)}"
            )
            worse = Estimate(diff, diff_low, diff_high, detail)
            if bounds.min is None and bounds.max is None:
                interval = (diff_low, diff_high)
        verdict, reason = judge_metric(metric, bounds, cand, worse=worse, strict=self.strict)
        stab = s_count / s.requests if s.requests else None
        return Measurement(
            metric, rate, stab, bounds, verdict, _versus(reason, stab, bounds), interval
        )

    def feedback(
        self, metric: str, bounds: Bounds, pair: tuple[Feedback, Feedback], min_feedback: int
    ) -> Measurement:
        cand_fb, stab_fb = pair
        cand, stab = cand_fb.mean, stab_fb.mean
        short = self._short(bounds, metric)
        if short is None:
            used = [("candidate", cand_fb)] + ([("stable", stab_fb)] if bounds.relative else [])
            for name, fb in used:
                if fb.mean is None:
                    short = f"{metric}: {name} has no numeric feedback scores"
                    break
                if fb.count < max(min_feedback, 1):
                    short = (
                        f"{metric}: {name} has {fb.count} feedback scores, "
                        f"fewer than {max(min_feedback, 1)}"
                    )
                    break
        if short is not None or cand is None:
            why = short or f"{metric}: no candidate feedback"
            return self._inconclusive(metric, bounds, cand, stab, why)
        worse = None
        if bounds.relative:
            assert stab is not None  # checked above: the stable feedback was used
            worse = Estimate.point(stab - cand)  # a fall is worse
        verdict, reason = judge_metric(
            metric, bounds, Estimate.point(cand), worse=worse, strict=self.strict
        )
        return Measurement(metric, cand, stab, bounds, verdict, _versus(reason, stab, bounds))


def _versus(reason: str, stable: float | None, bounds: Bounds) -> str:
    if bounds.relative or stable is None:
        return reason
    return f"{reason} (stable {fmt(stable)}, not judged: absolute bounds)"
