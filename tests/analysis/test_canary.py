"""Canary judgement: boundaries, too little data, the error-rate guard, bad stable variants."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.base import AnalysisError, Bounds, Verdict
from analysis.canary import Feedback, VariantStats, judge_canary
from analysis.intervals import wilson
from specs.rollouts import Analysis

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE


def analysis(**fields: Any) -> Analysis:
    """The real spec model, so the judgement is tested against what users write — without
    the client-error comparison every analysis has by default (tested on its own in
    test_client_errors.py), so that each test here sees only the metric it sets."""
    return Analysis.model_validate(fields).model_copy(update={"client_error_rate": None})


def stats(requests: int = 1000, errors: int = 0, **fields: Any) -> VariantStats:
    return VariantStats(requests, errors, **fields)


def only(measurements: list[Any]) -> Any:
    assert len(measurements) == 1
    return measurements[0]


def verdict(candidate: VariantStats, stable: VariantStats, spec: Analysis, **kw: Any) -> Verdict:
    return only(judge_canary(candidate, stable, spec, **kw)).verdict


# --- boundaries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p95", "expected"), [(199.999, PASS), (200.0, PASS), (200.000001, FAIL), (350.0, FAIL)]
)
def test_latency_equal_to_max_passes(p95: float, expected: Verdict) -> None:
    spec = analysis(latency_p95_ms={"max": 200}, min_requests=100)
    assert verdict(stats(latency_p95_ms=p95), stats(latency_p95_ms=120.0), spec) is expected


@pytest.mark.parametrize(("mean", "expected"), [(0.7, PASS), (0.699999, FAIL), (0.9, PASS)])
def test_feedback_equal_to_min_passes(mean: float, expected: Verdict) -> None:
    spec = analysis(metrics={"thumbs_up": {"min": 0.7}}, min_requests=100)
    cand = stats(feedback_count=200, feedback_mean=mean)
    assert verdict(cand, stats(feedback_count=200, feedback_mean=0.8), spec) is expected


@pytest.mark.parametrize(
    ("candidate_ms", "expected"),
    [(120.0, PASS), (140.0, PASS), (140.001, FAIL), (90.0, PASS)],  # faster never fails
)
def test_latency_rise_equal_to_max_drop_passes(candidate_ms: float, expected: Verdict) -> None:
    spec = analysis(latency_p99_ms={"max_drop": 20}, min_requests=100)
    got = only(judge_canary(stats(latency_p99_ms=candidate_ms), stats(latency_p99_ms=120.0), spec))
    assert got.verdict is expected
    assert (got.candidate, got.stable) == (candidate_ms, 120.0)


@pytest.mark.parametrize(
    ("candidate_mean", "expected"), [(0.80, PASS), (0.75, PASS), (0.7499, FAIL), (0.95, PASS)]
)
def test_feedback_fall_equal_to_max_drop_passes_and_a_rise_never_fails(
    candidate_mean: float, expected: Verdict
) -> None:
    spec = analysis(metrics={"thumbs_up": {"max_drop": 0.05}}, min_requests=100)
    cand = stats(feedback_count=100, feedback_mean=candidate_mean)
    assert verdict(cand, stats(feedback_count=900, feedback_mean=0.80), spec) is expected


def test_float_noise_on_the_boundary_does_not_fail() -> None:
    # 100.3 - 100.1 == 0.20000000000000284 in binary floating point
    spec = analysis(latency_p50_ms={"max_drop": 0.2}, min_requests=1)
    assert verdict(stats(latency_p50_ms=100.3), stats(latency_p50_ms=100.1), spec) is PASS
    spec = analysis(cost_per_request_usd={"max": 0.1}, min_requests=1)
    assert verdict(stats(3, cost_usd=0.3), stats(3), spec) is PASS  # 0.3 / 3 = 0.0999…


def test_cost_per_request_is_cost_over_requests() -> None:
    spec = analysis(cost_per_request_usd={"max": 0.002, "max_drop": 0.0003}, min_requests=100)
    got = only(judge_canary(stats(1000, cost_usd=2.4), stats(4000, cost_usd=8.0), spec))
    assert (got.candidate, got.stable) == (pytest.approx(0.0024), pytest.approx(0.002))
    assert got.verdict is FAIL
    assert "breaches max 0.002" in got.reason and "by 0.0004 breaches max_drop 0.0003" in got.reason


# --- no data is not a pass ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cand_n", "stable_n", "expected"),
    [(199, 5000, INCONCLUSIVE), (200, 5000, PASS), (5000, 199, INCONCLUSIVE), (0, 0, INCONCLUSIVE)],
)
def test_below_min_requests_for_either_compared_variant_is_inconclusive(
    cand_n: int, stable_n: int, expected: Verdict
) -> None:
    spec = analysis(latency_p95_ms={"max_drop": 50}, min_requests=200)
    cand, stable = stats(cand_n, latency_p95_ms=100.0), stats(stable_n, latency_p95_ms=100.0)
    got = only(judge_canary(cand, stable, spec))
    assert got.verdict is expected
    if expected is INCONCLUSIVE:
        assert "no data is not a pass" in got.reason


def test_below_min_requests_with_a_perfect_candidate_is_still_inconclusive() -> None:
    spec = analysis(error_rate={"max": 0.01}, min_requests=200)
    got = only(judge_canary(stats(150, 0), stats(5000, 3), spec))
    assert got.verdict is INCONCLUSIVE
    assert "candidate has 150 requests, fewer than min_requests 200" in got.reason
    assert got.candidate == 0.0  # the value is still reported


def test_absolute_bounds_ignore_the_stable_variants_traffic() -> None:
    # At a 90% or 100% step the stable variant gets little or no traffic; an absolute
    # bound judges the candidate alone, so that does not make the analysis inconclusive.
    spec = analysis(error_rate={"max": 0.01}, latency_p95_ms={"max": 200}, min_requests=200)
    got = judge_canary(stats(2000, 3, latency_p95_ms=150.0), stats(0, 0), spec)
    assert [m.verdict for m in got] == [PASS, PASS]
    assert [m.stable for m in got] == [None, None]


def test_missing_values_are_inconclusive() -> None:
    spec = analysis(latency_p95_ms={"max": 200}, metrics={"score": {"min": 3}}, min_requests=10)
    got = judge_canary(stats(100), stats(100), spec)
    assert [m.verdict for m in got] == [INCONCLUSIVE, INCONCLUSIVE]
    assert "no candidate value" in got[0].reason
    assert "candidate has no numeric feedback scores" in got[1].reason
    # feedback that was all labels (no numeric score) is no score either
    unscored = stats(100, feedback_count=80, feedback_mean=None)
    assert verdict(unscored, stats(100), analysis(metrics={"score": {"min": 3}})) is INCONCLUSIVE


def test_feedback_needs_min_feedback_scores() -> None:
    spec = analysis(metrics={"score": {"min": 3}}, min_requests=10)
    cand = stats(100, feedback_count=29, feedback_mean=4.5)
    assert verdict(cand, stats(100), spec) is INCONCLUSIVE
    assert verdict(cand, stats(100), spec, min_feedback=29) is PASS


# --- the error-rate guard -------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (0, PASS),
        (1, PASS),  # 0.5% observed: within the bound
        (2, PASS),  # exactly 1%: equal to max passes
        (3, INCONCLUSIVE),  # 1.5% observed, Wilson [0.0051, 0.0432] reaches back below 1%
        (4, INCONCLUSIVE),  # Wilson lower bound 0.0078
        (5, FAIL),  # Wilson lower bound 0.0107 > 0.01: the whole interval breaches
        (20, FAIL),
    ],
)
def test_error_rate_guard_at_200_requests_against_max_one_percent(
    errors: int, expected: Verdict
) -> None:
    spec = analysis(error_rate={"max": 0.01}, min_requests=200)
    got = only(judge_canary(stats(200, errors), stats(1800, 2), spec))
    assert got.verdict is expected
    assert got.interval == wilson(errors, 200)


def test_error_rate_fails_only_once_the_lower_bound_exceeds_the_max() -> None:
    low, _ = wilson(5, 200)
    at_low = analysis(error_rate={"max": low}, min_requests=1)  # lower bound == max
    below_low = analysis(error_rate={"max": low * (1 - 1e-9)}, min_requests=1)
    assert verdict(stats(200, 5), stats(200), at_low) is INCONCLUSIVE
    assert verdict(stats(200, 5), stats(200), below_low) is FAIL


def test_strict_mode_passes_only_when_the_upper_bound_is_within_the_max() -> None:
    spec = analysis(error_rate={"max": 0.01}, min_requests=1)
    # zero errors: the upper bound z^2 / (n + z^2) reaches 1% at n = 380.3
    assert verdict(stats(380, 0), stats(1000), spec, strict=True) is INCONCLUSIVE
    assert verdict(stats(381, 0), stats(1000), spec, strict=True) is PASS
    assert verdict(stats(200, 1), stats(1000), spec, strict=True) is INCONCLUSIVE
    _, high = wilson(1, 200)
    exact = analysis(error_rate={"max": high}, min_requests=1)  # upper bound == max
    assert verdict(stats(200, 1), stats(1000), exact, strict=True) is PASS
    got = only(judge_canary(stats(200, 1), stats(1000), spec, strict=True))
    assert "within max 0.01 but its interval reaches over it" in got.reason


def test_error_rate_min_bound_is_guarded_the_other_way() -> None:
    spec = analysis(error_rate={"min": 0.05}, min_requests=1)  # odd, but allowed
    assert verdict(stats(100, 5), stats(100), spec) is PASS  # equal to min passes
    assert verdict(stats(100, 3), stats(100), spec) is INCONCLUSIVE
    assert verdict(stats(1000, 10), stats(100), spec) is FAIL  # upper bound 0.018 < 0.05


def test_error_rate_max_drop_is_guarded_by_newcombes_interval() -> None:
    spec = analysis(error_rate={"max_drop": 0.004}, min_requests=1)
    # a rise equal to max_drop passes
    assert verdict(stats(1000, 6), stats(1000, 2), spec) is PASS
    # 0.8 points worse on 1,000 requests each, but the interval reaches back below 0.004
    assert verdict(stats(1000, 10), stats(1000, 2), spec) is INCONCLUSIVE
    # 0.8 points worse on 50,000 requests each: shown
    assert verdict(stats(50_000, 500), stats(50_000, 100), spec) is FAIL


# --- a bad stable variant does not block a good canary ---------------------------------


def test_bad_stable_good_canary_passes_under_relative_bounds() -> None:
    spec = analysis(
        error_rate={"max_drop": 0.005},
        latency_p95_ms={"max_drop": 20},
        metrics={"thumbs_up": {"max_drop": 0.02}},
        min_requests=200,
    )
    stable = stats(9000, 720, latency_p95_ms=900.0, feedback_count=500, feedback_mean=0.4)
    cand = stats(1000, 2, latency_p95_ms=140.0, feedback_count=60, feedback_mean=0.8)
    got = judge_canary(cand, stable, spec)
    assert [m.verdict for m in got] == [PASS, PASS, PASS]
    assert "worse than stable by -0.078" in got[0].reason


def test_bad_stable_good_canary_passes_under_absolute_bounds() -> None:
    spec = analysis(error_rate={"max": 0.01}, latency_p95_ms={"max": 200}, min_requests=200)
    stable = stats(9000, 720, latency_p95_ms=900.0)
    got = judge_canary(stats(1000, 2, latency_p95_ms=140.0), stable, spec)
    assert [m.verdict for m in got] == [PASS, PASS]
    assert "(stable 0.08, not judged: absolute bounds)" in got[0].reason


def test_a_canary_worse_than_a_bad_stable_still_fails_the_relative_bound() -> None:
    spec = analysis(error_rate={"max_drop": 0.005}, min_requests=200)
    assert verdict(stats(20_000, 2000), stats(20_000, 1600), spec) is FAIL


def test_both_kinds_of_bound_must_hold() -> None:
    spec = analysis(latency_p95_ms={"max": 200, "max_drop": 10}, min_requests=1)
    assert verdict(stats(latency_p95_ms=150.0), stats(latency_p95_ms=100.0), spec) is FAIL
    assert verdict(stats(latency_p95_ms=250.0), stats(latency_p95_ms=245.0), spec) is FAIL
    assert verdict(stats(latency_p95_ms=105.0), stats(latency_p95_ms=100.0), spec) is PASS


# --- shape of the output and bad input -------------------------------------------------


def test_one_measurement_per_metric_in_a_stable_order() -> None:
    spec = analysis(
        metrics={"thumbs_up": {"min": 0.5}},
        cost_per_request_usd={"max": 1},
        latency_p99_ms={"max": 900},
        latency_p50_ms={"max": 100},
        error_rate={"max": 0.05},
        min_requests=10,
    )
    cand = stats(
        100, 1, latency_p50_ms=50.0, latency_p99_ms=400.0, feedback_count=40, feedback_mean=0.7
    )
    got = judge_canary(cand, stats(100), spec)
    assert [m.metric for m in got] == [
        "error_rate",
        "latency_p50_ms",
        "latency_p99_ms",
        "cost_per_request_usd",
        "thumbs_up",
    ]
    assert got[0].threshold == Bounds(max=0.05)
    record = got[0].as_dict()
    assert record["verdict"] == "pass" and record["threshold"]["max"] == 0.05
    assert record["interval"] == list(wilson(1, 100))


def test_several_feedback_metrics_need_their_own_feedback() -> None:
    spec = analysis(metrics={"helpful": {"min": 0.6}, "safe": {"min": 0.99}}, min_requests=10)
    with pytest.raises(AnalysisError, match=r"pass feedback\['helpful'\]"):
        judge_canary(stats(100), stats(100), spec)
    feedback = {
        "helpful": (Feedback(50, 0.7), Feedback(50, 0.6)),
        "safe": (Feedback(50, 0.98), Feedback(50, 1.0)),
    }
    got = judge_canary(stats(100), stats(100), spec, feedback=feedback)
    assert [(m.metric, m.verdict) for m in got] == [("helpful", PASS), ("safe", FAIL)]


def test_an_empty_threshold_is_reported_not_judged() -> None:
    got = only(judge_canary(stats(latency_p95_ms=80.0), stats(), analysis(latency_p95_ms={})))
    assert got.verdict is PASS and "reported only" in got.reason


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"requests": 10, "server_errors": 11},
            r"server_errors \(11\) and client_errors \(0\) exceed requests \(10\)",
        ),
        (
            {"requests": 10, "server_errors": 4, "client_errors": 7},
            r"server_errors \(4\) and client_errors \(7\) exceed requests \(10\)",
        ),
        ({"requests": -1, "server_errors": 0}, "requests must be >= 0"),
        ({"requests": 10.5, "server_errors": 0}, "requests must be a whole number"),
        ({"requests": 10, "server_errors": 0, "latency_p95_ms": float("nan")}, "latency_p95_ms"),
        ({"requests": 10, "server_errors": 0, "feedback_mean": "high"}, "feedback_mean must be a"),
        ({"requests": 10, "server_errors": 0, "p95": 3}, "unknown field"),
        ({"requests": 10}, r"missing field\(s\) server_errors"),
    ],
)
def test_bad_statistics_get_a_one_line_error(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(AnalysisError, match=message) as caught:
        VariantStats.from_dict(fields, where="candidate window")
    assert str(caught.value).startswith("candidate window: ")
    assert "\n" not in str(caught.value)


def test_built_from_the_inference_logs_variant_summary() -> None:
    from inference.query import VariantSummary

    summary = VariantSummary(
        variant="canary",
        requests=397,  # the answers given: the summary leaves the 3 callers who hung up out
        server_errors=2,
        client_errors=7,
        latency_p50_ms=40.0,
        latency_p95_ms=180.0,
        latency_p99_ms=260.0,
        cost_usd=1.2,
        input_tokens=1,
        output_tokens=1,
        cache_hits=0,
        feedback=50,
        mean_score=0.8,
        successes=40,
        abandoned=3,
    )
    got = VariantStats.from_summary(summary)
    # a caller who hung up (499) got no answer: the analysis counts the 397 answers given,
    # and does not take the abandoned ones out a second time
    assert got == VariantStats(397, 2, 40.0, 180.0, 260.0, 1.2, 50, 0.8, client_errors=7)
    assert got.error_rate == 2 / 397 and got.client_error_rate == 7 / 397


def test_a_custom_metric_named_like_a_built_in_is_refused() -> None:
    with pytest.raises(AnalysisError, match="error_rate is built in"):
        judge_canary(stats(), stats(), analysis(metrics={"error_rate": {"max": 0.1}}))


def test_bounds_validate_like_the_spec() -> None:
    with pytest.raises(AnalysisError, match=r"min .* is greater than max"):
        Bounds(min=2, max=1)
    with pytest.raises(AnalysisError, match="max_drop must be >= 0"):
        Bounds(max_drop=-1)
