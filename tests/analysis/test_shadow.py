"""Shadow comparison: summaries from pairs (against numpy) and their judgement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analysis.base import AnalysisError, Verdict
from analysis.intervals import wilson
from analysis.shadow import Pair, ShadowStats, judge_shadow, percentile, summarize
from specs.rollouts import Analysis

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE


def analysis(**fields: Any) -> Analysis:
    """The spec model without the default client-error comparison (test_client_errors.py)."""
    return Analysis.model_validate(fields).model_copy(update={"client_error_rate": None})


def pairs_from(rng: np.random.Generator, n: int, *, shadow_slower: float = 0.0) -> list[Pair]:
    primary_ms = rng.lognormal(4.0, 0.5, n)
    shadow_ms = primary_ms * rng.lognormal(shadow_slower, 0.1, n)
    primary_err = rng.random(n) < 0.01
    shadow_err = rng.random(n) < 0.03
    labels = rng.integers(0, 3, n)
    flipped = np.where(rng.random(n) < 0.08, (labels + 1) % 3, labels)
    return [
        Pair(500 if pe else 200, 503 if se else 200, float(pm), float(sm), int(lab), int(fl))
        for pe, se, pm, sm, lab, fl in zip(
            primary_err, shadow_err, primary_ms, shadow_ms, labels, flipped, strict=True
        )
    ]


def test_summary_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    pairs = pairs_from(rng, 3000)
    pairs.append(
        Pair(200, 200, None, 80.0, "x", "x")
    )  # no primary latency: left out of percentiles
    s = summarize(pairs)
    assert s.pairs == 3001
    assert s.primary_errors == sum(p.primary_status >= 500 for p in pairs)
    assert s.shadow_errors == sum(p.shadow_status >= 500 for p in pairs)
    timed = [p for p in pairs if p.primary_latency_ms is not None]
    for name, q in (("latency_p50_ms", 50), ("latency_p95_ms", 95), ("latency_p99_ms", 99)):
        primary, shadow = s.latency[name]
        assert primary == pytest.approx(
            np.percentile([p.primary_latency_ms for p in timed], q), rel=1e-12
        )
        assert shadow == pytest.approx(
            np.percentile([p.shadow_latency_ms for p in timed], q), rel=1e-12
        )
    both_ok = [p for p in pairs if p.primary_status < 500 and p.shadow_status < 500]
    assert s.compared == len(both_ok)
    assert s.agreed == sum(p.primary_label == p.shadow_label for p in both_ok)
    assert s.agreement_interval() == wilson(s.agreed, s.compared)
    assert s.latency_difference() == pytest.approx(
        s.latency["latency_p95_ms"][1] - s.latency["latency_p95_ms"][0]
    )


@pytest.mark.parametrize("q", [0, 12.5, 50, 95, 99, 100])
def test_percentile_is_numpys_linear_default(q: float) -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([4.0], q) == 4.0


def test_judged_like_a_canary_with_the_shadow_as_candidate() -> None:
    rng = np.random.default_rng(2)
    stats = summarize(pairs_from(rng, 4000, shadow_slower=0.05))  # ~5% slower
    spec = analysis(
        error_rate={"max": 0.05, "max_drop": 0.005},
        latency_p95_ms={"max_drop": 50},
        metrics={"agreement": {"min": 0.9}},
        min_requests=1000,
    )
    got = {m.metric: m for m in judge_shadow(stats, spec)}
    # shadow 2.6% errors vs primary 1.2%: within max 5%, but 1.4 points worse (max_drop 0.5), shown
    assert got["error_rate"].verdict is FAIL
    assert got["error_rate"].candidate == stats.shadow_error_rate
    assert got["error_rate"].stable == stats.primary_error_rate
    assert got["latency_p95_ms"].verdict is PASS
    shadow_p95, primary_p95 = got["latency_p95_ms"].candidate, got["latency_p95_ms"].stable
    assert shadow_p95 is not None and primary_p95 is not None
    assert shadow_p95 - primary_p95 == stats.latency_difference()
    assert got["agreement"].verdict is PASS  # ~92% agreement, interval above 0.9
    assert got["agreement"].interval == stats.agreement_interval()


@pytest.mark.parametrize(
    ("agreed", "bounds", "expected"),
    [
        (950, {"min": 0.95}, PASS),  # equal to min passes
        (940, {"min": 0.95}, INCONCLUSIVE),  # 94%, Wilson upper 0.953 reaches back
        (900, {"min": 0.95}, FAIL),  # upper bound 0.917
        (950, {"max_drop": 0.05}, PASS),  # falls 0.05 from full agreement: passes
        (900, {"max_drop": 0.05}, FAIL),
    ],
)
def test_agreement_bounds(agreed: int, bounds: dict[str, float], expected: Verdict) -> None:
    stats = ShadowStats(1000, 0, 0, {}, compared=1000, agreed=agreed)
    got = judge_shadow(stats, analysis(metrics={"agreement": bounds}, min_requests=100))
    assert [m.verdict for m in got] == [expected]


def test_too_few_pairs_is_inconclusive() -> None:
    stats = ShadowStats(150, 0, 0, {"latency_p95_ms": (100.0, 90.0)}, compared=20, agreed=20)
    spec = analysis(
        error_rate={"max": 0.05},
        latency_p95_ms={"max": 200},
        metrics={"agreement": {"min": 0.9}},
        min_requests=100,
    )
    got = judge_shadow(stats, spec)
    assert [m.verdict for m in got] == [PASS, PASS, INCONCLUSIVE]
    assert "20 labelled pairs where both succeeded, fewer than min_requests 100" in got[2].reason
    no_latency = judge_shadow(ShadowStats(150, 0, 0, {}), analysis(latency_p50_ms={"max": 1}))
    assert no_latency[0].verdict is INCONCLUSIVE


def test_what_a_shadow_cannot_measure_is_refused() -> None:
    stats = ShadowStats(10, 0, 0, {})
    with pytest.raises(AnalysisError, match="cost_per_request_usd: not measured for a shadow"):
        judge_shadow(stats, analysis(cost_per_request_usd={"max": 1}))
    with pytest.raises(AnalysisError, match=r"analysis\.metrics\.thumbs_up"):
        judge_shadow(stats, analysis(metrics={"thumbs_up": {"min": 1}}))


def test_bad_pairs_and_counts() -> None:
    with pytest.raises(AnalysisError, match="pair 1: shadow_status must be an HTTP status code"):
        summarize([Pair(200, 200), Pair(200, "ok")])  # type: ignore[arg-type]
    with pytest.raises(AnalysisError, match=r"agreed \(5\) exceeds compared \(4\)"):
        ShadowStats(10, 0, 0, {}, compared=4, agreed=5)
    with pytest.raises(AnalysisError, match="pair 0: shadow latency must be >= 0"):
        summarize([Pair(200, 200, 1.0, -2.0)])
